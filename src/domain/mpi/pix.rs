//! PIX cross-referencing (IHE ITI-9 over HL7 v2, ITI-83 over FHIR): given one identifier of a
//! patient, the identifiers the same patient has in other domains.

use serde_json::Value;

use crate::domain::mpi::patients;
use crate::store::{Store, StoreError};

/// What a PIX query found.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossReference {
    pub patient_id: String,
    /// The patient's other identifiers (FHIR Identifier objects), in the target domains if any
    /// were asked for.
    pub identifiers: Vec<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum PixError {
    #[error("the source identifier domain `{0}` is not known here")]
    UnknownSourceDomain(String),
    #[error("the target domain `{0}` is not known here")]
    UnknownTargetDomain(String),
    #[error("no patient has identifier {0}|{1}")]
    NotFound(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The patient with identifier `value` in domain `system`, and its identifiers in `targets`
/// (every other domain when `targets` is empty).
pub fn cross_reference(
    store: &dyn Store,
    system: &str,
    value: &str,
    targets: &[String],
) -> Result<CrossReference, PixError> {
    if !patients::is_known_domain(store, system)? {
        return Err(PixError::UnknownSourceDomain(system.to_string()));
    }
    for target in targets {
        if !patients::is_known_domain(store, target)? {
            return Err(PixError::UnknownTargetDomain(target.clone()));
        }
    }
    let found = patients::search_identifier(store, Some(system), value, 1)?;
    let patient = found
        .into_iter()
        .next()
        .ok_or_else(|| PixError::NotFound(system.to_string(), value.to_string()))?;
    let identifiers = patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i.get("use").and_then(Value::as_str) != Some("old"))
        .filter(|i| !(i["system"] == system && i["value"] == value))
        .filter(|i| {
            targets.is_empty()
                || i["system"]
                    .as_str()
                    .is_some_and(|s| targets.iter().any(|t| t == s))
        })
        .cloned()
        .collect();
    Ok(CrossReference {
        patient_id: patient["id"].as_str().unwrap_or("").to_string(),
        identifiers,
    })
}
