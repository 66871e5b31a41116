//! The journal entry: what is kept of every inbound message (its channel, arrival time, status,
//! the replies it got and the message itself), appended to the store's journal in the same commit
//! as the message's effects.

use serde::{Deserialize, Serialize};

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
    /// No channel's filter takes it (answered AA, nothing applied), or an inbound
    /// acknowledgment (journaled, not answered).
    Filtered,
}

impl Status {
    /// Its name, as the journal's JSON writes it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Duplicate => "duplicate",
            Status::Error => "error",
            Status::Rejected => "rejected",
            Status::Filtered => "filtered",
        }
    }
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
    /// For a duplicate (or a different message reusing a control id): the entry it repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u64>,
    /// Patients the message wrote.
    pub patients: Vec<String>,
    /// The patient identifiers the message carries (PID-3 and MRG-1, first component), which
    /// the console finds it by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
    /// The records it changed: `Type/id` (`Type/id/_history/version` for a FHIR resource).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// Ids of the deliveries it queued in the outbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<String>,
    /// The replies sent back, in order (HL7 ACK text).
    pub replies: Vec<String>,
    /// The message as received (decoded text); only its head when it was rejected before any
    /// channel took it (see `message_bytes`).
    pub message: String,
    /// The whole message's size, when `message` holds only its head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_bytes: Option<usize>,
}

impl JournalEntry {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a journal entry always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<JournalEntry, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
