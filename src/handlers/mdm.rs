//! MDM (medical document management; HL7 v2 chapter 9): clinical documents, and the messages an
//! upstream sends patients as documents. A channel's mapping makes each MDM event a
//! DocumentReference (or, for messages, a Communication) kept under its unique document number
//! (TXA-12): an
//! original (T02), an addendum (T06, appending its parent), a replacement (T10, superseding its
//! parent), a cancel (T11, marking it entered-in-error), status changes and edits. The patient
//! must be known (ERR 204 otherwise). HL7 defines T01 to T11; any other event is refused before
//! any channel.

use crate::hl7::Message;
use crate::store::Store;

use super::{Early, Handler, refuse_undefined_event};

pub(crate) struct Mdm;

impl Handler for Mdm {
    fn message_type(&self) -> &'static str {
        "MDM"
    }

    fn resource_types(&self) -> &'static [&'static str] {
        &["DocumentReference", "Communication"]
    }

    fn before_routing(&self, message: &Message, _store: &dyn Store) -> Option<Early> {
        refuse_undefined_event(message, "T", &[1..=11])
    }
}
