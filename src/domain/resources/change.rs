//! Resource changes: what an inbound message (through its mapping) or a feed asks of the store,
//! for FHIR resources of any type, and applying them.
//!
//! A mapping's output is a set of changes: the one resource it built, or, for a mapping that
//! builds a Bundle, each entry (`request.method` PUT or POST upserts, DELETE deletes). A Patient
//! goes to `domain::patients` (matched by any identifier, merged, kept with what the message did
//! not carry); every other type is found by its first identifier and replaced as sent, its
//! references to a Patient by identifier (`{"type": "Patient", "identifier": ...}`, as a
//! message names its patient) resolved to the stored Patient, so `Appointment?patient=` finds
//! it. A record that names a patient no stored Patient has is refused (`UnknownPatient`: the
//! feed sent it before the patient's ADT; it is journaled and can be sent again). A
//! merge moves the retired patient's records to the survivor. A
//! DiagnosticReport keeps the results it listed before: a message that corrects one result
//! of a panel names only that one. A DocumentReference that carries no content (a cancel, a
//! status notification) keeps the stored content and relations, and one that `replaces`
//! another marks that one superseded.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::mpi::patients;
use crate::mapping::Output;
use crate::store::{Overlay, StoreError};

use super::{Current, moved_records};

/// One change asked of the store.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceChange {
    /// Create the resource, or update the one its identifiers (or id) already name. A Patient
    /// keeps the elements the message did not carry (an element set to JSON null, HL7 `""`, is
    /// removed); any other type becomes what was sent.
    Upsert { resource: Value },
    /// `survivor` absorbs the Patients named by `retired` identifiers (ADT A40).
    Merge { survivor: Value, retired: Vec<Value> },
    /// The Patient named by `previous` identifiers now carries `resource`'s identifiers (A47).
    ChangeIdentifier { resource: Value, previous: Vec<Value> },
    /// Delete the resource its identifiers (or id) name; nothing when there is none.
    Delete { resource: Value },
}

/// Why a mapping's output is not a change the store can make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("the mapping wrote no resource")]
    NoResource,
    #[error("a merge or identifier change names no previous identifier")]
    NoPrevious,
    #[error("the mapping asked for an unknown @action `{0}`")]
    UnknownAction(String),
    #[error("Bundle entry {0} has no resource, or a request method other than PUT, POST or DELETE")]
    BadEntry(usize),
}

/// Why a change could not be applied. The message is kept with this error; nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("no patient has identifier {0}")]
    UnknownKey(String),
    #[error(
        "{resource_type} names patient {identifier}, whom the store does not know (send the patient first)"
    )]
    UnknownPatient {
        resource_type: String,
        identifier: String,
    },
    #[error("identifier {0} already belongs to patient {1}")]
    DuplicateKey(String, String),
    #[error("{0} has no identifier and no id to find it by")]
    NoKey(String),
    #[error("{action} applies to Patients only, not to {resource_type}")]
    PatientsOnly {
        action: &'static str,
        resource_type: String,
    },
    #[error("Patients come from the master patient index and are not deleted; a merge retires one")]
    PatientNotDeleted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ResourceChange {
    /// The changes a mapping's output asks for (`@action`, `@previous`, or a Bundle's entries).
    pub fn from_output(output: Output) -> Result<Vec<ResourceChange>, ChangeError> {
        let resource = output.resource.ok_or(ChangeError::NoResource)?;
        if resource["resourceType"] == "Bundle" {
            return from_bundle(&resource);
        }
        let previous = || {
            if output.previous.is_empty() {
                Err(ChangeError::NoPrevious)
            } else {
                Ok(output.previous.clone())
            }
        };
        let change = match output.action.as_deref().unwrap_or("upsert") {
            "upsert" => ResourceChange::Upsert { resource },
            "merge" => ResourceChange::Merge {
                survivor: resource,
                retired: previous()?,
            },
            "change-identifier" => ResourceChange::ChangeIdentifier {
                resource,
                previous: previous()?,
            },
            "delete" => ResourceChange::Delete { resource },
            other => return Err(ChangeError::UnknownAction(other.to_string())),
        };
        Ok(vec![change])
    }

    /// The resource it changes.
    pub fn resource(&self) -> &Value {
        match self {
            ResourceChange::Upsert { resource }
            | ResourceChange::ChangeIdentifier { resource, .. }
            | ResourceChange::Delete { resource } => resource,
            ResourceChange::Merge { survivor, .. } => survivor,
        }
    }

    /// The type of the resource it changes.
    pub fn resource_type(&self) -> &str {
        self.resource()["resourceType"].as_str().unwrap_or("")
    }
}

