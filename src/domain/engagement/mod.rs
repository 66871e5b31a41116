//! The engagement APIs (issue #7): what external systems and the portal push to us, and what we
//! push out because of it.
//!
//! - [`profile`]: a member updates address, email, mobile, language or preference; the Patient
//!   and the member record change at once, the UCR (and TrakCare) are sent the change, PIX
//!   consumers hear of it, and the UCR's echo of it sends nothing again.
//! - [`invitations`]: invitations to enroll, in the person's language, suppressed for members
//!   and for repeats inside a window; each with a status to follow.
//! - [`tasks`]: patient tasks (documents, questionnaires) as FHIR Task with the resources they
//!   name; the member is notified; answers are stored and pushed back to TrakCare.

pub(crate) mod invitations;
pub(crate) mod profile;
pub(crate) mod tasks;
