//! Domain services over the member store. Today: patients (the synced MPI). Members, tokens,
//! proxies, invitations, tasks, profile updates and audit join here.

pub mod patient_merge;
pub mod patients;
pub mod pix;
pub mod resources;

// Member accounts (issue #5).
pub mod accounts;
pub mod audit;
pub mod enrollment;
pub mod members;
pub mod notify;
pub mod op;
pub mod patient_search;
pub mod refusal;
pub mod requests;
pub mod roles;
pub mod secrets;
pub mod templates;
pub mod tokens;

// Engagement APIs (issue #7): profile updates, invitations to enroll, patient tasks.
pub mod engagement;

// Credentials and sign-in (issue #6): passwords, one-time codes, sessions, external
// credentials over OpenID Connect / OAuth 2.0; the waits after failures and the request budget
// per address (issue #12).
pub mod credentials;
pub mod oidc;
pub mod otp;
pub mod proxies;
pub mod sessions;
pub mod signin;
pub mod throttle;

use std::sync::Arc;

use crate::core::Projection;

/// The domain's projections, in the order they feed each other: a patient's member search
/// entries, then the RelatedPersons of members who are proxies. The application registers
/// them with the core ahead of the outbox's fan-out.
pub fn projections() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(members::SearchEntries),
        Arc::new(proxies::RelatedPersons),
    ]
}
