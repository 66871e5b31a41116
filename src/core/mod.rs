//! The commit core: the one way every change reaches the store.
//!
//! A unit of work is a [`Job`]: an inbound message (built by a handler in `crate::handlers`) or a
//! command from the API or a scheduled job, boxed the same way. The [`committer`] runs jobs one
//! after another on one thread, each with a [`Context`] over the batch's pending writes; a job
//! yields its writes, its journal entry and what answers its caller. The batch is committed as
//! one write set and made durable with one sync, and only then is anyone answered.
//!
//! A change is applied with [`Context::stage`]: in its own overlay, followed in the same write
//! set by every [`Projection`] registered for the kinds of record it changed (search indexes,
//! derived resources, outbox fan-out), or not at all.
//!
//! A change can be worked out before the committer, on the connection's task, and only checked
//! there ([`CommitterHandle::prepare`], [`Context::take_prepared`]): the serial part stays small.
//!
//! This module knows nothing of HL7, FHIR or patients: it speaks of jobs, records changed by
//! kind and id, journal entries and replies.

mod committer;
mod context;
pub(crate) mod idempotency;
pub(crate) mod journal;
pub(crate) mod journal_index;
mod prepared;
mod projection;

pub use committer::{CommitterHandle, Done, Finished, Job, NotStored, Release, commit_time, start};
#[cfg(test)]
pub use context::run_direct;
pub use context::{Context, Deliveries};
pub use prepared::Prepared;
pub use projection::{Projection, Projections};
