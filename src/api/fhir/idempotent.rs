//! FHIR writes done once: the core's idempotency rule ([`crate::core::idempotency`]) as the
//! FHIR interactions use it. A write with an `Idempotency-Key` header, a transaction or batch
//! Bundle with one, and a PMIR message (by its MessageHeader id and source) is keyed: the same
//! key with the same content gets the first answer again and changes nothing; with different
//! content it is refused, 422 with an OperationOutcome.

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::refused::Refused;
use crate::core::idempotency::{self, Seen, Verdict};
use crate::core::journal::Status;
use crate::core::{Context, Finished};

/// A keyed request: the scope its key is unique in, the key, and its content's fingerprint.
pub struct Key {
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
}

impl Key {
    /// The `Idempotency-Key` of a request of `kind` whose content is `journal`, if it has one.
    pub fn from_header(headers: &HeaderMap, kind: &str, journal: &str) -> Option<Key> {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .filter(|k| !k.is_empty())?;
        Some(Key {
            scope: format!("fhir|{kind}"),
            key: key.to_string(),
            fingerprint: idempotency::fingerprint_lines(journal),
        })
    }
}

/// Runs `apply` in a command once per key. `apply` gives the answer (kept as JSON, to give
/// again to a repeat) and the records it wrote; `journal` is what the journal keeps.
pub fn once(
    ctx: &mut Context<'_, '_>,
    key: Option<&Key>,
    journal: String,
    apply: impl FnOnce(&mut Context<'_, '_>) -> Result<(Value, Vec<String>), Refused>,
) -> Finished<Result<Value, Refused>> {
    if let Some(key) = key {
        match idempotency::check(&*ctx.tx, &key.scope, &key.key, &key.fingerprint) {
            Ok(Verdict::New) => {}
            Ok(Verdict::Repeat(first)) => {
                let answer = first
                    .replies
                    .first()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .unwrap_or(Value::Null);
                return Finished {
                    status: Status::Duplicate,
                    error: None,
                    patients: first.patients,
                    message: journal,
                    answer: Ok(answer),
                };
            }
            Ok(Verdict::Conflict(first)) => {
                let refused = Refused::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "duplicate",
                    format!(
                        "key `{}` was used for a different request (journal {})",
                        key.key, first.seq
                    ),
                );
                return Finished::refused(journal, refused.message.clone(), Err(refused));
            }
            Err(e) => {
                let refused = Refused::new(StatusCode::INTERNAL_SERVER_ERROR, "exception", e.to_string());
                return Finished::refused(journal, refused.message.clone(), Err(refused));
            }
        }
    }
    match apply(ctx) {
        Ok((answer, written)) => {
            if let Some(key) = key {
                let seen = Seen {
                    seq: ctx.seq,
                    fingerprint: key.fingerprint.clone(),
                    patients: written.clone(),
                    replies: vec![answer.to_string()],
                };
                idempotency::remember(ctx.tx, &key.scope, &key.key, &seen);
            }
            Finished::applied(journal, written, Ok(answer))
        }
        Err(refused) => Finished::refused(journal, refused.message.clone(), Err(refused)),
    }
}
