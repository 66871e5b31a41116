//! Idempotency: one rule for every way a request can come twice.
//!
//! A key names a request within a scope: a sender's message control id (MSH-3/MSH-4 + MSH-10),
//! an `Idempotency-Key` header, a FHIR message's MessageHeader id. The first time a keyed request
//! is applied, its fingerprint, the records it wrote and its answers are remembered in the same
//! write set. Then:
//! - the same key with the same content (fingerprint) gets the first answers again and changes
//!   nothing ([`Verdict::Repeat`]);
//! - the same key with different content is refused ([`Verdict::Conflict`]): applying it could
//!   be a second effect of one request, dropping it would lose it. HL7 v2 answers AR with ERR
//!   205, FHIR 422 with an OperationOutcome.
//!
//! What makes the fingerprint (which parts of a message count as its content) is the caller's.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Keyspace, Overlay, Reader, StoreError};

/// What is remembered of a keyed request that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The journal entry of the first time.
    pub seq: u64,
    pub fingerprint: String,
    pub patients: Vec<String>,
    pub replies: Vec<String>,
}

/// What to do with a keyed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is new: apply it, then [`remember`] it.
    New,
    /// The same request again: answer as the first time, change nothing.
    Repeat(Seen),
    /// The key was used for a different request: refuse it.
    Conflict(Seen),
}

fn key(scope: &str, key: &str) -> Vec<u8> {
    format!("{scope}\u{0}{key}").into_bytes()
}

/// The verdict on a request with `fingerprint` under `scope`/`request_key`.
pub fn check(
    reader: &dyn Reader,
    scope: &str,
    request_key: &str,
    fingerprint: &str,
) -> Result<Verdict, StoreError> {
    let Some(bytes) = reader.get(Keyspace::Dedupe, &key(scope, request_key))? else {
        return Ok(Verdict::New);
    };
    let seen: Seen = serde_json::from_slice(&bytes).map_err(|e| {
        StoreError::corrupt(
            format!("idempotency entry of {scope} {request_key} is unreadable"),
            e,
        )
    })?;
    Ok(if seen.fingerprint == fingerprint {
        Verdict::Repeat(seen)
    } else {
        Verdict::Conflict(seen)
    })
}

/// Remembers an applied request, in its write set.
pub fn remember(tx: &mut Overlay<'_>, scope: &str, request_key: &str, seen: &Seen) {
    let value = serde_json::to_vec(seen).expect("an idempotency entry always serializes");
    tx.put(Keyspace::Dedupe, key(scope, request_key), value);
}

/// A fingerprint of a request's content, given as its parts in order.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(b"\r");
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint of a text by its non-empty lines (CR or LF ended), as FHIR requests are
/// fingerprinted.
pub fn fingerprint_lines(text: &str) -> String {
    fingerprint(text.split(['\r', '\n']).filter(|l| !l.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EmbeddedStore, Store};

    #[test]
    fn a_key_is_new_then_repeated_with_the_same_content_and_conflicting_with_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let a = fingerprint_lines("one\rtwo");
        assert_eq!(check(&store, "s", "k", &a).unwrap(), Verdict::New);
        let mut tx = Overlay::new(&store);
        let seen = Seen {
            seq: 7,
            fingerprint: a.clone(),
            patients: vec!["p".into()],
            replies: vec!["first".into()],
        };
        remember(&mut tx, "s", "k", &seen);
        store.commit(tx.into_writes()).unwrap();
        assert_eq!(
            check(&store, "s", "k", &a).unwrap(),
            Verdict::Repeat(seen.clone())
        );
        let b = fingerprint_lines("one\rthree");
        assert_eq!(check(&store, "s", "k", &b).unwrap(), Verdict::Conflict(seen));
        assert_eq!(check(&store, "other", "k", &b).unwrap(), Verdict::New);
    }

    #[test]
    fn the_fingerprint_ignores_line_ends_but_not_content() {
        assert_eq!(fingerprint_lines("a\rb\r"), fingerprint_lines("a\r\nb\r\n"));
        assert_ne!(fingerprint_lines("a\rb"), fingerprint_lines("a\rc"));
    }
}
