//! The adapter contract: what every edge of Tributary (MLLP, HTTP, SMTP, SMS, files) implements,
//! and all the engine knows about them. Adapters move bytes; they know nothing of HL7, FHIR or the
//! engine, so one can be swapped or added without touching the rest.
//!
//! - [`Envelope`]: one outbound message with a stable id, so a retried delivery is recognisable.
//! - [`DeliveryError`]: why a delivery failed, transient (retry) or permanent (dead-letter).
//! - [`Outbound`]: an adapter that delivers an envelope and returns the peer's reply bytes.
//! - [`Inbound`]: one received message, with the peer it came from and whether it was cut short.
//! - [`InboundHandler`]: what an inbound adapter calls for each message; its answer is sent back.
//! - [`handler_fn`]: turns an async closure into an [`InboundHandler`] (tests, small tools).
//! - [`BoxFuture`]: the boxed future type both traits return, for implementors to name.
//! - [`tls`]: TLS settings from PEM files for listeners (reloadable, optional client
//!   certificates with an allowed-subject list) and outbound clients, shared by all of them.

mod delivery_error;
mod envelope;
mod handler_fn;
mod inbound;
mod outbound;
pub mod tls;

pub use delivery_error::DeliveryError;
pub use envelope::Envelope;
pub use handler_fn::{HandlerFn, handler_fn};
pub use inbound::{Inbound, InboundHandler};
pub use outbound::Outbound;

/// The boxed future both traits return: object-safe, `Send`, borrowing the adapter for `'a`.
/// Implementors may write it out in full or use this alias; the two are the same type.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
