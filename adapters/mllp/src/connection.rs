//! One MLLP connection: read bytes, decode frames, ask the handler, write its replies, in order.
//!
//! Messages on one connection are handled strictly one at a time: a sender that waits for each
//! ACK (as MLLP senders do) sees its replies in order, and the engine can rely on arrival order
//! per connection. Each connection runs in its own task, so connections proceed in parallel.

use std::any::Any;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tributary_adapter_core::{Inbound, InboundHandler};

use crate::frame::{Frame, FrameDecoder, encode_frame_into};

/// Size of one read. Big enough for a typical ADT message or a burst of them in one call; small
/// enough that thousands of idle connections cost little.
const READ_CHUNK: usize = 32 * 1024;

/// The limits a connection enforces, taken from the listener's config.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimits {
    pub max_frame: usize,
    pub idle_timeout: Duration,
}

/// Why a connection ended, for the log line that closes it.
#[derive(Debug)]
enum Ending {
    PeerClosed,
    Idle,
    Shutdown,
    HandlerPanicked,
    Io(std::io::Error),
    WriteTimedOut,
}

/// A connection's byte stream: plain TCP, or TLS over it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// Serves one accepted connection until the peer leaves, it idles out, an error happens, or the
/// listener shuts down (`stop` turns true).
pub(crate) async fn run<S: Stream>(
    stream: S,
    peer: SocketAddr,
    limits: ConnectionLimits,
    handler: Arc<dyn InboundHandler>,
    stop: watch::Receiver<bool>,
) {
    let peer = peer.to_string();
    tracing::debug!(%peer, "MLLP connection opened");
    let mut connection = Connection {
        decoder: FrameDecoder::new(limits.max_frame),
        stream,
        peer,
        limits,
        handler,
        stop,
        replies: Vec::new(),
    };
    let ending = connection.serve().await;
    connection.close(ending).await;
}

struct Connection<S> {
    stream: S,
    peer: String,
    limits: ConnectionLimits,
    handler: Arc<dyn InboundHandler>,
    stop: watch::Receiver<bool>,
    decoder: FrameDecoder,
    /// Reused buffer for the framed replies to one message, sent in one write.
    replies: Vec<u8>,
}

impl<S: Stream> Connection<S> {
    async fn serve(&mut self) -> Ending {
        let mut read_buffer = vec![0u8; READ_CHUNK];
        // Idle is counted in whole frames, not bytes: a peer trickling one byte every few
        // seconds would otherwise hold the connection (and its file descriptor) for ever.
        let mut idle_deadline = tokio::time::Instant::now() + self.limits.idle_timeout;
        loop {
            while let Some(frame) = self.decoder.next_frame() {
                // Checked between messages, never during one: the message being handled always
                // gets its reply; the ones behind it are left for the sender to resend.
                if self.stopping() {
                    return Ending::Shutdown;
                }
                if let Err(ending) = self.answer(frame).await {
                    return ending;
                }
                idle_deadline = tokio::time::Instant::now() + self.limits.idle_timeout;
            }
            self.log_skipped();
            if self.stopping() {
                return Ending::Shutdown;
            }

            let read = tokio::select! {
                biased;
                _ = self.stop.wait_for(|stopping| *stopping) => return Ending::Shutdown,
                read = tokio::time::timeout_at(idle_deadline, self.stream.read(&mut read_buffer)) => read,
            };
            match read {
                Err(_elapsed) => return Ending::Idle,
                Ok(Ok(0)) => return Ending::PeerClosed,
                Ok(Ok(count)) => self.decoder.feed(&read_buffer[..count]),
                Ok(Err(error)) => return Ending::Io(error),
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Hands one frame to the handler and writes back every reply it gives, in one write.
    async fn answer(&mut self, frame: Frame) -> Result<(), Ending> {
        let inbound = match frame {
            Frame::Message(payload) => Inbound {
                payload,
                peer: self.peer.clone(),
                oversized: None,
            },
            Frame::Oversized { head, size } => {
                tracing::warn!(
                    peer = %self.peer,
                    size,
                    max_frame = self.limits.max_frame,
                    "MLLP frame over the size cap; passing only its head to the handler"
                );
                Inbound {
                    payload: head,
                    peer: self.peer.clone(),
                    oversized: Some(size),
                }
            }
        };

        // The handler is someone else's code: a panic in it must cost this connection, not the
        // server. Calling `handle` inside the async block catches a panic in the call itself too.
        let handler = Arc::clone(&self.handler);
        let answered = AssertUnwindSafe(async move { handler.handle(inbound).await })
            .catch_unwind()
            .await;
        let replies = match answered {
            Ok(replies) => replies,
            Err(panic) => {
                tracing::error!(
                    peer = %self.peer,
                    panic = panic_message(panic.as_ref()),
                    "MLLP handler panicked; closing the connection without a reply"
                );
                return Err(Ending::HandlerPanicked);
            }
        };
        if replies.is_empty() {
            return Ok(());
        }

        self.replies.clear();
        for reply in &replies {
            encode_frame_into(reply, &mut self.replies);
        }
        // A peer that stops reading would otherwise block this task forever once buffers fill.
        match tokio::time::timeout(self.limits.idle_timeout, self.stream.write_all(&self.replies)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Ending::Io(error)),
            Err(_elapsed) => Err(Ending::WriteTimedOut),
        }
    }

    fn log_skipped(&mut self) {
        let skipped = self.decoder.take_skipped();
        if skipped > 0 {
            tracing::warn!(
                peer = %self.peer,
                skipped,
                "skipped bytes outside any MLLP frame"
            );
        }
    }

    async fn close(mut self, ending: Ending) {
        self.log_skipped();
        let peer = &self.peer;
        if self.decoder.is_mid_frame() {
            tracing::warn!(
                %peer,
                buffered = self.decoder.buffered_len(),
                "MLLP connection closing in the middle of a frame; that message is lost"
            );
        }
        match &ending {
            Ending::PeerClosed => tracing::debug!(%peer, "MLLP peer closed the connection"),
            Ending::Idle => tracing::info!(
                %peer,
                idle_timeout = ?self.limits.idle_timeout,
                "closing MLLP connection: no whole frame within the idle timeout"
            ),
            Ending::Shutdown => tracing::debug!(%peer, "closing MLLP connection for shutdown"),
            Ending::HandlerPanicked => {}
            Ending::Io(error) => tracing::info!(%peer, %error, "MLLP connection failed"),
            Ending::WriteTimedOut => tracing::warn!(
                %peer,
                "MLLP peer stopped reading replies; closing the connection"
            ),
        }
        // Send FIN rather than only dropping, so replies already written are delivered first.
        // Bounded: a peer that does not read must not hold shutdown up.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "non-string panic payload"
    }
}
