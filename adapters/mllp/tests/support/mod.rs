//! Shared test scaffolding: a listener on a loopback port with a chosen handler, and raw-socket
//! helpers for the cases the `Client` deliberately refuses to produce (garbage, split frames).

#![allow(dead_code)] // Each test file uses a different subset of these helpers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tributary_adapter_core::{Inbound, InboundHandler, handler_fn};
use tributary_adapter_mllp::{Frame, FrameDecoder, ListenerConfig, serve};

/// Generous bound for anything a test waits on, so a bug fails the test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A listener running in the background; dropping it without `stop` leaves the task running
/// until the test's runtime ends, which is fine for tests that do not care about shutdown.
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Triggers graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Triggers graceful shutdown and waits for `serve` to return.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task did not panic")
            .expect("serve returned Ok");
    }
}

/// Starts `serve` on 127.0.0.1, port chosen by the OS, with the defaults changed by `configure`.
pub async fn start(
    configure: impl FnOnce(&mut ListenerConfig),
    handler: Arc<dyn InboundHandler>,
) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let mut config = ListenerConfig::new(addr);
    configure(&mut config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, config, handler, async move {
        let _ = stopped.await;
    }));
    RunningServer {
        addr,
        stop: Some(stop),
        task,
    }
}

/// A handler answering each message with `ACK:` + the message, the way a test can check both
/// which message a reply belongs to and that it arrived whole.
pub fn echo_handler() -> Arc<dyn InboundHandler> {
    Arc::new(handler_fn(|message: Inbound| async move {
        vec![ack(&message.payload)]
    }))
}

pub fn ack(payload: &[u8]) -> Bytes {
    let mut reply = b"ACK:".to_vec();
    reply.extend_from_slice(payload);
    reply.into()
}

pub async fn connect_raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads exactly `count` frames from a raw socket (whole messages only).
pub async fn read_frames(stream: &mut TcpStream, count: usize) -> Vec<Bytes> {
    let mut decoder = FrameDecoder::new(16 * 1024 * 1024);
    let mut frames = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    while frames.len() < count {
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Frame::Message(payload) => frames.push(payload),
                Frame::Oversized { size, .. } => panic!("unexpected oversized reply of {size}"),
            }
        }
        if frames.len() >= count {
            break;
        }
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
            .await
            .expect("reply within patience")
            .expect("read");
        assert!(
            read > 0,
            "connection closed after {} of {count} frames",
            frames.len()
        );
        decoder.feed(&buffer[..read]);
    }
    frames
}

/// Waits until the server closes `stream`, failing if it sends anything first.
pub async fn expect_closed(stream: &mut TcpStream, within: Duration) {
    let mut buffer = [0u8; 64];
    match tokio::time::timeout(within, stream.read(&mut buffer)).await {
        Ok(Ok(0)) => {}
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Ok(count)) => panic!("expected close, got {count} bytes"),
        Ok(Err(error)) => panic!("expected close, got {error}"),
        Err(_) => panic!("connection still open after {within:?}"),
    }
}
