//! Dedupe: what is remembered of each applied message (sending application + facility + MSH-10),
//! so a resend gets its first replies again and changes nothing.
//!
//! A fingerprint of the content below MSH tells a resend (same content, perhaps a new MSH-7) from
//! a different message that reuses a control id.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Keyspace, Overlay, Reader, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The journal entry of the first time.
    pub seq: u64,
    pub fingerprint: String,
    pub patients: Vec<String>,
    pub replies: Vec<String>,
}

fn key(sender: &str, control_id: &str) -> Vec<u8> {
    format!("{sender}\u{0}{control_id}").into_bytes()
}

pub fn remember(tx: &mut Overlay<'_>, sender: &str, control_id: &str, seen: &Seen) {
    let value = serde_json::to_vec(seen).expect("a dedupe entry always serializes");
    tx.put(Keyspace::Dedupe, key(sender, control_id), value);
}

/// What was remembered of an applied message with this sender and control id.
pub fn seen(reader: &dyn Reader, sender: &str, control_id: &str) -> Result<Option<Seen>, StoreError> {
    match reader.get(Keyspace::Dedupe, &key(sender, control_id))? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StoreError(format!(
                "dedupe entry of {sender} {control_id} is unreadable: {e}"
            ))
        }),
        None => Ok(None),
    }
}

/// A fingerprint of a message's segments after MSH, whatever their line ends.
pub fn fingerprint(message_text: &str) -> String {
    let mut hasher = Sha256::new();
    for segment in message_text.split(['\r', '\n']).filter(|s| !s.is_empty()).skip(1) {
        hasher.update(segment.as_bytes());
        hasher.update(b"\r");
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_msh_and_line_ends_but_not_content() {
        let a = fingerprint("MSH|^~\\&|A|B|||20260101||ADT^A08|1|P|2.5\rPID|1||42\r");
        let b = fingerprint("MSH|^~\\&|A|B|||20270101||ADT^A08|1|P|2.5\r\nPID|1||42\r\n");
        let c = fingerprint("MSH|^~\\&|A|B|||20260101||ADT^A08|1|P|2.5\rPID|1||43\r");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
