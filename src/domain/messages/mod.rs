//! A member's messages (release notes 6.6, switches of 5.3). Every message is a FHIR
//! Communication: providers' systems and external systems post theirs to `/fhir` (or an HL7 v2
//! feed maps them), members write theirs through the API, and each member keeps their own
//! read and archived state.
//!
//! - [`inbox`]: the boxes (Inbox, Sent, Archived), a message opened or marked, attachments.
//! - [`sending`]: what members write (new messages per category, replies) and where it goes.
//! - [`switches`]: which directions of messaging the site offers now.

pub mod inbox;
pub mod sending;
pub mod switches;

pub use inbox::{MessageBox, attachment, mark, of_patient, open};
