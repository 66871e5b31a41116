//! The FHIR write model: create, update (with create-on-update and `If-Match`) and delete, for
//! Patients and every other type, as they run inside a committer job. Each gives what it did
//! and the stored resource, or why it was refused; the HTTP API turns those into statuses and
//! OperationOutcomes, a PMIR feed into its response message.
//!
//! A POST of a Patient with a feed mapping configured is an upstream feed, not a bare create: it
//! goes through that mapping (as an ADT goes through its channel's) and updates the patient any
//! of its identifiers already names, so a FHIR Patient from the UCR and an ADT about the same
//! person land on one record.

use serde_json::Value;

use crate::domain::mpi::patients;
use crate::domain::resources::change::{self, ApplyError, ResourceChange};
use crate::domain::resources::{self, Current};
use crate::store::Overlay;

/// One write asked of the store.
#[derive(Debug, Clone)]
pub enum Write {
    Create {
        resource_type: String,
        resource: Value,
    },
    /// A Patient through the feed mapping (what it made of the posted resource).
    Feed {
        change: ResourceChange,
    },
    Update {
        resource_type: String,
        id: String,
        resource: Value,
        if_match: Option<u64>,
    },
    Delete {
        resource_type: String,
        id: String,
    },
}

/// What a write did to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Created,
    Updated,
    Deleted,
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct Done {
    pub effect: Effect,
    /// The stored resource (None for a delete).
    pub resource: Option<Value>,
    /// `Type/id/_history/version` of what was written.
    pub location: Option<String>,
    /// The ids of the Patients it wrote (a merge writes more than one), first the one asked for.
    pub patients: Vec<String>,
}

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An identifier names no patient (a merge's retired one, an identifier change's old one).
    UnknownKey,
    /// An identifier belongs to another patient.
    DuplicateKey,
    /// `If-Match` names another version.
    VersionConflict,
    /// Not done through this interaction (a Patient delete, a proxy relationship's
    /// RelatedPerson).
    NotAllowed,
    /// Nothing could be made of it.
    Unprocessable,
    /// The store failed.
    Store,
}

/// Why a write was refused, and what is wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub reason: Reason,
    pub message: String,
}

impl Refused {
    pub fn new(reason: Reason, message: impl Into<String>) -> Refused {
        Refused {
            reason,
            message: message.into(),
        }
    }
}

/// The id a create gets: unique and reproducible (the journal sequence of the command and the
/// write's number in it), so a replayed journal gives the same ids.
pub fn new_id(seq: u64, n: u32) -> String {
    format!("{seq}-{n}")
}

