//! The client against real and deliberately unhelpful peers: replies, timeouts, refusals.

mod support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tributary_adapter_mllp::{Client, encode_frame};

use support::{PATIENCE, ack, echo_handler, start};

#[tokio::test]
async fn send_returns_the_reply() {
    let server = start(|_| {}, echo_handler()).await;
    let mut client = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    for n in 0..3 {
        let message = format!("MSH|^~\\&|n={n}\r");
        assert_eq!(
            client.send(message.as_bytes()).await.unwrap(),
            ack(message.as_bytes())
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn silent_peer_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accepts and reads, never answers.
    let silent = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut sink = vec![0u8; 1024];
        while stream.read(&mut sink).await.unwrap_or(0) > 0 {}
    });
    let timeout = Duration::from_millis(200);
    let mut client = Client::connect(&addr, timeout).await.unwrap();
    let began = Instant::now();
    let error = client.send(b"anyone?").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut);
    assert!(began.elapsed() >= timeout && began.elapsed() < Duration::from_secs(5));
    silent.abort();
}

#[tokio::test]
async fn refused_connection_is_an_error_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let error = Client::connect(&addr, PATIENCE).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn peer_closing_before_replying_is_unexpected_eof() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let rude = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 1];
        let _ = stream.read(&mut first).await;
        // Then drop: the connection closes without a reply.
    });
    let mut client = Client::connect(&addr, PATIENCE).await.unwrap();
    let error = client.send(b"hello").await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
        ),
        "{error}"
    );
    rude.await.unwrap();
}

#[tokio::test]
async fn reply_split_across_writes_and_preceded_by_garbage_is_read_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut request = [0u8; 64];
        let _ = stream.read(&mut request).await.unwrap();
        let mut wire = b"\r\n".to_vec();
        wire.extend_from_slice(&encode_frame(b"MSA|AA|1\r"));
        for piece in wire.chunks(3) {
            stream.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut client = Client::connect(&addr, PATIENCE).await.unwrap();
    assert_eq!(&client.send(b"MSH|1\r").await.unwrap()[..], b"MSA|AA|1\r");
    peer.await.unwrap();
}

#[tokio::test]
async fn payload_with_framing_bytes_is_refused_before_writing() {
    let server = start(|_| {}, echo_handler()).await;
    let mut client = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    let error = client.write_frame(b"bad\x0bpayload").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    // Nothing was written, so the connection is still usable.
    assert_eq!(client.send(b"good").await.unwrap(), ack(b"good"));
    server.shutdown().await;
}
