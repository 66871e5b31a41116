//! SIU (scheduling information unsolicited; HL7 v2 chapter 10): appointments. A channel's
//! mapping makes each SIU event an Appointment change, found by its identifier (SCH-2 filler or
//! SCH-1 placer appointment id): a new booking (S12), a reschedule (S13), a modification (S14),
//! a cancellation (S15), ... each writes the appointment as the message has it. An event HL7
//! does not define (table 0003 has S12 to S26) is refused before any channel.

use crate::hl7::Message;
use crate::store::Store;

use super::{Early, Handler, refuse_undefined_event};

pub(crate) struct Siu;

impl Handler for Siu {
    fn message_type(&self) -> &'static str {
        "SIU"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &["Appointment"]
    }

    fn before_routing(&self, message: &Message, _store: &dyn Store) -> Option<Early> {
        refuse_undefined_event(message, "S", &[12..=26])
    }
}
