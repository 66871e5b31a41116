//! The listener's limits: oversized frames are cut to their head and still answered, and idle
//! connections (no whole frame within the timeout, however many bytes trickle in) are closed, and
//! connections over the cap are closed at once.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_adapter_core::{Inbound, InboundHandler, handler_fn};
use tributary_adapter_mllp::{Client, OVERSIZED_HEAD, encode_frame};

use support::{PATIENCE, connect_raw, expect_closed, read_frames, start};

/// Describes what the handler was given, so the test can check it from the reply.
fn describing_handler() -> Arc<dyn InboundHandler> {
    Arc::new(handler_fn(|message: Inbound| async move {
        let reply = match message.oversized {
            Some(size) => format!(
                "oversized size={size} head_len={} head_start={}",
                message.payload.len(),
                String::from_utf8_lossy(&message.payload[..message.payload.len().min(12)])
            ),
            None => format!("whole {}", String::from_utf8_lossy(&message.payload)),
        };
        vec![Bytes::from(reply)]
    }))
}

#[tokio::test]
async fn oversized_frame_reaches_the_handler_as_its_head_then_the_connection_goes_on() {
    let max_frame = 16 * 1024;
    let server = start(|config| config.max_frame = max_frame, describing_handler()).await;
    let mut stream = connect_raw(server.addr).await;

    let mut huge = b"MSH|^~\\&|big".to_vec();
    huge.resize(1024 * 1024, b'x');
    stream.write_all(&encode_frame(&huge)).await.unwrap();
    stream.write_all(&encode_frame(b"small")).await.unwrap();

    let replies = read_frames(&mut stream, 2).await;
    assert_eq!(
        replies[0],
        Bytes::from(format!(
            "oversized size={} head_len={OVERSIZED_HEAD} head_start=MSH|^~\\&|big",
            huge.len()
        ))
    );
    assert_eq!(replies[1], Bytes::from_static(b"whole small"));
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connection_is_closed_after_the_timeout() {
    let idle = Duration::from_millis(300);
    let server = start(|config| config.idle_timeout = idle, describing_handler()).await;
    let mut stream = connect_raw(server.addr).await;
    stream.write_all(&encode_frame(b"hello")).await.unwrap();
    assert_eq!(
        read_frames(&mut stream, 1).await,
        vec![Bytes::from_static(b"whole hello")]
    );

    let quiet_since = Instant::now();
    expect_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(quiet_since.elapsed() >= idle / 2, "closed too early");

    // Only that connection went: the listener still serves new ones.
    let mut client = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    assert_eq!(&client.send(b"again").await.unwrap()[..], b"whole again");
    server.shutdown().await;
}

#[tokio::test]
async fn connection_that_keeps_talking_is_not_idle() {
    let idle = Duration::from_millis(300);
    let server = start(|config| config.idle_timeout = idle, describing_handler()).await;
    let mut client = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(&client.send(b"tick").await.unwrap()[..], b"whole tick");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_peer_trickling_bytes_without_finishing_a_frame_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(600);
    let server = start(|config| config.idle_timeout = idle, describing_handler()).await;
    let mut stream = connect_raw(server.addr).await;
    // One byte of a frame that never ends, every 100 ms: each byte is well within the timeout,
    // but no whole frame ever arrives, so the connection must go once `idle` has passed.
    let frame = encode_frame(&[b'x'; 200]);
    let mut sent = 0;
    let mut closed = false;
    let mut buffer = [0u8; 16];
    for byte in &frame[..frame.len() - 2] {
        if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
            closed = true;
            break;
        }
        sent += 1;
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(count)) => panic!("unexpected reply of {count} bytes"),
            Err(_still_open) => {}
        }
    }
    assert!(
        closed,
        "the trickling connection was never closed ({sent} bytes sent)"
    );
    // 600 ms at a byte per 100 ms: closed long before the 200-byte frame could end.
    assert!(sent < 60, "closed only after {sent} bytes");

    // Only that connection went: the listener still serves new ones.
    let mut client = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    assert_eq!(&client.send(b"again").await.unwrap()[..], b"whole again");
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_the_others_go_on() {
    let server = start(|config| config.max_connections = 2, describing_handler()).await;
    let mut first = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    let mut second = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    assert_eq!(&first.send(b"one").await.unwrap()[..], b"whole one");
    assert_eq!(&second.send(b"two").await.unwrap()[..], b"whole two");

    // The third is accepted by the kernel, then closed by the listener without a reply.
    let mut third = connect_raw(server.addr).await;
    let _ = third.write_all(&encode_frame(b"three")).await;
    expect_closed(&mut third, PATIENCE).await;
    assert_eq!(&first.send(b"still").await.unwrap()[..], b"whole still");

    // A slot freed is a slot for the next connection.
    drop(second);
    let mut fourth = None;
    for _ in 0..50 {
        let mut client = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
        if let Ok(reply) = client.send(b"four").await {
            assert_eq!(&reply[..], b"whole four");
            fourth = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fourth.is_some(), "no slot came free after a connection closed");
    server.shutdown().await;
}
