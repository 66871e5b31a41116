//! The listener: accepts connections, gives each its own task, and shuts down gracefully.
//!
//! What happens on one connection lives in `connection.rs`; this file owns the set of
//! connections, so that shutdown can stop accepting at once and then wait (boundedly) for each
//! connection to finish the message it is handling.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinError, JoinSet};
use tributary_adapter_core::InboundHandler;

use crate::config::ListenerConfig;
use crate::connection::{self, ConnectionLimits};

/// How long shutdown waits for in-flight messages before it aborts the connections still open.
/// Long enough for a handler that is committing to disk; short enough not to stall a restart.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Longest wait for a TLS client's handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After an accept error that is about the process (out of file descriptors, ...), wait a little
/// before trying again instead of spinning on the same error.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections until `shutdown` resolves; each connection reads frames, calls the handler
/// for each in order (one at a time per connection: the reply for message n goes out before
/// message n+1 is handled) and writes every reply frame.
///
/// A connection that completes no frame for `idle_timeout` is closed. At most `max_connections`
/// are open at once: one more is accepted and closed at once (and logged), so that a flood of
/// connections costs neither a task nor a place in the backlog. On shutdown the listener is closed
/// at once (new connections are refused), each connection finishes the message it is handling
/// and sends its reply, then closes; `serve` returns when all are done, or after
/// [`SHUTDOWN_GRACE`] by aborting the rest. No input from a peer makes it panic or return early.
pub async fn serve(
    listener: TcpListener,
    config: ListenerConfig,
    handler: Arc<dyn InboundHandler>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = ConnectionLimits {
        max_frame: config.max_frame,
        idle_timeout: config.idle_timeout,
    };
    // One permit per open connection, held by its task until it ends.
    let slots = Arc::new(Semaphore::new(config.max_connections.min(Semaphore::MAX_PERMITS)));
    let (stop_sender, stop_receiver) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%address, "MLLP listener accepting connections");

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if !config.allows(peer.ip()) {
                        tracing::warn!(%address, %peer, "MLLP connection from an address not in allowed_peers; closed");
                        drop(stream);
                        continue;
                    }
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        tracing::warn!(
                            %address,
                            %peer,
                            max_connections = config.max_connections,
                            "MLLP listener at its connection cap; closing the new connection"
                        );
                        drop(stream);
                        continue;
                    };
                    prepare(&stream, peer);
                    let limits = limits.clone();
                    let handler = Arc::clone(&handler);
                    let stop = stop_receiver.clone();
                    let tls = config.tls.as_ref().map(|tls| tls.acceptor());
                    connections.spawn(async move {
                        match tls {
                            None => connection::run(stream, peer, limits, handler, stop).await,
                            Some(acceptor) => {
                                // Bounded: a peer that opens and never says hello must not hold a slot.
                                let handshake = limits.idle_timeout.min(HANDSHAKE_TIMEOUT);
                                match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                                    Ok(Ok(stream)) => connection::run(stream, peer, limits, handler, stop).await,
                                    Ok(Err(error)) => {
                                        tracing::warn!(%peer, %error, "MLLP TLS handshake failed; connection closed");
                                    }
                                    Err(_elapsed) => {
                                        tracing::info!(%peer, "MLLP TLS handshake timed out; connection closed");
                                    }
                                }
                            }
                        }
                        drop(slot);
                    });
                }
                Err(error) if is_about_one_connection(&error) => {
                    tracing::debug!(%error, "a connection failed while being accepted");
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting connections failed; retrying shortly");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                report_task_end(finished);
            }
        }
    }

    // Closing the socket now is what makes new connections fail fast instead of queueing.
    drop(listener);
    tracing::info!(
        %address,
        open = connections.len(),
        "MLLP listener stopped accepting; finishing in-flight messages"
    );
    // Ignore the error: it only means no connection is listening, which is fine.
    let _ = stop_sender.send(true);

    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(finished) = connections.join_next().await {
            report_task_end(finished);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            %address,
            remaining = connections.len(),
            "connections still busy after the shutdown grace period; aborting them"
        );
        connections.shutdown().await;
    }
    tracing::info!(%address, "MLLP listener stopped");
    Ok(())
}

/// Socket options every accepted connection gets.
fn prepare(stream: &TcpStream, peer: std::net::SocketAddr) {
    // ACKs are small and the sender waits for each: without NODELAY, Nagle adds latency to every one.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
    }
}

/// Errors that concern only the connection being accepted (it was reset before we took it):
/// the listener itself is fine and the next accept can go ahead at once.
fn is_about_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Connection tasks catch handler panics themselves; this is the backstop for a panic anywhere
/// else in one, so that it is at least logged.
fn report_task_end(finished: Result<(), JoinError>) {
    if let Err(error) = finished
        && error.is_panic()
    {
        tracing::error!(%error, "an MLLP connection task panicked; its connection was closed");
    }
}
