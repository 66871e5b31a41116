//! Tributary: a healthcare interface engine for a patient portal's member community.
//!
//! Upstream systems push HL7 v2 over MLLP (and FHIR R4 over HTTP); channels map what arrives into
//! the member store; every message is journaled and its ACK goes out only once it and all its
//! effects are durable.
//!
//! - [`config`]: loading and validating `tributary.toml`.
//! - [`engine`]: channels' inbound side, the journal and the group committer, start and shutdown.
//! - [`hl7`]: the HL7 v2 message view, escapes, batches, the ACK builder and the writer.
//! - [`mapping`]: from inbound messages to store changes.
//! - [`domain`]: the business rules over the store (patients today).
//! - [`outbox`]: the durable outbox: deliveries, retries, dead letters, destination workers.
//! - [`schedule`]: scheduled jobs (cron): retry sweep, dead-letter digest, journal retention.
//! - [`store`]: the storage contract and its embedded sled backend.
//! - [`fhir`]: FHIR R4 Bundles and OperationOutcomes.
//! - [`api`]: the HTTP routers.
//! - [`cli`]: the `tributary` command: serve, check-config, send, bench.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod fhir;
pub mod hl7;
pub mod mapping;
pub mod outbox;
pub mod schedule;
pub mod store;
