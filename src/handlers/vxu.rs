//! VXU (unsolicited vaccination record update; HL7 v2 chapter 4): immunizations. A channel's
//! mapping makes each administration (RXA, in its ORC group) an Immunization, kept under an id
//! made from the order's filler number, so an update or a deletion (RXA-21 `U`, `D`) of the same
//! dose lands on it. The patient must be known (ERR 204 otherwise). HL7 defines VXU for event
//! V04 only; any other is refused before any channel.

use crate::hl7::Message;
use crate::store::Store;

use super::{Early, Handler, refuse_undefined_event};

pub(crate) struct Vxu;

impl Handler for Vxu {
    fn message_type(&self) -> &'static str {
        "VXU"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &["Immunization"]
    }

    fn before_routing(&self, message: &Message, _store: &dyn Store) -> Option<Early> {
        refuse_undefined_event(message, "V", &[4..=4])
    }
}
