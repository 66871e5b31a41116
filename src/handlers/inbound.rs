//! A listener's inbound side: each received frame is read, given to the handler of its type,
//! routed to a channel, mapped, and handed to the committer; the reply it gets back (after the commit) goes to the sender. A frame
//! holding an FHS/BHS batch is split: each message goes its own way through, and the frame is
//! answered with one batch ACK. Either way one frame (or none) answers one frame.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tracing::Instrument;
use tributary_adapter_core::{Inbound, InboundHandler};

use crate::config::OnFiltered;
use crate::config::live_mappings::LiveMappings;
use crate::core::CommitterHandle;
use crate::domain::resources::change::{ChangeError, ResourceChange};
use crate::hl7::{
    Charset, ErrLocation, ErrorCode, Message, Outcome, ParseError, batch_ack, encode, read_batch,
};
use crate::mapping::{Input, RunError};
use crate::store::Store;

use super::message_job::{JobInput, MessageJob};
use super::replies::AckPolicy;
use super::route::{Route, route};
use super::{Early, Handler, unreadable};

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
    /// How messages no channel took are answered (no application ACK destination: the sender
    /// is no channel's).
    pub unrouted_acks: Arc<AckPolicy>,
    /// A message no channel's filter takes: answered AA and journaled `filtered`, or rejected.
    pub on_filtered: OnFiltered,
}

/// What one message becomes before the committer: its channel, its input, how it is answered,
/// and whether a channel took it.
struct Read {
    channel: Arc<str>,
    input: JobInput,
    acks: Arc<AckPolicy>,
    routed: bool,
}

impl ListenerInbound {
    /// The channel and what the committer is given for one frame: the message and its mapped
    /// change, or why there is none; and whether a channel took it.
    fn read(&self, inbound: &Inbound) -> Read {
        let (channel, input, acks) = self.read_unrouted(inbound);
        let routed = !Arc::ptr_eq(&channel, &self.unrouted);
        Read {
            channel,
            input,
            acks: acks.unwrap_or_else(|| self.unrouted_acks.clone()),
            routed,
        }
    }

    fn read_unrouted(&self, inbound: &Inbound) -> (Arc<str>, JobInput, Option<Arc<AckPolicy>>) {
        if let Some(size) = inbound.oversized {
            let error = ParseError {
                code: ErrorCode::InternalError,
                location: Some(at_segment("MSH", None)),
                text: format!(
                    "the message is {size} bytes, over this listener's limit of {} bytes",
                    self.max_frame_bytes
                ),
            };
            return (self.unrouted.clone(), unreadable::input(inbound, error), None);
        }
        let parsed = crate::trace_step!("parse").in_scope(|| Message::parse(&inbound.payload));
        let message = match parsed {
            Ok(message) => message,
            Err(error) => return (self.unrouted.clone(), unreadable::input(inbound, error), None),
        };
        let span = tracing::Span::current();
        span.record("control_id", message.control_id());
        span.record(
            "message_type",
            format!("{}^{}", message.message_type(), message.trigger_event()),
        );
        self.read_message(message)
    }

