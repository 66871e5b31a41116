//! Listener settings: where to listen and the limits that keep one peer from hurting the rest.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tributary_adapter_core::tls::{ClientTlsConfig, ServerTls};

use crate::ack::Disposition;

/// Default frame cap: far above any real ADT message, far below what would hurt the process.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;
/// Default idle timeout: senders keep MLLP connections open between messages; five quiet
/// minutes means the peer is gone or stuck, and its socket is better closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default cap on connections open at once per listener: a feed uses a handful; a hundred leaves
/// room for every real sender while bounding what a flood of connections costs.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;
/// The port IANA registered for HL7 over MLLP.
pub const DEFAULT_PORT: u16 = 2575;

/// How an MLLP listener behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub bind: SocketAddr,
    /// Largest message accepted whole, in bytes, framing not counted; larger ones reach the
    /// handler as `oversized` with only their head. Default [`DEFAULT_MAX_FRAME`] (1 MiB).
    pub max_frame: usize,
    /// A connection that completes no frame for this long is closed, counted from its last
    /// whole frame (or its opening): a peer trickling bytes without ever finishing a message
    /// does not keep it open. Default [`DEFAULT_IDLE_TIMEOUT`] (300 s).
    pub idle_timeout: Duration,
    /// Most connections open at once; one over the cap is accepted and closed at once, so that
    /// it neither queues in the backlog nor costs a task. Default [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// TLS for every connection (handshake first, then MLLP inside it); `None`: plain TCP.
    /// Reloading the [`ServerTls`] changes the certificate of later handshakes.
    pub tls: Option<ServerTls>,
    /// The addresses connections are taken from (an address is a /32 or /128 network); a
    /// connection from anywhere else is closed at once, before a byte is read. Empty: anyone.
    pub allowed_peers: Vec<ipnet::IpNet>,
}

impl ListenerConfig {
    /// Settings for `bind` with the default limits.
    pub fn new(bind: SocketAddr) -> Self {
        ListenerConfig {
            bind,
            max_frame: DEFAULT_MAX_FRAME,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls: None,
            allowed_peers: vec![],
        }
    }

    /// Whether a connection from `peer` is taken (an IPv4 peer on an IPv6 socket counts as IPv4).
    pub fn allows(&self, peer: std::net::IpAddr) -> bool {
        let peer = match peer {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.allowed_peers.is_empty() || self.allowed_peers.iter().any(|net| net.contains(&peer))
    }
}

/// `10.1.0.0/16`, `192.0.2.7` (one address) or `2001:db8::/32`.
pub fn parse_peer(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is not an address or network like 10.1.0.0/16 or 192.0.2.7"))
}

impl Default for ListenerConfig {
    /// Loopback on the standard MLLP port, default limits: exposing a listener to the network
    /// should be a choice written in the config, not a default.
    fn default() -> Self {
        ListenerConfig::new(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))
    }
}

/// Default bound on one outbound delivery: connect, write, and the wait for the ACK.
pub const DEFAULT_OUTBOUND_TIMEOUT_SECS: u64 = 10;

/// Settings of an MLLP destination, as written in the engine's config (TOML) and checked by
/// [`crate::from_config`].
///
/// ```toml
/// address = "ucr.example:2575"   # required: host:port of the receiving listener
/// timeout_secs = 10              # default 10: connect, write, wait for the ACK
/// check_ack = true               # default true: read MSA-1 of the reply
/// ack_error = "transient"        # AE/CE: "transient" (default) or "permanent"
/// ack_reject = "permanent"       # AR/CR: "permanent" (default) or "transient"
/// [tls]                          # optional: TLS to the receiver
/// ca = "ca.pem"                  # the CA its certificate chains to
/// client_cert = "me.pem"         # optional, with client_key: for receivers requiring mTLS
/// client_key = "me.key"
/// server_name = "ucr.example"    # default: the host of `address`
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MllpOutboundConfig {
    /// `host:port` of the receiving MLLP listener.
    pub address: String,
    /// Bounds the connect, the write and the wait for the reply. Default
    /// [`DEFAULT_OUTBOUND_TIMEOUT_SECS`].
    #[serde(default = "default_outbound_timeout")]
    pub timeout_secs: u64,
    /// Read the reply's MSA segment and fail the delivery unless it says AA or CA. Default true;
    /// false hands back whatever the peer answered (a receiver that does not speak HL7 ACKs).
    #[serde(default = "yes")]
    pub check_ack: bool,
    /// What AE and CE (application or commit error) become. Default `transient`.
    #[serde(default = "transient")]
    pub ack_error: Disposition,
    /// What AR and CR (application or commit reject) become. Default `permanent`.
    #[serde(default = "permanent")]
    pub ack_reject: Disposition,
    /// TLS to the receiver; absent, plain TCP.
    #[serde(default)]
    pub tls: Option<ClientTlsConfig>,
}

impl MllpOutboundConfig {
    /// A config for the listener at `address` with every other setting at its default.
    pub fn new(address: impl Into<String>) -> Self {
        MllpOutboundConfig {
            address: address.into(),
            timeout_secs: DEFAULT_OUTBOUND_TIMEOUT_SECS,
            check_ack: true,
            ack_error: Disposition::Transient,
            ack_reject: Disposition::Permanent,
            tls: None,
        }
    }
}

fn default_outbound_timeout() -> u64 {
    DEFAULT_OUTBOUND_TIMEOUT_SECS
}

fn yes() -> bool {
    true
}

fn transient() -> Disposition {
    Disposition::Transient
}

fn permanent() -> Disposition {
    Disposition::Permanent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_defaults_check_the_ack_and_retry_errors_only() {
        let config: MllpOutboundConfig = toml::from_str("address = \"127.0.0.1:2575\"").unwrap();
        assert_eq!(config, MllpOutboundConfig::new("127.0.0.1:2575"));
        assert_eq!(config.timeout_secs, 10);
        assert!(config.check_ack);
        assert_eq!(config.ack_error, Disposition::Transient);
        assert_eq!(config.ack_reject, Disposition::Permanent);
    }

    #[test]
    fn outbound_unknown_keys_and_dispositions_are_refused() {
        let error = toml::from_str::<MllpOutboundConfig>("address = \"h:1\"\nack = true").unwrap_err();
        assert!(error.to_string().contains("ack"), "{error}");
        let error =
            toml::from_str::<MllpOutboundConfig>("address = \"h:1\"\nack_error = \"retry\"").unwrap_err();
        assert!(error.to_string().contains("retry"), "{error}");
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = ListenerConfig::default();
        assert_eq!(config.max_frame, 1024 * 1024);
        assert_eq!(config.idle_timeout, Duration::from_secs(300));
        assert_eq!(config.max_connections, 100);
        assert!(config.bind.ip().is_loopback());
        assert_eq!(config.bind.port(), 2575);
    }
}
