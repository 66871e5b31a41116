//! The outbound side of the contract: deliver one envelope, hand back what the peer answered.

use crate::{DeliveryError, Envelope};

/// An outbound adapter: delivers one envelope, returns the peer's reply bytes (an ACK, a body).
///
/// The future is boxed so adapters can sit behind `Arc<dyn Outbound>` in the registry that maps a
/// config `kind` to its constructor.
pub trait Outbound: Send + Sync {
    /// The config `kind` this adapter is registered under (`"mllp"`, `"http"`, ...), for logs.
    fn kind(&self) -> &'static str;

    fn deliver<'a>(
        &'a self,
        envelope: &'a Envelope,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bytes::Bytes, DeliveryError>> + Send + 'a>>;
}
