//! A refused FHIR request as HTTP answers it: the status, the OperationOutcome issue code and
//! what is wrong; and the statuses of what the domain's write model did or refused.

use axum::http::StatusCode;

use crate::domain::resources::write::{self, Effect, Reason};

/// Why a request was refused: the status, the OperationOutcome issue code, and what is wrong.
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

impl From<write::Refused> for Refused {
    fn from(refused: write::Refused) -> Refused {
        let (status, code) = match refused.reason {
            Reason::UnknownKey => (StatusCode::UNPROCESSABLE_ENTITY, "not-found"),
            Reason::DuplicateKey => (StatusCode::CONFLICT, "duplicate"),
            Reason::VersionConflict => (StatusCode::PRECONDITION_FAILED, "conflict"),
            Reason::NotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "not-supported"),
            Reason::Unprocessable => (StatusCode::UNPROCESSABLE_ENTITY, "processing"),
            Reason::Store => (StatusCode::INTERNAL_SERVER_ERROR, "exception"),
        };
        Refused::new(status, code, refused.message)
    }
}

/// The status that answers a write that did `effect`.
pub fn status_of(effect: Effect) -> StatusCode {
    match effect {
        Effect::Created => StatusCode::CREATED,
        Effect::Updated => StatusCode::OK,
        Effect::Deleted => StatusCode::NO_CONTENT,
    }
}
