//! The engine's integration tests, as one test binary (`cargo test --test it`): one link of the
//! engine instead of one per file. Each file here is a module, so its tests are named after it:
//! `cargo test --test it members_api::` runs that file's tests alone.
//!
//! Every test shares this one process with all the others and runs beside them (libtest's
//! threads), so none may rely on process-wide state (environment variables, the working folder, a
//! global logger): each takes its own temp folder, lets the OS choose its ports and starts its own
//! engine process.

// What the test files share (used as `crate::common::...`).
mod common;
mod console;
mod console_browser;
mod credentials_support;
mod engagement_support;
mod fhir_packages;
mod members_support;

mod ack_validation;
mod acks;
mod branding;
mod checkpoint_crash;
mod cli;
mod connections;
mod corpus;
mod credentials_external;
mod credentials_signin;
mod disk_full;
mod documents;
mod engagement_invitations;
mod engagement_profile;
mod engagement_tasks;
mod engine_mllp;
mod fhir_clients;
mod fhir_examples;
mod fhir_examples_http;
mod fhir_rest;
mod fixtures;
mod hl7_inputs;
mod http_edge;
mod mapping_golden;
mod mappings;
mod members_api;
mod members_bills;
mod members_care_plans;
mod members_consents;
mod members_messages;
mod members_proxies;
mod members_requests;
mod members_results;
mod members_roles;
mod members_summary;
mod metrics;
mod news;
mod outbox;
mod outbox_secrets;
mod pix_query;
mod reload;
mod results;
mod scale_out;
mod schedule;
mod scheduling;
mod summary_feeds;
mod tls;
mod traces;
mod untrusted_senders;
mod upstream_demographics;
