//! The member's records as the portal shows them: read models over the FHIR resources the
//! feeds keep, shaped for a member and their proxies, never written here.
//!
//! - [`results`]: lab and radiology results, each with its range and where its value falls.
//! - [`documents`]: clinical documents, text shown inline, others downloaded.
//! - [`appointments`]: next, upcoming, past and cancelled, and one as an iCalendar event.
//! - [`care_plans`]: active, completed and To Do, and a plan's questionnaire answered back.
//! - [`summary`]: allergies, conditions, medications, immunizations ..., by type.
//! - [`notices`]: telling a member of a new result, document or appointment.
//! - [`site`]: the site switches in force (which parts and types show, info buttons).

pub(crate) mod appointments;
pub(crate) mod care_plans;
pub(crate) mod documents;
pub(crate) mod notices;
pub(crate) mod results;
pub(crate) mod site;
pub(crate) mod summary;
