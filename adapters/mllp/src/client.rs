//! The MLLP client: one connection to a listener, sending framed messages and reading replies.
//!
//! Used by `tributary send`, the benchmark, the tests and the outbound adapter. Every operation is
//! bounded by the timeout given at connect, so a silent peer costs a timeout, never a hang.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary_adapter_core::tls::ClientTls;

use crate::config::DEFAULT_MAX_FRAME;
use crate::frame::{Frame, FrameDecoder, contains_framing_bytes, encode_frame};

const READ_CHUNK: usize = 16 * 1024;

/// The client's byte stream: plain TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for S {}

/// A client connection: send a message, read the reply frame(s).
pub struct Client {
    stream: Box<dyn Stream>,
    peer: std::net::SocketAddr,
    decoder: FrameDecoder,
    timeout: Duration,
    read_buffer: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `addr` (`host:port`) within `timeout`, which also bounds every later write
    /// and every wait for a reply.
    pub async fn connect(addr: &str, timeout: Duration) -> io::Result<Client> {
        let stream = within(timeout, "connect", TcpStream::connect(addr)).await?;
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        Ok(Client::over(Box::new(stream), peer, timeout))
    }

    /// As [`Client::connect`], then a TLS handshake (within the same `timeout`) checking the
    /// listener's certificate against `tls`; MLLP then runs inside TLS.
    pub async fn connect_tls(addr: &str, timeout: Duration, tls: &ClientTls) -> io::Result<Client> {
        let stream = within(timeout, "connect", TcpStream::connect(addr)).await?;
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        let stream = within(
            timeout,
            "TLS handshake",
            tls.connector.connect(tls.server_name.clone(), stream),
        )
        .await?;
        Ok(Client::over(Box::new(stream), peer, timeout))
    }

    fn over(stream: Box<dyn Stream>, peer: std::net::SocketAddr, timeout: Duration) -> Client {
        Client {
            stream,
            peer,
            decoder: FrameDecoder::new(DEFAULT_MAX_FRAME),
            timeout,
            read_buffer: vec![0u8; READ_CHUNK],
        }
    }

    /// Send one message and wait for one reply frame (timeout -> io::ErrorKind::TimedOut).
    pub async fn send(&mut self, payload: &[u8]) -> io::Result<Bytes> {
        self.write_frame(payload).await?;
        self.read_frame().await
    }

    /// Lower level: write one frame. A payload holding `0x0B` or `0x1C` cannot be framed
    /// correctly and is refused with `InvalidInput` before anything is written.
    pub async fn write_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        if contains_framing_bytes(payload) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "payload contains an MLLP framing byte (0x0B or 0x1C)",
            ));
        }
        let framed = encode_frame(payload);
        within(self.timeout, "write", self.stream.write_all(&framed)).await
    }

    /// Lower level: read the next reply frame. A reply over the frame cap is `InvalidData`; the
    /// peer closing first is `UnexpectedEof`.
    pub async fn read_frame(&mut self) -> io::Result<Bytes> {
        let timeout = self.timeout;
        within(timeout, "read", self.read_next_frame()).await
    }

    /// The listener's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        Ok(self.peer)
    }

    async fn read_next_frame(&mut self) -> io::Result<Bytes> {
        loop {
            match self.decoder.next_frame() {
                Some(Frame::Message(reply)) => return Ok(reply),
                Some(Frame::Oversized { size, .. }) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "reply of {size} bytes exceeds the {} byte frame cap",
                            self.decoder.max_frame()
                        ),
                    ));
                }
                None => {}
            }
            let count = self.stream.read(&mut self.read_buffer).await?;
            if count == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the MLLP peer closed the connection before replying",
                ));
            }
            self.decoder.feed(&self.read_buffer[..count]);
        }
    }
}

/// Runs `operation` within `timeout`, turning expiry into `io::ErrorKind::TimedOut`.
async fn within<T>(
    timeout: Duration,
    what: &str,
    operation: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(timeout, operation).await {
        Ok(result) => result,
        Err(_elapsed) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("MLLP {what} timed out after {timeout:?}"),
        )),
    }
}
