//! Tributary: a healthcare interface engine for a patient portal's member community.
//!
//! Upstream systems push HL7 v2 over MLLP and FHIR R4 over HTTP; channels map what arrives into
//! the member store; every message is journaled and its ACK goes out only once it and all its
//! effects are durable. `ARCHITECTURE.md` draws the rooms and the one way through.
//!
//! - [`app`]: the composition root: starting and stopping the whole application.
//! - [`handlers`]: one per kind of inbound message (ADT, SIU, the PIX query, unreadable
//!   input), and the listener that reads frames and hands them on.
//! - [`api`]: the HTTP routers (FHIR REST, member accounts, journal, outbox, health).
//! - [`outbox`]: the durable outbox: fan-out (a projection), destination workers, adapters.
//! - [`schedule`]: scheduled jobs (cron): retry sweep, dead-letter digest, journal retention.
//! - [`domain`]: the business rules over the store: the MPI, resources, member accounts.
//! - [`deliveries`]: the delivery records and their moves (below the domain, which queues
//!   notifications).
//! - [`core`]: the commit core: jobs, the group committer, the journal, idempotency,
//!   projections.
//! - [`config`]: loading and validating `tributary.toml`; the mappings in force.
//! - [`hl7`], [`fhir`], [`mapping`], [`store`]: the parts that import nothing above them,
//!   workspace crates of their own under `crates/` (`tributary-hl7` ...), re-exported here.
//! - [`cli`]: the `tributary` command: serve, check-config, send, bench.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod core;
pub mod deliveries;
pub mod domain;
pub mod handlers;
pub mod outbox;
pub mod schedule;

// The parts that import nothing of the engine are workspace crates (`crates/`); under their old
// names here, `crate::hl7::Message` and `tributary::store::Store` read as they always did.
pub use tributary_fhir as fhir;
pub use tributary_hl7 as hl7;
pub use tributary_mapping as mapping;
pub use tributary_store as store;
