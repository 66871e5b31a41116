//! The HTTP listener: accepts connections under a cap, serves each with hyper's HTTP/1 under a
//! header-read and an idle timeout, and shuts down gracefully.
//!
//! `axum::serve` has neither a cap nor timeouts, so idle or slow clients could hold connections
//! (and file descriptors) for ever. Here each connection holds a permit of a semaphore sized by
//! the descriptor budget; one over the cap is accepted and closed at once, so it neither waits in
//! the backlog nor costs a task. Each request carries the peer address as
//! `axum::extract::ConnectInfo<SocketAddr>`, as `into_make_service_with_connect_info` would: a
//! handler takes it as `ConnectInfo(peer): ConnectInfo<SocketAddr>`. With `[http.tls]` each
//! connection starts with a TLS handshake, with the certificate in force then (SIGHUP reloads it).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;
use tributary_adapter_core::tls::ServerTls;

/// How long shutdown waits for requests in flight before it drops the connections still open.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// After an accept error about the process (out of descriptors, ...), wait before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The limits the listener enforces, from `[http]` and the descriptor budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    pub max_connections: usize,
    /// A connection with no request in progress and no bytes either way this long is closed.
    pub keep_alive: Duration,
    /// A request's headers must be complete this long after the server starts waiting for them.
    pub header_read: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets requests in
/// flight finish (for [`SHUTDOWN_GRACE`] at most) and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let (stop_sender, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused = Refusals::default();
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        drop(stream);
                        refused.note(limits.max_connections);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    let stop = stop.clone();
                    let acceptor = tls.as_ref().map(ServerTls::acceptor);
                    connections.spawn(async move {
                        match acceptor {
                            None => connection(stream, peer, app, limits, stop).await,
                            // The handshake counts against the header-read timeout: a client
                            // that connects and never says hello is dropped as a slow one is.
                            Some(acceptor) => match tokio::time::timeout(limits.header_read, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => connection(stream, peer, app, limits, stop).await,
                                Ok(Err(error)) => tracing::info!(%peer, %error, "HTTPS handshake failed; connection closed"),
                                Err(_elapsed) => tracing::debug!(%peer, "HTTPS handshake timed out; connection closed"),
                            },
                        }
                        drop(slot);
                    });
                }
                Err(error) if is_about_one_connection(&error) => {
                    tracing::debug!(%error, "an HTTP connection failed while being accepted");
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting HTTP connections failed; retrying shortly");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_sender.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "HTTP connections still busy after the shutdown grace period; dropping them"
        );
        connections.shutdown().await;
    }
}

/// One connection: hyper's HTTP/1 with the header-read timeout, plus the idle watch that hyper
/// lacks (no request in progress and no bytes either way for `keep_alive`).
async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let in_flight = Arc::new(AtomicUsize::new(0));
    let service = {
        let in_flight = Arc::clone(&in_flight);
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::enter(&in_flight);
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                drop(busy);
                response
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let idle_at = activity.last() + limits.keep_alive;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    // Timeouts and clients that go away mid-request land here: routine.
                    tracing::debug!(%peer, %error, "HTTP connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_at) => {
                if in_flight.load(Ordering::Acquire) > 0 {
                    // A slow handler is not an idle client: look again a whole timeout later.
                    activity.touch();
                } else if activity.last() + limits.keep_alive <= Instant::now() {
                    tracing::debug!(%peer, "closing idle HTTP connection");
                    return;
                }
            }
        }
    }
}

/// When bytes last moved on a connection, as milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Release);
    }

    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Acquire))
    }
}

/// A stream that records in its [`Activity`] every read or write that moved bytes.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Counts a request in progress for as long as it lives, so the idle watch leaves it alone.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(count))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections refused at the cap, logged at most once a second so a flood cannot flood the log.
#[derive(Default)]
struct Refusals {
    since_log: u64,
    logged_at: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, cap: usize) {
        self.since_log += 1;
        if self
            .logged_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(
                max_connections = cap,
                refused = self.since_log,
                "HTTP listener at its connection cap; closing new connections"
            );
            self.since_log = 0;
            self.logged_at = Some(Instant::now());
        }
    }
}

/// Errors that concern only the connection being accepted: the next accept can go ahead at once.
fn is_about_one_connection(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::Interrupted
    )
}
