//! Projections: what follows from a change, kept in step in the same write set.
//!
//! Rooms do not call across to keep their derived records current (a member's search entries
//! when its patient is renamed, a proxy's RelatedPerson when the member changes, what the
//! outbox sends about a resource). Each registers a projection with the core instead, naming the
//! kinds of record it follows; [`super::Context::stage`] runs them, in registration order, over
//! the records a change wrote. A projection's own writes are noted like any other, so a later
//! projection sees them: register them in the order they feed each other.

use std::sync::Arc;

use crate::store::{Changed, StoreError};

use super::Context;

pub trait Projection: Send + Sync {
    /// Whether this projection follows changes to records of `kind` (`Patient`, `Member`, ...).
    fn follows(&self, kind: &str) -> bool;
    /// Brings what this projection keeps in step with `changed` (records of the kinds it
    /// follows), writing through `ctx`. An error drops the whole change.
    fn project(&self, ctx: &mut Context<'_, '_>, changed: &[Changed]) -> Result<(), StoreError>;
}

/// The projections of one engine, in the order they run.
pub type Projections = Arc<[Arc<dyn Projection>]>;
