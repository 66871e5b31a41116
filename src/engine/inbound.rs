//! A listener's inbound side: each received frame is read, routed to a channel, mapped, and
//! handed to the committer; the replies it gets back (after the commit) go to the sender.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tributary_adapter_core::{Inbound, InboundHandler};

use crate::domain::patients::{ChangeError, PatientChange};
use crate::engine::committer::{CommitterHandle, Job, JobInput};
use crate::engine::live_mappings::LiveMappings;
use crate::engine::pix_query;
use crate::engine::route::{Route, route};
use crate::hl7::{Charset, ErrLocation, ErrorCode, Message, Outcome, ParseError, encode};
use crate::mapping::{Input, Output, RunError};
use crate::store::Store;

/// The handler of one MLLP listener and the channels that share it.
pub struct ListenerInbound {
    pub routes: Vec<Route>,
    pub mappings: Arc<LiveMappings>,
    pub max_frame_bytes: usize,
    pub committer: CommitterHandle,
    /// Read by queries (PIX ITI-9), which are answered without changing anything.
    pub store: Arc<dyn Store>,
    /// What the journal names as the channel of a message no channel took.
    pub unrouted: Arc<str>,
    /// How much of a message no channel took the journal keeps when it is rejected.
    pub rejected_head_bytes: usize,
}

impl ListenerInbound {
    /// The channel and what the committer is given for one frame: the message and its mapped
    /// change, or why there is none; and whether a channel took it.
    fn read(&self, inbound: &Inbound) -> (Arc<str>, JobInput, bool) {
        let (channel, input) = self.read_unrouted(inbound);
        let routed = !Arc::ptr_eq(&channel, &self.unrouted);
        (channel, input, routed)
    }

    fn read_unrouted(&self, inbound: &Inbound) -> (Arc<str>, JobInput) {
        if let Some(size) = inbound.oversized {
            let error = ParseError {
                code: ErrorCode::InternalError,
                location: Some(at_segment("MSH", None)),
                text: format!(
                    "the message is {size} bytes, over this listener's limit of {} bytes",
                    self.max_frame_bytes
                ),
            };
            return (self.unrouted.clone(), unreadable(inbound, error));
        }
        let message = match Message::parse(&inbound.payload) {
            Ok(message) => message,
            Err(error) => return (self.unrouted.clone(), unreadable(inbound, error)),
        };
        let version = message.version();
        if !version.starts_with("2.") {
            let error = ParseError {
                code: ErrorCode::UnsupportedVersion,
                location: Some(at_segment("MSH", Some(12))),
                text: format!("HL7 version `{version}` is not supported (2.x only)"),
            };
            let change = Err(Outcome::Rejected(error));
            return (self.unrouted.clone(), JobInput::Hl7 { message, change });
        }
        if pix_query::is_pix_query(&message) {
            let control_id = format!(
                "K23{}",
                &message.control_id().chars().take(17).collect::<String>()
            );
            let replies = vec![pix_query::answer(self.store.as_ref(), &message, &control_id)];
            return (self.unrouted.clone(), JobInput::Answered { message, replies });
        }
        let (channel, change) = match route(&self.routes, &message) {
            Err(refused) => (self.unrouted.clone(), Err(refused)),
            Ok(route) => match route.check_sender(&message) {
                // Not the channel's: journaled as no channel's, head only.
                Err(refused) => (self.unrouted.clone(), Err(refused)),
                Ok(()) => (route.channel.clone(), self.map(route, &message)),
            },
        };
        (channel, JobInput::Hl7 { message, change })
    }

    fn map(&self, route: &Route, message: &Message) -> Result<PatientChange, Outcome> {
        let mappings = self.mappings.current();
        let mapping = mappings.get(&route.mapping).ok_or_else(|| {
            Outcome::Error(ParseError {
                code: ErrorCode::InternalError,
                location: None,
                text: format!("mapping `{}` is not loaded", route.mapping),
            })
        })?;
        let now = chrono::Utc::now().format("%Y%m%d%H%M%S+0000").to_string();
        let output = mapping
            .run(&Input::Hl7(message), &now)
            .map_err(|e| Outcome::Error(run_error(&e)))?;
        change_from(output)
    }
}

