//! Tributary: a healthcare interface engine for a patient portal's member community.
//!
//! Upstream systems push HL7 v2 over MLLP and FHIR R4 over HTTP; channels map what arrives into
//! the member store; every message is journaled and its ACK goes out only once it and all its
//! effects are durable. `ARCHITECTURE.md` draws the rooms and the one way through.
//!
//! The modules are the crate's own (`pub(crate)`); what other crates (the binary, the
//! integration tests, the benches and fuzz targets) use is re-exported below: [`main`], the FHIR
//! body reader ([`FhirFormat`], [`parse_fhir_body`]) and the workspace crates.
//!
//! - `app`: the composition root: starting and stopping the whole application.
//! - `handlers`: one per kind of inbound message (ADT, SIU, the PIX query, unreadable
//!   input), and the listener that reads frames and hands them on.
//! - `api`: the HTTP routers (FHIR REST, member accounts, journal, outbox, health).
//! - `outbox`: the durable outbox: fan-out (a projection), destination workers, adapters.
//! - `schedule`: scheduled jobs (cron): retry sweep, dead-letter digest, journal retention.
//! - `domain`: the business rules over the store: the MPI, resources, member accounts.
//! - `deliveries`: the delivery records and their moves (below the domain, which queues
//!   notifications).
//! - `core`: the commit core: jobs, the group committer, the journal, idempotency,
//!   projections.
//! - `config`: loading and validating `tributary.toml`; the mappings in force.
//! - [`hl7`], [`fhir`], [`mapping`], [`store`]: the parts that import nothing above them,
//!   workspace crates of their own under `crates/` (`tributary-hl7` ...), re-exported here.
//! - `cli`: the `tributary` command: serve, check-config, send, bench.
//! - `metrics`: the Prometheus metrics: names, the recorder, what `/metrics` renders.
//! - `traces`: the span tree of each message and request, exported over OTLP when configured.

pub(crate) mod api;
pub(crate) mod app;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod core;
pub(crate) mod deliveries;
pub(crate) mod domain;
pub(crate) mod handlers;
pub(crate) mod metrics;
pub(crate) mod outbox;
pub(crate) mod schedule;
pub(crate) mod traces;

/// The `tributary` command (`src/main.rs`): parses the arguments and runs the subcommand.
pub use cli::main;

/// What the FHIR endpoint reads a request body as, and how it reads one (UTF-8, then JSON or
/// XML -> JSON, bounded in size and nesting): the fuzz targets run the reader as the endpoint does.
pub use api::fhir::format::{Format as FhirFormat, parse_body as parse_fhir_body};

// The parts that import nothing of the engine are workspace crates (`crates/`); under their old
// names here, `crate::hl7::Message` and `tributary::store::Store` read as they always did.
pub use tributary_fhir as fhir;
pub use tributary_hl7 as hl7;
pub use tributary_mapping as mapping;
pub use tributary_store as store;