fn from_bundle(bundle: &Value) -> Result<Vec<ResourceChange>, ChangeError> {
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if entries.is_empty() {
        return Err(ChangeError::NoResource);
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let resource = entry.get("resource").filter(|r| r.is_object()).cloned();
            match (entry["request"]["method"].as_str().unwrap_or("PUT"), resource) {
                ("PUT" | "POST", Some(resource)) => Ok(ResourceChange::Upsert { resource }),
                ("DELETE", Some(resource)) => Ok(ResourceChange::Delete { resource }),
                _ => Err(ChangeError::BadEntry(i)),
            }
        })
        .collect()
}

/// Applies a change into `tx`; returns the records it wrote (a Patient by its id, any other
/// resource as `Type/id`).
pub fn apply(tx: &mut Overlay<'_>, change: &ResourceChange, now: &str) -> Result<Vec<String>, ApplyError> {
    let resource_type = change.resource_type().to_string();
    if resource_type == "Patient" {
        let mut written = patients::apply(tx, change, now)?;
        if let (ResourceChange::Merge { .. }, Some((survivor, retired))) = (change, written.split_first()) {
            let mut moved = vec![];
            for retired in retired {
                moved.extend(moved_records::move_to_survivor(tx, retired, survivor, now)?);
            }
            written.extend(moved);
        }
        return Ok(written);
    }
    let written = |id: &str| vec![format!("{resource_type}/{id}")];
    match change {
        ResourceChange::Upsert { resource } => {
            let id = key_of(resource).ok_or_else(|| ApplyError::NoKey(resource_type.clone()))?;
            let mut resource = resource.clone();
            if let Some(identifier) = resolve_patient_references(tx, &mut resource)? {
                return Err(ApplyError::UnknownPatient {
                    resource_type,
                    identifier,
                });
            }
            let stored = match super::read(tx, &resource_type, &id)? {
                Some(Current::Live(stored)) => Some(stored),
                _ => None,
            };
            let mut also = vec![];
            match (resource_type.as_str(), stored) {
                ("DiagnosticReport", Some(stored)) => keep_earlier_results(&stored, &mut resource),
                ("DocumentReference", stored) => {
                    if let Some(stored) = stored {
                        keep_stored_content(&stored, &mut resource);
                    }
                    also = supersede_replaced(tx, &resource, &id, now)?;
                }
                _ => {}
            }
            super::put(tx, &resource_type, &id, resource, now)?;
            let mut records = written(&id);
            records.extend(also);
            Ok(records)
        }
        ResourceChange::Delete { resource } => {
            let id = key_of(resource).ok_or_else(|| ApplyError::NoKey(resource_type.clone()))?;
            match super::read(tx, &resource_type, &id)? {
                Some(Current::Live(_)) => {
                    super::delete(tx, &resource_type, &id, now)?;
                    Ok(written(&id))
                }
                _ => Ok(vec![]),
            }
        }
        ResourceChange::Merge { .. } => Err(ApplyError::PatientsOnly {
            action: "a merge",
            resource_type,
        }),
        ResourceChange::ChangeIdentifier { .. } => Err(ApplyError::PatientsOnly {
            action: "an identifier change",
            resource_type,
        }),
    }
}

/// Gives every reference to a Patient by identifier (type `Patient`, an identifier, no
/// `reference`) the reference of the stored Patient that identifier names. Returns the first
/// identifier no stored Patient has (`system|value`), if any.
pub(crate) fn resolve_patient_references(
    tx: &Overlay<'_>,
    value: &mut Value,
) -> Result<Option<String>, StoreError> {
    let mut unknown = None;
    match value {
        Value::Object(object) => {
            let by_identifier = object.get("type").and_then(Value::as_str) == Some("Patient")
                && object.get("identifier").is_some_and(Value::is_object)
                && !object.contains_key("reference");
            if by_identifier {
                let identifier = &object["identifier"];
                match patients::find_by_any(tx, std::iter::once(identifier))? {
                    Some(id) => {
                        object.insert("reference".into(), Value::String(format!("Patient/{id}")));
                    }
                    None => {
                        unknown = Some(format!(
                            "{}|{}",
                            identifier["system"].as_str().unwrap_or(""),
                            identifier["value"].as_str().unwrap_or("")
                        ));
                    }
                }
            }
            for child in object.values_mut() {
                let found = resolve_patient_references(tx, child)?;
                unknown = unknown.or(found);
            }
        }
        Value::Array(items) => {
            for item in items {
                let found = resolve_patient_references(tx, item)?;
                unknown = unknown.or(found);
            }
        }
        _ => {}
    }
    Ok(unknown)
}

