//! ADT (admit, discharge, transfer; HL7 v2 chapter 3): patient demographics. A channel's mapping
//! makes each ADT event a Patient change: an update from the PID (A01-A17, A28, A31, ...), a
//! merge (A40, MRG-1 the patient retired), an identifier change (A47). An event HL7 does not
//! define (table 0003 has A01 to A62) is refused before any channel: channels take every ADT
//! event, so a made-up one would otherwise be applied as an update. A60 (update allergy
//! information) carries no demographics: a channel ahead of the demographics one maps its IAM
//! segments to AllergyIntolerances.

use crate::hl7::Message;
use crate::store::Store;

use super::{Early, Handler, refuse_undefined_event};

pub(crate) struct Adt;

impl Handler for Adt {
    fn message_type(&self) -> &'static str {
        "ADT"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &["Patient", "AllergyIntolerance"]
    }

    fn before_routing(&self, message: &Message, _store: &dyn Store) -> Option<Early> {
        refuse_undefined_event(message, "A", &[1..=62])
    }
}
