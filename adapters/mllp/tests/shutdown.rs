//! Graceful shutdown: new connections are refused at once, a message being handled still gets
//! its reply, idle connections are closed, and `serve` returns.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tributary_adapter_core::{Inbound, InboundHandler, handler_fn};
use tributary_adapter_mllp::{Client, encode_frame};

use support::{PATIENCE, connect_raw, expect_closed, read_frames, start};

#[tokio::test]
async fn in_flight_message_gets_its_reply_and_new_connections_are_refused() {
    let started = Arc::new(Notify::new());
    let handler_started = Arc::clone(&started);
    let handler: Arc<dyn InboundHandler> = Arc::new(handler_fn(move |message: Inbound| {
        let started = Arc::clone(&handler_started);
        async move {
            started.notify_one();
            tokio::time::sleep(Duration::from_millis(1000)).await;
            vec![Bytes::from([b"done:".as_slice(), &message.payload].concat())]
        }
    }));
    let mut server = start(|_| {}, handler).await;
    let addr = server.addr_string();
    let mut idle = connect_raw(server.addr).await;
    let mut busy = Client::connect(&addr, PATIENCE).await.unwrap();
    busy.write_frame(b"slow").await.unwrap();
    tokio::time::timeout(PATIENCE, started.notified()).await.unwrap();

    server.begin_shutdown();
    // The listener closes as soon as `serve` sees the signal; poll rather than guess how soon.
    let deadline = Instant::now() + Duration::from_millis(700);
    // An attempt racing the close may be reset instead (it sat in the accept backlog): try again.
    loop {
        match Client::connect(&addr, PATIENCE).await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
            other => panic!(
                "still not refusing connections 700 ms after shutdown began: {:?}",
                other.map(|_| ())
            ),
        }
    }
    expect_closed(&mut idle, Duration::from_secs(2)).await;

    assert_eq!(&busy.read_frame().await.unwrap()[..], b"done:slow");
    let finished = Instant::now();
    server.shutdown().await;
    assert!(finished.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn messages_queued_behind_the_in_flight_one_are_left_for_a_resend() {
    let handler: Arc<dyn InboundHandler> = Arc::new(handler_fn(|message: Inbound| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        vec![message.payload]
    }));
    let mut server = start(|_| {}, handler).await;
    let mut stream = connect_raw(server.addr).await;
    let mut wire = encode_frame(b"one");
    wire.extend_from_slice(&encode_frame(b"two"));
    stream.write_all(&wire).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.begin_shutdown();

    assert_eq!(
        read_frames(&mut stream, 1).await,
        vec![Bytes::from_static(b"one")]
    );
    expect_closed(&mut stream, Duration::from_secs(5)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_with_no_connections_returns_promptly() {
    let server = start(|_| {}, support::echo_handler()).await;
    let began = Instant::now();
    server.shutdown().await;
    assert!(began.elapsed() < Duration::from_secs(1));
}