/// A document notification without content (a cancel, a status change) keeps what the stored
/// version holds of the content and of the documents it relates to.
fn keep_stored_content(stored: &Value, document: &mut Value) {
    for element in ["content", "relatesTo"] {
        let carried = document[element]
            .as_array()
            .is_some_and(|items| !items.is_empty());
        if !carried && let Some(kept) = stored.get(element) {
            document[element] = kept.clone();
        }
    }
}

/// Marks superseded each stored, current document `document` says it replaces; returns them
/// (`DocumentReference/<id>`). A document never supersedes itself.
fn supersede_replaced(
    tx: &mut Overlay<'_>,
    document: &Value,
    id: &str,
    now: &str,
) -> Result<Vec<String>, StoreError> {
    let mut superseded = vec![];
    for relation in document["relatesTo"].as_array().into_iter().flatten() {
        let target = relation["target"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("DocumentReference/"));
        let Some(target) = target.filter(|t| relation["code"] == "replaces" && *t != id) else {
            continue;
        };
        if let Some(Current::Live(mut old)) = super::read(tx, "DocumentReference", target)?
            && old["status"] == "current"
        {
            old["status"] = Value::String("superseded".into());
            super::put(tx, "DocumentReference", target, old, now)?;
            superseded.push(format!("DocumentReference/{target}"));
        }
    }
    Ok(superseded)
}

/// A report's `result` list keeps the references the stored version had and the new one does
/// not name (after the new one's own, in their order): a correction of one result of a panel
/// names only that result, and the others are still the report's.
fn keep_earlier_results(stored: &Value, report: &mut Value) {
    let Some(earlier) = stored["result"].as_array() else {
        return;
    };
    let mut results = report["result"].as_array().cloned().unwrap_or_default();
    for reference in earlier {
        if !results.iter().any(|r| r["reference"] == reference["reference"]) {
            results.push(reference.clone());
        }
    }
    if !results.is_empty() {
        report["result"] = Value::Array(results);
    }
}

/// The id a resource other than a Patient is kept under: its own id when the mapping set one,
/// else one made from its first identifier (system and value), so every message about the same
/// appointment, result or document lands on one record.
fn key_of(resource: &Value) -> Option<String> {
    if let Some(id) = resource["id"].as_str().filter(|id| !id.is_empty()) {
        return Some(id.to_string());
    }
    let identifier = resource["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["value"].as_str().is_some_and(|v| !v.is_empty()))?;
    let seed = format!(
        "{}|{}",
        identifier["system"].as_str().unwrap_or(""),
        identifier["value"].as_str().unwrap_or("")
    );
    let digest = Sha256::digest(seed.as_bytes());
    Some(digest.iter().take(10).map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn output(resource: Value, action: Option<&str>) -> Output {
        Output {
            resource: Some(resource),
            message: None,
            action: action.map(str::to_string),
            previous: vec![],
            fired: vec![],
        }
    }

    #[test]
    fn one_resource_is_one_change_and_a_bundle_is_one_per_entry() {
        let appointment = json!({"resourceType": "Appointment", "identifier": [{"value": "A1"}]});
        let changes = ResourceChange::from_output(output(appointment.clone(), None)).unwrap();
        assert_eq!(
            changes,
            vec![ResourceChange::Upsert {
                resource: appointment.clone()
            }]
        );
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": appointment, "request": {"method": "PUT"}},
            {"resource": {"resourceType": "Encounter", "id": "e1"}, "request": {"method": "DELETE"}},
        ]});
        let changes = ResourceChange::from_output(output(bundle, None)).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].resource_type(), "Encounter");
        assert!(matches!(changes[1], ResourceChange::Delete { .. }));
        let merge = ResourceChange::from_output(output(json!({"resourceType": "Patient"}), Some("merge")));
        assert_eq!(merge, Err(ChangeError::NoPrevious));
    }

    #[test]
    fn a_resource_is_kept_under_its_first_identifier() {
        let a = json!({"identifier": [{"system": "urn:s", "value": "1"}]});
        let b = json!({"identifier": [{"value": ""}, {"system": "urn:s", "value": "1"}]});
        let c = json!({"identifier": [{"system": "urn:s", "value": "2"}]});
        assert_eq!(key_of(&a), key_of(&b));
        assert_ne!(key_of(&a), key_of(&c));
        assert_eq!(
            key_of(&json!({"id": "x", "identifier": []})).as_deref(),
            Some("x")
        );
        assert_eq!(key_of(&json!({})), None);
    }
}
