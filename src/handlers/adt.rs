//! ADT (admit, discharge, transfer; HL7 v2 chapter 3): patient demographics. A channel's mapping
//! makes each ADT event a Patient change: an update from the PID (A01-A17, A28, A31, ...), a
//! merge (A40, MRG-1 the patient retired), an identifier change (A47). An event HL7 does not
//! define is refused before any channel.

use crate::hl7::{ErrLocation, ErrorCode, Message, Outcome, ParseError};
use crate::store::Store;

use super::{Early, Handler};

pub(crate) struct Adt;

impl Handler for Adt {
    fn message_type(&self) -> &'static str {
        "ADT"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &["Patient"]
    }

    fn before_routing(&self, message: &Message, _store: &dyn Store) -> Option<Early> {
        unknown_event(message).map(Early::Refused)
    }
}

/// AR 201 for an ADT event HL7 does not define (table 0003 has A01 to A62): channels take every
/// ADT event, so without this a made-up event would be applied as an update.
fn unknown_event(message: &Message) -> Option<Outcome> {
    let event = message.trigger_event();
    let defined = event
        .strip_prefix('A')
        .filter(|n| n.len() == 2)
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=62).contains(&n));
    if defined {
        return None;
    }
    Some(Outcome::Rejected(ParseError {
        code: ErrorCode::UnsupportedEvent,
        location: Some(ErrLocation {
            segment: "MSH".into(),
            sequence: 1,
            field: Some(9),
            repetition: None,
            component: Some(2),
            subcomponent: None,
        }),
        text: format!("`ADT^{event}` is not an ADT event HL7 defines (A01 to A62)"),
    }))
}
