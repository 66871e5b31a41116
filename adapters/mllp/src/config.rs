//! Listener settings: where to listen and the limits that keep one peer from hurting the rest.

use std::net::SocketAddr;
use std::time::Duration;

/// Default frame cap: far above any real ADT message, far below what would hurt the process.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;
/// Default idle timeout: senders keep MLLP connections open between messages; five quiet
/// minutes means the peer is gone or stuck, and its socket is better closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The port IANA registered for HL7 over MLLP.
pub const DEFAULT_PORT: u16 = 2575;

/// How an MLLP listener behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub bind: SocketAddr,
    /// Largest message accepted whole, in bytes, framing not counted; larger ones reach the
    /// handler as `oversized` with only their head. Default [`DEFAULT_MAX_FRAME`] (1 MiB).
    pub max_frame: usize,
    /// A connection with no bytes received for this long is closed. Default
    /// [`DEFAULT_IDLE_TIMEOUT`] (300 s).
    pub idle_timeout: Duration,
}

impl ListenerConfig {
    /// Settings for `bind` with the default limits.
    pub fn new(bind: SocketAddr) -> Self {
        ListenerConfig {
            bind,
            max_frame: DEFAULT_MAX_FRAME,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl Default for ListenerConfig {
    /// Loopback on the standard MLLP port, default limits: exposing a listener to the network
    /// should be a choice written in the config, not a default.
    fn default() -> Self {
        ListenerConfig::new(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = ListenerConfig::default();
        assert_eq!(config.max_frame, 1024 * 1024);
        assert_eq!(config.idle_timeout, Duration::from_secs(300));
        assert!(config.bind.ip().is_loopback());
        assert_eq!(config.bind.port(), 2575);
    }
}
