//! PPR (patient problem; HL7 v2 chapter 12): the patient's problem list. A channel's mapping
//! makes each problem (PRB) a Condition, kept under an id made from the problem's instance id
//! (PRB-4), so an update or a deletion of the same problem lands on it. The patient must be
//! known (ERR 204 otherwise). HL7 defines PPR for events PC1 (add), PC2 (update) and PC3
//! (delete); any other is refused before any channel.

use crate::hl7::Message;
use crate::store::Store;

use super::{Early, Handler, refuse_undefined_event};

pub(crate) struct Ppr;

impl Handler for Ppr {
    fn message_type(&self) -> &'static str {
        "PPR"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &["Condition"]
    }

    fn before_routing(&self, message: &Message, _store: &dyn Store) -> Option<Early> {
        refuse_undefined_event(message, "PC", &[1..=3])
    }
}
