//! Unreadable input: bytes that are not an HL7 v2 message (no MSH, broken delimiters, over the
//! listener's frame limit). They are answered AR, in the listener's default HL7 version since
//! the message names none that can be trusted, and journaled (only their head, as no channel
//! took them).

use tributary_adapter_core::Inbound;

use crate::hl7::{ParseError, reject_unparsed};

use super::message_job::{JobInput, ack_id};
use super::replies::AckPolicy;

/// What the committer is given for bytes that could not be read.
pub(crate) fn input(inbound: &Inbound, error: ParseError) -> JobInput {
    JobInput::Unreadable {
        text: String::from_utf8_lossy(&inbound.payload).into_owned(),
        error,
    }
}

/// The AR for unreadable `text`.
pub(crate) fn answer(text: &str, error: &ParseError, seq: u64, policy: &AckPolicy) -> String {
    reject_unparsed(text, error, ack_id(seq, 0), &policy.settings.default_version)
}
