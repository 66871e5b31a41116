//! Why a member-account action was refused: a kind (what HTTP status it becomes), a stable code
//! a client can act on, and a sentence for a person. Nothing is written when an action is refused.

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No such member, patient, request or token target.
    NotFound,
    /// The action does not fit the current state (already enrolled, not pending, claimed by
    /// someone else, a token expired, superseded or used ...).
    Conflict,
    /// The request itself is wrong (missing reason, hours out of bounds, bad email ...).
    Invalid,
    /// The caller's role does not cover this target (another queue's request).
    Forbidden,
    /// The store failed.
    Store,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Refusal {
        Refusal::new(Kind::NotFound, "not-found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::new(Kind::Conflict, code, message)
    }

    pub fn invalid(message: impl Into<String>) -> Refusal {
        Refusal::new(Kind::Invalid, "invalid", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Refusal {
        Refusal::new(Kind::Forbidden, "forbidden", message)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::new(Kind::Store, "store", e.to_string())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