    fn read_message(&self, message: Message) -> (Arc<str>, JobInput, Option<Arc<AckPolicy>>) {
        let version = message.version();
        if !version.starts_with("2.") {
            let error = ParseError {
                code: ErrorCode::UnsupportedVersion,
                location: Some(at_segment("MSH", Some(12))),
                text: format!("HL7 version `{version}` is not supported (2.x only)"),
            };
            let changes = Err(Outcome::Rejected(error));
            return (self.unrouted.clone(), JobInput::Hl7 { message, changes }, None);
        }
        // An acknowledgment answers something; answering it back would start a ping-pong.
        if message.message_type() == "ACK" {
            let input = JobInput::Filtered {
                message,
                reason: "an acknowledgment: journaled, not answered".into(),
                answer: false,
            };
            return (self.unrouted.clone(), input, None);
        }
        let handler = super::for_message(&message);
        match handler.and_then(|h| h.before_routing(&message, self.store.as_ref())) {
            Some(Early::Refused(refused)) => {
                let changes = Err(refused);
                return (self.unrouted.clone(), JobInput::Hl7 { message, changes }, None);
            }
            Some(Early::Answered(replies)) => {
                return (
                    self.unrouted.clone(),
                    JobInput::Answered { message, replies },
                    None,
                );
            }
            None => {}
        }
        let route = match route(&self.routes, &message) {
            Err(Outcome::Rejected(why)) if self.on_filtered == OnFiltered::Accept => {
                let input = JobInput::Filtered {
                    message,
                    reason: why.text,
                    answer: true,
                };
                return (self.unrouted.clone(), input, None);
            }
            Err(refused) => {
                let changes = Err(refused);
                return (self.unrouted.clone(), JobInput::Hl7 { message, changes }, None);
            }
            Ok(route) => route,
        };
        if let Err(refused) = route.check_sender(&message) {
            // Not the channel's: journaled as no channel's, head only.
            let changes = Err(refused);
            return (self.unrouted.clone(), JobInput::Hl7 { message, changes }, None);
        }
        let changes = match handler {
            Some(handler) => crate::trace_step!("map", mapping = %route.mapping)
                .in_scope(|| self.map(route, &message, handler)),
            None => Err(unsupported_type(&message)),
        };
        (
            route.channel.clone(),
            JobInput::Hl7 { message, changes },
            Some(route.acks.clone()),
        )
    }

    /// Hands one read message to the committer; its replies once durable, None when the
    /// committer is gone.
    async fn submit(&self, read: Read, peer: &str, received_at: String) -> Option<Vec<String>> {
        let Read {
            channel,
            input,
            acks,
            routed,
        } = read;
        let mut job = MessageJob {
            channel,
            peer: peer.to_owned(),
            received_at,
            input,
            journal_head: (!routed).then_some(self.rejected_head_bytes),
            acks,
            prepared: None,
        };
        job.prepare_changes(&self.committer, self.store.as_ref());
        let (reply, replied) = tokio::sync::oneshot::channel();
        if !self.committer.send(job.into_job(reply)).await {
            return None;
        }
        replied.await.ok()
    }

    /// An FHS/BHS batch in one frame: each message applied in order, as if it came alone, and
    /// one batch ACK holding each message's reply. None when the frame is not a batch.
    async fn answer_batch(&self, inbound: &Inbound, received_at: &str) -> Option<Vec<Bytes>> {
        if inbound.oversized.is_some() {
            return None;
        }
        let head = inbound.payload.get(..inbound.payload.len().min(8))?;
        let head = String::from_utf8_lossy(head);
        let head = head.trim_start_matches(['\u{feff}', '\r', '\n', ' ']);
        if !(head.starts_with("FHS") || head.starts_with("BHS")) {
            return None;
        }
        // The envelope is ASCII; each message inside is decoded by its own MSH-18 below.
        let text: String = inbound.payload.iter().map(|&b| b as char).collect();
        let lines = || text.split(['\r', '\n']).map(|l| l.trim_start_matches('\u{feff}'));
        let file_header = lines().find(|l| l.starts_with("FHS"));
        let batch_header = lines().find(|l| l.starts_with("BHS"));
        let messages = match read_batch(&text) {
            Ok(batch) => {
                for warning in &batch.warnings {
                    tracing::warn!(peer = %inbound.peer, %warning, "batch");
                }
                batch.messages
            }
            Err(_) => vec![],
        };
        let mut charset = Charset::Utf8;
        let mut acks = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            let bytes: Vec<u8> = message.chars().map(|c| c as u32 as u8).collect();
            let part = Inbound {
                payload: Bytes::from(bytes),
                peer: inbound.peer.clone(),
                oversized: None,
            };
            let read = self.read(&part);
            if i == 0
                && let JobInput::Hl7 { message, .. }
                | JobInput::Answered { message, .. }
                | JobInput::Filtered { message, .. } = &read.input
            {
                charset = message.charset();
            }
            let Some(replies) = self.submit(read, &inbound.peer, received_at.to_owned()).await else {
                // The committer is gone (shutting down): no ACK, so the sender sends it again.
                return Some(vec![]);
            };
            acks.extend(replies);
        }
        let control_id = format!(
            "TRBB{}",
            received_at
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        );
        let ack = batch_ack(file_header, batch_header, &acks, &control_id);
        Some(vec![Bytes::from(encode(&ack, charset))])
    }

    /// The resource changes the channel's mapping makes of a message, each of a type its
    /// handler accepts.
    fn map(
        &self,
        route: &Route,
        message: &Message,
        handler: &dyn Handler,
    ) -> Result<Vec<ResourceChange>, Outcome> {
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
            .map_err(|e| Outcome::Error(run_error(&e, &route.mapping)))?;
        let changes = ResourceChange::from_output(output).map_err(|e| match e {
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
        })?;
        let accepted = handler.resource_types();
        if let Some(other) = changes.iter().find(|c| !accepted.contains(&c.resource_type())) {
            return Err(Outcome::Error(ParseError {
                code: ErrorCode::InternalError,
                location: None,
                text: format!(
                    "mapping `{}` wrote a {}, which a {} message does not change (it changes {})",
                    route.mapping,
                    other.resource_type(),
                    handler.message_type(),
                    accepted.join(", ")
                ),
            }));
        }
        Ok(changes)
    }
}

