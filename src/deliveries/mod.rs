//! Deliveries: the records of what goes back out, and every move between their keyspaces. A
//! room below the domain: a domain service queues a notification here in its own write set;
//! the outbox (above the domain) decides what destinations hear of a change and delivers.
//!
//! - [`delivery`]: the delivery record, its key and its id.
//! - [`queue`]: queuing in a job's write set, and the moves between pending, delivered and
//!   dead letters.
//! - [`seal`]: notifications' secrets sealed while they wait, opened only to be sent.

pub(crate) mod delivery;
pub(crate) mod queue;
pub(crate) mod seal;

pub use delivery::{Delivery, State};
