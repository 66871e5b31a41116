//! The journal: every inbound message with its channel, arrival time, status and the replies it
//! got, keyed by a sequence number; and the dedupe entries that let a resend get its first reply.

use serde::{Deserialize, Serialize};

use crate::store::{Keyspace, Overlay, Reader, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Applied to the store (AA / CA).
    Applied,
    /// A resend of an applied message: answered with the first replies, nothing applied.
    Duplicate,
    /// Understood but could not be applied (AE / CE); kept for reprocessing.
    Error,
    /// Unreadable or unsupported (AR / CR).
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub channel: String,
    pub received_at: String,
    pub peer: String,
    /// Sending application and facility (MSH-3, MSH-4) joined by `|`.
    pub sender: String,
    pub control_id: String,
    /// MSH-9.1^MSH-9.2, e.g. `ADT^A08`.
    pub message_type: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a duplicate: the journal entry it repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u64>,
    /// Patients the message wrote.
    pub patients: Vec<String>,
    /// The replies sent back, in order (HL7 ACK text).
    pub replies: Vec<String>,
    /// The message as received (decoded text).
    pub message: String,
}

pub fn put(tx: &mut Overlay<'_>, entry: &JournalEntry) {
    let bytes = serde_json::to_vec(entry).expect("a journal entry always serializes");
    tx.put(Keyspace::Journal, entry.seq.to_be_bytes().to_vec(), bytes);
}

pub fn get(reader: &dyn Reader, seq: u64) -> Result<Option<JournalEntry>, StoreError> {
    match reader.get(Keyspace::Journal, &seq.to_be_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError(format!("journal entry {seq} is unreadable: {e}"))),
        None => Ok(None),
    }
}

/// The sequence number the next message gets.
pub fn next_seq(store: &dyn Store) -> Result<u64, StoreError> {
    Ok(match store.last(Keyspace::Journal)? {
        Some((key, _)) => u64::from_be_bytes(key.try_into().unwrap_or([0; 8])) + 1,
        None => 1,
    })
}

/// Dedupe key: sending application + facility + control id (MSH-3, MSH-4, MSH-10).
pub fn dedupe_key(sender: &str, control_id: &str) -> Vec<u8> {
    format!("{sender}\u{0}{control_id}").into_bytes()
}

/// What dedupe remembers of an applied message: its journal entry and a fingerprint of its
/// content below MSH, so a different message that reuses a control id is told apart from a resend.
pub fn remember(tx: &mut Overlay<'_>, sender: &str, control_id: &str, seq: u64, fingerprint: [u8; 16]) {
    let mut value = seq.to_be_bytes().to_vec();
    value.extend_from_slice(&fingerprint);
    tx.put(Keyspace::Dedupe, dedupe_key(sender, control_id), value);
}

/// The journal entry of an earlier applied message with this sender and control id, and that
/// message's fingerprint.
pub fn seen(
    reader: &dyn Reader,
    sender: &str,
    control_id: &str,
) -> Result<Option<(JournalEntry, [u8; 16])>, StoreError> {
    let Some(value) = reader.get(Keyspace::Dedupe, &dedupe_key(sender, control_id))? else {
        return Ok(None);
    };
    let (seq, fingerprint) = value.split_at(8.min(value.len()));
    let seq = u64::from_be_bytes(seq.try_into().unwrap_or([0; 8]));
    let fingerprint = fingerprint.try_into().unwrap_or([0; 16]);
    Ok(get(reader, seq)?.map(|entry| (entry, fingerprint)))
}

/// A fingerprint of a message's content after its MSH segment (a resend may carry a new MSH-7).
pub fn fingerprint(message_text: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let body = message_text
        .find(['\r', '\n'])
        .map(|end| &message_text[end..])
        .unwrap_or("");
    let body: String = body
        .split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\r");
    let digest = Sha256::digest(body.as_bytes());
    digest[..16].try_into().expect("a sha256 digest has 32 bytes")
}