/// AR 200 for a message of a type no handler takes (a channel whose filter takes any type).
fn unsupported_type(message: &Message) -> Outcome {
    Outcome::Rejected(ParseError {
        code: ErrorCode::UnsupportedMessageType,
        location: Some(at_segment("MSH", Some(9))),
        text: format!(
            "`{}` messages are not handled here (ADT, SIU, ORU, MDM and QBP^Q23 are)",
            message.message_type()
        ),
    })
}

/// A mapping's run error as an ERR: a required field missing at the path it names, and the
/// mapping and line of the rule that failed (the console links it to that line).
fn run_error(error: &RunError, mapping: &str) -> ParseError {
    ParseError {
        code: ErrorCode::RequiredFieldMissing,
        location: location_of(&error.path),
        text: format!(
            "{} ({}, mapping {mapping} line {})",
            error.message, error.path, error.line
        ),
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

impl InboundHandler for ListenerInbound {
    fn handle<'a>(&'a self, inbound: Inbound) -> Pin<Box<dyn Future<Output = Vec<Bytes>> + Send + 'a>> {
        let span = crate::traces::message_span();
        Box::pin(
            async move {
                let started = std::time::Instant::now();
                let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                if let Some(batch_ack) = self.answer_batch(&inbound, &received_at).await {
                    return batch_ack;
                }
                let read = self.read(&inbound);
                // Replies go out in the character set the message came in (an ACK echoes MSH-18).
                let charset = match &read.input {
                    JobInput::Hl7 { message, .. }
                    | JobInput::Answered { message, .. }
                    | JobInput::Filtered { message, .. } => message.charset(),
                    JobInput::Unreadable { error, .. } => {
                        tracing::warn!(peer = %inbound.peer, error = %error.text, "unreadable message");
                        Charset::Utf8
                    }
                };
                let channel = read.channel.clone();
                tracing::Span::current().record("channel", &*channel);
                let replies = self.submit(read, &inbound.peer, received_at).await;
                crate::metrics::ack_latency(&channel, started.elapsed());
                let _ack = crate::trace_step!("ack", replies = replies.as_ref().map_or(0, Vec::len) as i64)
                    .entered();
                match replies {
                    Some(replies) => replies.iter().map(|r| Bytes::from(encode(r, charset))).collect(),
                    // The committer is gone (shutting down): no ACK, so the sender keeps the message.
                    None => vec![],
                }
            }
            .instrument(span),
        )
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
