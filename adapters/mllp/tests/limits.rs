//! The listener's limits: oversized frames are cut to their head and still answered, and idle
//! connections are closed.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
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
