//! MLLP, the minimal lower layer protocol that carries HL7 v2 over TCP: each message is framed
//! as `0x0B` message `0x1C 0x0D`, and each answer comes back the same way on the same connection.
//!
//! This crate moves bytes only; it knows nothing of HL7 content or of the engine. Parts:
//!
//! - `frame`: [`FrameDecoder`] turns arbitrary reads into whole messages under a size cap;
//!   [`encode_frame`] wraps one for the wire.
//! - `config`: [`ListenerConfig`], where to listen and the limits (frame cap, idle
//!   timeout, connection cap).
//! - `server`: [`serve`] accepts connections and shuts down gracefully.
//! - `connection`: one accepted connection, calling the handler for each message in order.
//! - `client`: [`Client`], one outgoing connection: send a message, read the reply.
//! - `outbound`: [`MllpOutbound`], the outbound adapter that delivers envelopes with a [`Client`];
//!   built by [`from_config`] from an [`MllpOutboundConfig`].
//! - `ack`: [`AckPolicy`], what the receiver's MSA-1 means for the outbox: AA and CA succeed,
//!   AE/CE are Transient and AR/CR Permanent by default (each configurable), and a reply that
//!   is not an ACK is Transient.
//!
//! # Outbound config
//!
//! ```toml
//! address = "ucr.example:2575"   # required: host:port of the receiving listener
//! timeout_secs = 10              # default 10: connect, write, wait for the ACK
//! check_ack = true               # default true: read MSA-1 of the reply
//! ack_error = "transient"        # AE/CE: "transient" (default) or "permanent"
//! ack_reject = "permanent"       # AR/CR: "permanent" (default) or "transient"
//! ```

mod ack;
mod client;
mod config;
mod connection;
mod frame;
mod outbound;
mod server;

pub use ack::{Ack, AckPolicy, Disposition, parse_ack};
pub use client::Client;
pub use config::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FRAME, DEFAULT_OUTBOUND_TIMEOUT_SECS,
    DEFAULT_PORT, ListenerConfig, MllpOutboundConfig, parse_peer,
};
pub use frame::{
    END, Frame, FrameDecoder, OVERSIZED_HEAD, START, contains_framing_bytes, encode_frame, encode_frame_into,
};
pub use ipnet::IpNet;
pub use outbound::MllpOutbound;
pub use server::{SHUTDOWN_GRACE, serve};

/// Checks `config` and builds the outbound adapter; the error says which setting is wrong and why.
pub fn from_config(config: MllpOutboundConfig) -> Result<MllpOutbound, String> {
    MllpOutbound::from_config(&config)
}
