//! FHIR R4 as Tributary reads, checks and writes it (the `tributary-fhir` crate; the engine has it
//! as `tributary::fhir`). It knows no store, HTTP or HL7 v2.
//!
//! - `model`: the R4 structure model (every resource, data type and primitive, from `r4.tsv`).
//! - `validate`: structural validation of a JSON resource against the model, as the issues of an
//!   OperationOutcome.
//! - `xml`: FHIR XML to JSON and back, following the specification's rules for the two formats.
//! - `bundle`: the Bundles the endpoint answers with (a page of search results, a history).
//! - `outcome`: OperationOutcome, how every FHIR error is answered.

pub mod bundle;
pub mod model;
pub mod outcome;
pub mod validate;
pub mod xml;

/// The media type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json";
