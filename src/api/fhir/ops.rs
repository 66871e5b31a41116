//! The FHIR write interactions as they run inside a store command: create, update (with
//! create-on-update and `If-Match`) and delete, for Patients and every other type, each giving
//! the HTTP status and the stored resource, or the error to answer.
//!
//! A POST of a Patient with a feed mapping configured is an upstream feed, not a bare create: it
//! goes through that mapping (as an ADT goes through its channel's) and updates the patient any
//! of its identifiers already names, so a FHIR Patient from the UCR and an ADT about the same
//! person land on one record.

use axum::http::StatusCode;
use serde_json::Value;

use crate::domain::patients::{self, ApplyError, PatientChange};
use crate::domain::resources::{self, Current};
use crate::outbox::PatientWrite;
use crate::store::{Overlay, Reader};

/// One write asked of the store.
#[derive(Debug, Clone)]
pub enum Write {
    Create {
        resource_type: String,
        resource: Value,
    },
    /// A Patient through the feed mapping (what it made of the posted resource).
    Feed {
        change: PatientChange,
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

/// What a write did.
#[derive(Debug, Clone)]
pub struct Done {
    pub status: StatusCode,
    /// The stored resource (None for a delete).
    pub resource: Option<Value>,
    /// `Type/id/_history/version` of what was written.
    pub location: Option<String>,
    pub patients: Vec<PatientWrite>,
}

/// Why a write was refused: the status, the OperationOutcome issue code, and what is wrong.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refused {
        Refused {
            status,
            code,
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
    let store_error = |e: crate::store::StoreError| {
        Refused::new(StatusCode::INTERNAL_SERVER_ERROR, "exception", e.to_string())
    };
    if let Write::Update {
        resource_type, id, ..
    }
    | Write::Delete { resource_type, id } = &write
        && resource_type == "RelatedPerson"
        && id.starts_with(crate::domain::proxies::ID_PREFIX)
    {
        return Err(Refused::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            format!(
                "RelatedPerson/{id} is a proxy relationship: it is created, revoked and expired through /api/proxies"
            ),
        ));
    }
    match write {
        Write::Feed { change } => {
            let before = |tx: &Overlay<'_>, id: &str| patients::read(tx, id);
            let mut staged = Overlay::new(tx);
            let written = patients::apply(&mut staged, &change, now).map_err(apply_refused)?;
            let mut writes = vec![];
            for id in &written {
                let after = patients::read(&staged, id).map_err(store_error)?;
                let before = before(tx, id).map_err(store_error)?;
                if let Some(after) = after {
                    writes.push(PatientWrite {
                        id: id.clone(),
                        before,
                        after,
                    });
                }
            }
            let absorbed = staged.into_writes();
            tx.absorb(absorbed);
            let first = writes.first().cloned();
            let Some(first) = first else {
                return Err(Refused::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "processing",
                    "nothing was written",
                ));
            };
            Ok(Done {
                status: if first.before.is_none() {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                location: Some(location("Patient", &first.after)),
                resource: Some(first.after.clone()),
                patients: writes,
            })
        }
        Write::Create {
            resource_type,
            resource,
        } if resource_type == "Patient" => {
            let id = patients::new_id(tx, &resource, seq, *n).map_err(store_error)?;
            *n += 1;
            let (before, after) = patients::replace(tx, &id, &resource, now).map_err(apply_refused)?;
            Ok(Done {
                status: StatusCode::CREATED,
                location: Some(location("Patient", &after)),
                resource: Some(after.clone()),
                patients: vec![PatientWrite { id, before, after }],
            })
        }
        Write::Create {
            resource_type,
            resource,
        } => {
            let id = new_id(seq, *n);
            *n += 1;
            let stored = resources::put(tx, &resource_type, &id, resource, now).map_err(store_error)?;
            Ok(Done {
                status: StatusCode::CREATED,
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
                    StatusCode::PRECONDITION_FAILED,
                    "conflict",
                    format!(
                        "If-Match asks for version {wanted} of {resource_type}/{id}, but the current version is {}",
                        version.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
                    ),
                ));
            }
            let status = if version.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            if resource_type == "Patient" {
                let (before, after) = patients::replace(tx, &id, &resource, now).map_err(apply_refused)?;
                return Ok(Done {
                    status,
                    location: Some(location("Patient", &after)),
                    resource: Some(after.clone()),
                    patients: vec![PatientWrite { id, before, after }],
                });
            }
            let stored = resources::put(tx, &resource_type, &id, resource, now).map_err(store_error)?;
            Ok(Done {
                status,
                location: Some(location(&resource_type, &stored)),
                resource: Some(stored),
                patients: vec![],
            })
        }
        Write::Delete { resource_type, .. } if resource_type == "Patient" => Err(Refused::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            "Patients come from the master patient index and are not deleted here; a merge (A40, PMIR) retires one",
        )),
        Write::Delete { resource_type, id } => {
            resources::delete(tx, &resource_type, &id, now).map_err(store_error)?;
            Ok(Done {
                status: StatusCode::NO_CONTENT,
                resource: None,
                location: None,
                patients: vec![],
            })
        }
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
    match e {
        ApplyError::UnknownKey(_) => {
            Refused::new(StatusCode::UNPROCESSABLE_ENTITY, "not-found", e.to_string())
        }
        ApplyError::DuplicateKey(..) => Refused::new(StatusCode::CONFLICT, "duplicate", e.to_string()),
        ApplyError::Store(_) => Refused::new(StatusCode::INTERNAL_SERVER_ERROR, "exception", e.to_string()),
    }
}

/// Reads through any reader (used by conditional interactions before a command runs).
pub fn exists(reader: &dyn Reader, resource_type: &str, id: &str) -> bool {
    matches!(
        resources::read(reader, resource_type, id),
        Ok(Some(Current::Live(_)))
    )
}
