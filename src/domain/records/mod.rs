//! The member's records as the portal shows them: read models over the FHIR resources the
//! feeds keep (results today), shaped for a member and their proxies, never written here.
//!
//! - [`results`]: lab and radiology results, each with its range and where its value falls.
//! - [`documents`]: clinical documents, text shown inline, others downloaded.
//! - [`appointments`]: next, upcoming, past and cancelled, and one as an iCalendar event.

pub(crate) mod appointments;
pub(crate) mod documents;
pub(crate) mod results;
