//! ORU (unsolicited observation results; HL7 v2 chapter 7): lab and radiology results. A
//! channel's mapping makes each order (OBR) a DiagnosticReport and each result (OBX) under it an
//! Observation, each kept under an id made from the sender's order number and observation id, so
//! a correction (OBX-11 `C`) replaces the result it corrects. The patient must be known (ERR 204
//! otherwise). HL7 defines R01 and, for point-of-care devices, R30 to R32; any other event is
//! refused before any channel.

use crate::hl7::Message;
use crate::store::Store;

use super::{Early, Handler, refuse_undefined_event};

pub(crate) struct Oru;

impl Handler for Oru {
    fn message_type(&self) -> &'static str {
        "ORU"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &["DiagnosticReport", "Observation"]
    }

    fn before_routing(&self, message: &Message, _store: &dyn Store) -> Option<Early> {
        refuse_undefined_event(message, "R", &[1..=1, 30..=32])
    }
}
