//! FHIR R4 pieces the API answers with: searchset Bundles and OperationOutcomes. The resource
//! model, the XML codec and search grow here with the FHIR endpoint.

pub mod bundle;
pub mod model;
pub mod outcome;
pub mod validate;
pub mod xml;

/// The media type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json";
