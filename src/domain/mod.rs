//! The business rules over the store, grouped by concept. Each is a set of functions over a
//! job's context or an overlay; none knows HTTP, MLLP or the engine.
//!
//! - [`mpi`]: the synced master patient index: patients, merges, identifier changes, PIX.
//! - [`resources`]: FHIR resources of every type: the write model, changes from mappings,
//!   versions, search.
//! - [`accounts`]: member accounts: members, enrollment, tokens, requests, roles, what members
//!   are told (notifications, templates), the audit trail.
//! - [`identity`]: credentials and sign-in: passwords, external credentials (OpenID Connect),
//!   one-time codes, sessions, the waits after failures and the request budget.
//! - [`proxies`]: proxy relationships and their RelatedPersons.
//! - [`engagement`]: profile updates, invitations to enroll, patient tasks.
//! - [`records`]: the member's records as the portal shows them (results, documents,
//!   appointments, the Summary, care plans), the site switches and notices of new records.
//! - [`branding`]: the portal's titles, palette and icon.
//! - [`messages`]: the member's messages: the boxes, what members write and where it goes, the
//!   messaging switches.
//! - [`directory`]: the providers and groups members write to, and their favourites.
//! - [`news`]: the news feeds' items and how their fetches went.
//! - [`consents`]: the member's consents, their answers changed and sent back.
//! - [`bills`]: the member's bills, their documents, the signed pay link and payment notices.
//! - [`saved_settings`]: settings saved at run time over the config's, audited.
//! - [`op`], [`refusal`]: what every member-account command works with, and how it says no.

pub(crate) mod accounts;
pub(crate) mod bills;
pub(crate) mod branding;
pub(crate) mod consents;
pub(crate) mod directory;
pub(crate) mod engagement;
pub(crate) mod identity;
pub(crate) mod messages;
pub(crate) mod mpi;
pub(crate) mod news;
pub(crate) mod op;
pub(crate) mod proxies;
pub(crate) mod records;
pub(crate) mod refusal;
pub(crate) mod resources;
pub(crate) mod saved_settings;

#[cfg(test)]
mod proxies_props_tests;

use std::sync::Arc;

use crate::core::Projection;

/// The domain's projections, in the order they feed each other: a patient's member search
/// entries, then the RelatedPersons of members who are proxies. The application registers
/// them with the core ahead of the outbox's fan-out.
pub fn projections() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(accounts::members::SearchEntries),
        Arc::new(proxies::RelatedPersons),
    ]
}
