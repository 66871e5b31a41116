//! SIU (scheduling information unsolicited; HL7 v2 chapter 10): appointments. A channel's
//! mapping makes each SIU event an Appointment change, found by its identifier (SCH-1 placer or
//! SCH-2 filler appointment id): a new booking (S12), a reschedule (S13), a modification (S14),
//! a cancellation (S15), ... each writes the appointment as the message has it. An event HL7
//! does not define (table 0003 has S12 to S26) is refused before any channel.

use crate::hl7::{ErrLocation, ErrorCode, Message, Outcome, ParseError};
use crate::store::Store;

use super::{Early, Handler};

pub(crate) struct Siu;

impl Handler for Siu {
    fn message_type(&self) -> &'static str {
        "SIU"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &["Appointment"]
    }

    fn before_routing(&self, message: &Message, _store: &dyn Store) -> Option<Early> {
        let event = message.trigger_event();
        let defined = event
            .strip_prefix('S')
            .filter(|n| n.len() == 2)
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (12..=26).contains(&n));
        if defined {
            return None;
        }
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
            text: format!("`SIU^{event}` is not a scheduling event HL7 defines (S12 to S26)"),
        })))
    }
}