/// The store change a mapping's output asks for (`@action`, `@previous`).
fn change_from(output: Output) -> Result<PatientChange, Outcome> {
    PatientChange::from_output(output).map_err(|e| match e {
        ChangeError::NoPrevious => Outcome::Error(ParseError {
            code: ErrorCode::RequiredFieldMissing,
            location: Some(at_segment("MRG", Some(1))),
            text: "MRG-1 (prior patient identifier list) has no identifier".into(),
        }),
        other => Outcome::Error(ParseError {
            code: ErrorCode::InternalError,
            location: None,
            text: other.to_string(),
        }),
    })
}

/// A mapping's run error as an ERR: a required field missing at the path it names.
fn run_error(error: &RunError) -> ParseError {
    ParseError {
        code: ErrorCode::RequiredFieldMissing,
        location: location_of(&error.path),
        text: format!("{} ({}, mapping line {})", error.message, error.path, error.line),
    }
}

/// `PID-3[1].4.2` -> ERR-2 `PID^1^3^1^4^2`; None when the path is not an HL7 v2 path.
fn location_of(path: &str) -> Option<ErrLocation> {
    let (segment, rest) = path.split_once('-')?;
    let (segment, sequence) = match segment.split_once('[') {
        Some((name, n)) => (name, n.trim_end_matches(']').parse().ok()?),
        None => (segment, 1),
    };
    let mut parts = rest.split('.');
    let field_part = parts.next()?;
    let (field, repetition) = match field_part.split_once('[') {
        Some((f, r)) => (f.parse().ok()?, r.trim_end_matches(']').parse().ok()),
        None => (field_part.parse().ok()?, None),
    };
    Some(ErrLocation {
        segment: segment.to_string(),
        sequence,
        field: Some(field),
        repetition,
        component: parts.next().and_then(|c| c.parse().ok()),
        subcomponent: parts.next().and_then(|s| s.parse().ok()),
    })
}

fn at_segment(segment: &str, field: Option<u32>) -> ErrLocation {
    ErrLocation {
        segment: segment.into(),
        sequence: 1,
        field,
        repetition: None,
        component: None,
        subcomponent: None,
    }
}

fn unreadable(inbound: &Inbound, error: ParseError) -> JobInput {
    JobInput::Unreadable {
        text: String::from_utf8_lossy(&inbound.payload).into_owned(),
        error,
    }
}

impl InboundHandler for ListenerInbound {
    fn handle<'a>(&'a self, inbound: Inbound) -> Pin<Box<dyn Future<Output = Vec<Bytes>> + Send + 'a>> {
        Box::pin(async move {
            let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let (channel, input, routed) = self.read(&inbound);
            // Replies go out in the character set the message came in (an ACK echoes MSH-18).
            let charset = match &input {
                JobInput::Hl7 { message, .. } | JobInput::Answered { message, .. } => message.charset(),
                JobInput::Unreadable { error, .. } => {
                    tracing::warn!(peer = %inbound.peer, error = %error.text, "unreadable message");
                    Charset::Utf8
                }
            };
            let replies = self
                .committer
                .submit(|reply| Job {
                    channel,
                    peer: inbound.peer.clone(),
                    received_at,
                    input,
                    journal_head: (!routed).then_some(self.rejected_head_bytes),
                    reply,
                })
                .await;
            match replies {
                Some(replies) => replies.iter().map(|r| Bytes::from(encode(r, charset))).collect(),
                // The committer is gone (shutting down): no ACK, so the sender keeps the message.
                None => vec![],
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_paths_become_err_locations() {
        let location = location_of("PID-3[2].4.1").unwrap();
        assert_eq!(
            (
                location.segment.as_str(),
                location.sequence,
                location.field,
                location.repetition
            ),
            ("PID", 1, Some(3), Some(2))
        );
        assert_eq!((location.component, location.subcomponent), (Some(4), Some(1)));
        assert_eq!(location_of("OBX[2]-5").unwrap().sequence, 2);
        assert!(location_of("Patient.name").is_none());
    }
}
