//! The MLLP outbound adapter: delivers envelopes to one remote listener and returns its ACK.
//!
//! One connection is kept open between deliveries (MLLP receivers expect long-lived connections,
//! and a handshake per message would cap throughput). Deliveries to one adapter are therefore
//! serialized, which also keeps them in order as the outbox requires.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Mutex;
use tributary_adapter_core::{DeliveryError, Envelope, Outbound};

use crate::client::Client;
use crate::frame::contains_framing_bytes;

/// The outbound adapter: delivers an envelope over a fresh-or-reused Client, returns the reply;
/// connection errors and timeouts are Transient.
///
/// A payload that cannot be framed (it holds `0x0B` or `0x1C`) is Permanent: no retry will fix it.
#[derive(Debug)]
pub struct MllpOutbound {
    addr: String,
    timeout: Duration,
    connection: Mutex<Option<Client>>,
}

impl MllpOutbound {
    /// An adapter for the listener at `addr` (`host:port`); `timeout` bounds the connect, the
    /// write and the wait for the reply.
    pub fn new(addr: String, timeout: Duration) -> Self {
        MllpOutbound {
            addr,
            timeout,
            connection: Mutex::new(None),
        }
    }

    /// The listener this adapter delivers to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn deliver_payload(&self, payload: &[u8]) -> Result<Bytes, DeliveryError> {
        if contains_framing_bytes(payload) {
            return Err(DeliveryError::Permanent(
                "payload contains an MLLP framing byte (0x0B or 0x1C)".into(),
            ));
        }
        let mut connection = self.connection.lock().await;
        if let Some(client) = connection.as_mut() {
            match client.send(payload).await {
                Ok(reply) => return Ok(reply),
                // The peer closed the kept connection while it sat idle (its own idle timeout):
                // the message most likely never arrived, so try once more on a new connection.
                // Should it have arrived, the receiver recognises the resend by its MSH-10.
                Err(error) if is_stale_connection(&error) => {
                    tracing::debug!(addr = %self.addr, %error, "kept MLLP connection was closed; reconnecting");
                }
                // Anything else (a timeout above all) leaves the connection in an unknown state:
                // a late reply would be read as the answer to the next message, so drop it.
                Err(error) => {
                    *connection = None;
                    return Err(self.transient(&error));
                }
            }
        }
        *connection = None;
        let mut client = Client::connect(&self.addr, self.timeout)
            .await
            .map_err(|error| self.transient(&error))?;
        let reply = client
            .send(payload)
            .await
            .map_err(|error| self.transient(&error))?;
        *connection = Some(client);
        Ok(reply)
    }

    fn transient(&self, error: &io::Error) -> DeliveryError {
        DeliveryError::Transient(format!("MLLP delivery to {} failed: {error}", self.addr))
    }
}

impl Outbound for MllpOutbound {
    fn kind(&self) -> &'static str {
        "mllp"
    }

    fn deliver<'a>(
        &'a self,
        envelope: &'a Envelope,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Bytes, DeliveryError>> + Send + 'a>> {
        Box::pin(self.deliver_payload(&envelope.payload))
    }
}

/// Errors that mean the kept connection was already dead before this delivery used it.
fn is_stale_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}
