//! MLLP, the minimal lower layer protocol that carries HL7 v2 over TCP: each message is framed
//! as `0x0B` message `0x1C 0x0D`, and each answer comes back the same way on the same connection.
//!
//! This crate moves bytes only; it knows nothing of HL7 content or of the engine. Parts:
//!
//! - `frame`: [`FrameDecoder`] turns arbitrary reads into whole messages under a size cap;
//!   [`encode_frame`] wraps one for the wire.
//! - `config`: [`ListenerConfig`], where to listen and the limits (frame cap, idle timeout).
//! - `server`: [`serve`] accepts connections and shuts down gracefully.
//! - `connection`: one accepted connection, calling the handler for each message in order.
//! - `client`: [`Client`], one outgoing connection: send a message, read the reply.
//! - `outbound`: [`MllpOutbound`], the outbound adapter that delivers envelopes with a [`Client`].

mod client;
mod config;
mod connection;
mod frame;
mod outbound;
mod server;

pub use client::Client;
pub use config::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_FRAME, DEFAULT_PORT, ListenerConfig};
pub use frame::{
    END, Frame, FrameDecoder, OVERSIZED_HEAD, START, contains_framing_bytes, encode_frame, encode_frame_into,
};
pub use outbound::MllpOutbound;
pub use server::{SHUTDOWN_GRACE, serve};