/// Applies `write` into `tx`. `n` numbers the creates of this command.
pub fn apply(tx: &mut Overlay<'_>, write: Write, seq: u64, n: &mut u32, now: &str) -> Result<Done, Refused> {
    let store_error = |e: crate::store::StoreError| Refused::new(Reason::Store, e.to_string());
    if let Write::Update {
        resource_type, id, ..
    }
    | Write::Delete { resource_type, id } = &write
        && resource_type == "RelatedPerson"
        && id.starts_with(crate::domain::proxies::ID_PREFIX)
    {
        return Err(Refused::new(
            Reason::NotAllowed,
            format!(
                "RelatedPerson/{id} is a proxy relationship: it is created, revoked and expired through /api/proxies"
            ),
        ));
    }
    match write {
        Write::Feed { change } => {
            let mut staged = Overlay::new(tx);
            let written = change::apply(&mut staged, &change, now).map_err(apply_refused)?;
            let Some(first) = written.first() else {
                return Err(Refused::new(Reason::Unprocessable, "nothing was written"));
            };
            let after = patients::read(&staged, first)
                .map_err(store_error)?
                .ok_or_else(|| Refused::new(Reason::Unprocessable, "nothing was written"))?;
            let created = patients::read(&*tx, first).map_err(store_error)?.is_none();
            let staged = staged.into_staged();
            tx.absorb_staged(staged);
            Ok(Done {
                effect: if created { Effect::Created } else { Effect::Updated },
                location: Some(location("Patient", &after)),
                resource: Some(after),
                patients: written,
            })
        }
        Write::Create {
            resource_type,
            resource,
        } if resource_type == "Patient" => {
            let id = patients::new_id(tx, &resource, seq, *n).map_err(store_error)?;
            *n += 1;
            let (_, after) = patients::replace(tx, &id, &resource, now).map_err(apply_refused)?;
            Ok(Done {
                effect: Effect::Created,
                location: Some(location("Patient", &after)),
                resource: Some(after),
                patients: vec![id],
            })
        }
        Write::Create {
            resource_type,
            mut resource,
        } => {
            resolve_patient(tx, &resource_type, &mut resource)?;
            let id = new_id(seq, *n);
            *n += 1;
            let stored = resources::put(tx, &resource_type, &id, resource, now).map_err(store_error)?;
            Ok(Done {
                effect: Effect::Created,
                location: Some(location(&resource_type, &stored)),
                resource: Some(stored),
                patients: vec![],
            })
        }
        Write::Update {
            resource_type,
            id,
            resource,
            if_match,
        } => {
            let current = resources::read(tx, &resource_type, &id).map_err(store_error)?;
            let version = match &current {
                Some(Current::Live(old)) => Some(resources::version_of(old)),
                _ => None,
            };
            if let Some(wanted) = if_match
                && version != Some(wanted)
            {
                return Err(Refused::new(
                    Reason::VersionConflict,
                    format!(
                        "If-Match asks for version {wanted} of {resource_type}/{id}, but the current version is {}",
                        version.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
                    ),
                ));
            }
            let effect = if version.is_some() {
                Effect::Updated
            } else {
                Effect::Created
            };
            if resource_type == "Patient" {
                let (_, after) = patients::replace(tx, &id, &resource, now).map_err(apply_refused)?;
                return Ok(Done {
                    effect,
                    location: Some(location("Patient", &after)),
                    resource: Some(after),
                    patients: vec![id],
                });
            }
            let mut resource = resource;
            resolve_patient(tx, &resource_type, &mut resource)?;
            let stored = resources::put(tx, &resource_type, &id, resource, now).map_err(store_error)?;
            Ok(Done {
                effect,
                location: Some(location(&resource_type, &stored)),
                resource: Some(stored),
                patients: vec![],
            })
        }
        Write::Delete { resource_type, .. } if resource_type == "Patient" => Err(Refused::new(
            Reason::NotAllowed,
            "Patients come from the master patient index and are not deleted here; a merge (A40, PMIR) retires one",
        )),
        Write::Delete { resource_type, id } => {
            resources::delete(tx, &resource_type, &id, now).map_err(store_error)?;
            Ok(Done {
                effect: Effect::Deleted,
                resource: None,
                location: None,
                patients: vec![],
            })
        }
    }
}

/// A record names its patient by identifier as a feed does (`{"type": "Patient", "identifier":
/// ...}`) or by reference: the identifier is resolved to the stored Patient, and one no Patient
/// has is refused, as the message feeds refuse it (ERR 204).
fn resolve_patient(tx: &Overlay<'_>, resource_type: &str, resource: &mut Value) -> Result<(), Refused> {
    match change::resolve_patient_references(tx, resource) {
        Ok(None) => Ok(()),
        Ok(Some(identifier)) => Err(apply_refused(ApplyError::UnknownPatient {
            resource_type: resource_type.to_string(),
            identifier,
        })),
        Err(e) => Err(apply_refused(e.into())),
    }
}

/// `Type/id/_history/version` of a stored resource.
pub fn location(resource_type: &str, stored: &Value) -> String {
    format!(
        "{resource_type}/{}/_history/{}",
        stored["id"].as_str().unwrap_or(""),
        resources::version_of(stored)
    )
}

fn apply_refused(e: ApplyError) -> Refused {
    let reason = match e {
        ApplyError::UnknownKey(_) | ApplyError::UnknownPatient { .. } => Reason::UnknownKey,
        ApplyError::DuplicateKey(..) => Reason::DuplicateKey,
        ApplyError::PatientNotDeleted => Reason::NotAllowed,
        ApplyError::NoKey(_) | ApplyError::PatientsOnly { .. } => Reason::Unprocessable,
        ApplyError::Store(_) => Reason::Store,
    };
    Refused::new(reason, e.to_string())
}
