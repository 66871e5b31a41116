//! OperationOutcome: how every FHIR error is answered.

use serde_json::{Value, json};

/// An OperationOutcome with one issue. `code` is from the FHIR issue-type value set
/// (`not-found`, `invalid`, `not-supported`, `exception` ...).
pub fn operation_outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code, "diagnostics": diagnostics }],
    })
}
