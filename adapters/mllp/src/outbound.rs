//! The MLLP outbound adapter: delivers envelopes to one remote listener and returns its ACK.
//!
//! One connection is kept open between deliveries (MLLP receivers expect long-lived connections,
//! and a handshake per message would cap throughput). Deliveries to one adapter are therefore
//! serialized, which also keeps them in order as the outbox requires.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Mutex;
use tributary_adapter_core::tls::{ClientTls, client_tls};
use tributary_adapter_core::{DeliveryError, Envelope, Outbound};

use crate::ack::AckPolicy;
use crate::client::Client;
use crate::config::MllpOutboundConfig;
use crate::frame::contains_framing_bytes;

/// The outbound adapter: delivers an envelope over a fresh-or-reused Client, returns the reply;
/// connection errors and timeouts are Transient.
///
/// A payload that cannot be framed (it holds `0x0B` or `0x1C`) is Permanent: no retry will fix it.
/// With an [`AckPolicy`] (as [`crate::from_config`] sets by default) the reply must be an ACK
/// saying AA or CA; other answers fail the delivery as the policy says.
#[derive(Debug)]
pub struct MllpOutbound {
    addr: String,
    timeout: Duration,
    ack_policy: Option<AckPolicy>,
    /// TLS to the receiver; `None`: plain TCP.
    tls: Option<ClientTls>,
    connection: Mutex<Option<Client>>,
}

impl MllpOutbound {
    /// An adapter for the listener at `addr` (`host:port`); `timeout` bounds the connect, the
    /// write and the wait for the reply.
    ///
    /// Any reply counts as success and is returned as is; [`MllpOutbound::with_ack_policy`]
    /// makes the adapter read the acknowledgment code.
    pub fn new(addr: String, timeout: Duration) -> Self {
        MllpOutbound {
            addr,
            timeout,
            ack_policy: None,
            tls: None,
            connection: Mutex::new(None),
        }
    }

    /// Checks `config` and builds the adapter; the error names the setting that is wrong.
    pub fn from_config(config: &MllpOutboundConfig) -> Result<Self, String> {
        let address = config.address.trim();
        let host = match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0) => host,
            _ => return Err(format!("address: `{}` is not host:port", config.address)),
        };
        if config.timeout_secs == 0 {
            return Err("timeout_secs: must be at least 1".into());
        }
        let mut outbound = MllpOutbound::new(address.to_string(), Duration::from_secs(config.timeout_secs));
        if let Some(tls) = &config.tls {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            outbound.tls = Some(client_tls(tls, host).map_err(|error| format!("tls: {error}"))?);
        }
        Ok(if config.check_ack {
            outbound.with_ack_policy(AckPolicy {
                on_error: config.ack_error,
                on_reject: config.ack_reject,
            })
        } else {
            outbound
        })
    }

    /// Reads each reply's MSA-1: AA and CA succeed, AE/CE and AR/CR fail as `policy` says, and a
    /// reply that is not an ACK is Transient.
    pub fn with_ack_policy(mut self, policy: AckPolicy) -> Self {
        self.ack_policy = Some(policy);
        self
    }

    /// The policy applied to replies, if any.
    pub fn ack_policy(&self) -> Option<AckPolicy> {
        self.ack_policy
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
        let connected = match &self.tls {
            None => Client::connect(&self.addr, self.timeout).await,
            Some(tls) => Client::connect_tls(&self.addr, self.timeout, tls).await,
        };
        let mut client = connected.map_err(|error| self.transient(&error))?;
        let reply = client
            .send(payload)
            .await
            .map_err(|error| self.transient(&error))?;
        *connection = Some(client);
        Ok(reply)
    }

    /// Names the receiver in an ACK failure.
    fn naming_receiver(&self, error: DeliveryError) -> DeliveryError {
        match error {
            DeliveryError::Transient(why) => {
                DeliveryError::Transient(format!("MLLP delivery to {}: {why}", self.addr))
            }
            DeliveryError::Permanent(why) => {
                DeliveryError::Permanent(format!("MLLP delivery to {}: {why}", self.addr))
            }
        }
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
        Box::pin(async move {
            let reply = self.deliver_payload(&envelope.payload).await?;
            // The reply was read whole, so the kept connection stays in step whatever it says.
            if let Some(policy) = &self.ack_policy {
                policy
                    .check(&reply)
                    .map_err(|error| self.naming_receiver(error))?;
            }
            Ok(reply)
        })
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
