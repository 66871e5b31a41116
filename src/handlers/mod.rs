//! Handlers: what the engine does with each kind of inbound HL7 v2 message, one file each (as
//! mini-redis keeps one file per command).
//!
//! Every message goes one way through: the listener ([`inbound`]) reads the frame (bytes that
//! are no message go to [`unreadable`]), the registry below names the handler of its type, the
//! handler answers it before any channel if it must (a query, an event HL7 does not define),
//! else the message is routed to a channel ([`route`]), mapped by the channel's mapping into
//! resource changes of the types the handler accepts, and handed to the committer as a
//! [`message_job`]: idempotency, the changes staged with their projections, the ACKs by the
//! channel's policy ([`replies`]), the journal.
//!
//! Adding a kind of message is one file here (its type, the resource types its mappings may
//! write, what it answers before routing), its mappings with their golden tests, and one line
//! in [`HANDLERS`].

mod adt;
pub(crate) mod inbound;
pub(crate) mod live_listener;
mod mdm;
mod message_job;
mod oru;
mod pix_query;
mod ppr;
pub(crate) mod replies;
pub(crate) mod reprocess;
pub(crate) mod route;
mod siu;
mod unreadable;
mod vxu;

use std::ops::RangeInclusive;

use crate::config::MessageKind;
use crate::hl7::{ErrLocation, ErrorCode, Message, Outcome, ParseError};
use crate::store::Store;

/// A kind of inbound message and what is particular to it.
pub(crate) trait Handler: Send + Sync {
    /// The message type it takes (MSH-9.1).
    fn message_type(&self) -> &'static str;
    /// The FHIR resource types a channel's mapping may write for it (check-config holds every
    /// channel's mapping to them); none for a message answered before any channel.
    fn resource_types(&self) -> &'static [&'static str];
    /// Its answer before any channel, if it has one: a query answered from the store, or a
    /// message refused for what it is. None routes it to a channel.
    fn before_routing(&self, message: &Message, store: &dyn Store) -> Option<Early>;
}

/// A message answered before any channel.
pub(crate) enum Early {
    /// Refused (AR) or failed (AE) for what it is.
    Refused(Outcome),
    /// Answered (a query): the replies, journaled as applied.
    Answered(Vec<String>),
}

/// AR 201 for an event of `message`'s type that HL7 does not define (table 0003: the events
/// `prefix` followed by digits, three characters in all, in one of the `defined` ranges: `A`
/// and 01 to 62 for ADT, `PC` and 1 to 3 for PPR): without it, a made-up event would be applied
/// as if it were one of them.
fn refuse_undefined_event(message: &Message, prefix: &str, defined: &[RangeInclusive<u8>]) -> Option<Early> {
    let event = message.trigger_event();
    let width = 3usize.saturating_sub(prefix.len());
    let known = event
        .strip_prefix(prefix)
        .filter(|n| n.len() == width && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| defined.iter().any(|range| range.contains(&n)));
    if known {
        return None;
    }
    let message_type = message.message_type();
    let name = |n: u8| format!("{prefix}{n:0width$}");
    let events: Vec<String> = defined
        .iter()
        .map(|range| {
            if range.start() == range.end() {
                name(*range.start())
            } else {
                format!("{} to {}", name(*range.start()), name(*range.end()))
            }
        })
        .collect();
    Some(Early::Refused(Outcome::Rejected(ParseError {
        code: ErrorCode::UnsupportedEvent,
        location: Some(ErrLocation {
            segment: "MSH".into(),
            sequence: 1,
            field: Some(9),
            repetition: None,
            component: Some(2),
            subcomponent: None,
        }),
        text: format!(
            "`{message_type}^{event}` is not an event HL7 defines for {message_type} ({})",
            events.join(", ")
        ),
    })))
}

/// Every handler: one line each.
const HANDLERS: &[&dyn Handler] = &[
    &adt::Adt,
    &siu::Siu,
    &oru::Oru,
    &mdm::Mdm,
    &vxu::Vxu,
    &ppr::Ppr,
    &pix_query::PixQuery,
];

/// The handler of a message, by its type.
pub(crate) fn for_message(message: &Message) -> Option<&'static dyn Handler> {
    let message_type = message.message_type();
    HANDLERS
        .iter()
        .copied()
        .find(|h| h.message_type() == message_type)
}

/// What each kind of message accepts from a channel's mapping, for check-config.
pub fn message_kinds() -> Vec<MessageKind> {
    HANDLERS
        .iter()
        .map(|h| MessageKind {
            message_type: h.message_type(),
            resource_types: h.resource_types(),
        })
        .collect()
}
