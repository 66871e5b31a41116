//! The inbound side of the contract: a received message and the handler that answers it.

use bytes::Bytes;

/// One received message as an inbound adapter hands it to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub payload: Bytes,
    /// The sender's socket address, e.g. `"127.0.0.1:5555"`, for logs and per-peer rules.
    pub peer: String,
    /// `Some(total size)` when the message exceeded the adapter's size cap. `payload` then holds
    /// only its first bytes (up to 4 KiB): enough for the engine to read the header and reject
    /// the message with a proper answer instead of silently dropping it.
    pub oversized: Option<usize>,
}

/// An inbound adapter hands each received message to a handler and sends back what it answers.
pub trait InboundHandler: Send + Sync + 'static {
    /// `payload` is one received message; the answer is zero or more reply messages to send back in order.
    fn handle<'a>(
        &'a self,
        payload: Inbound,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<bytes::Bytes>> + Send + 'a>>;
}
