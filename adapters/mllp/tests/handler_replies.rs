//! What the handler answers is what the peer gets: none, one or several frames, in order, and a
//! handler that panics costs only its own connection.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tributary_adapter_core::{Inbound, InboundHandler, handler_fn};
use tributary_adapter_mllp::{Client, encode_frame};

use support::{PATIENCE, connect_raw, expect_closed, read_frames, start};

/// `SILENT` gets no reply, `TWICE` two, `PANIC` panics the handler, anything else one.
fn scripted_handler() -> Arc<dyn InboundHandler> {
    Arc::new(handler_fn(|message: Inbound| async move {
        match &message.payload[..] {
            b"SILENT" => vec![],
            b"TWICE" => vec![
                Bytes::from_static(b"first reply"),
                Bytes::from_static(b"second reply"),
            ],
            b"PANIC" => panic!("handler bug provoked by the test"),
            other => vec![Bytes::copy_from_slice(other)],
        }
    }))
}

#[tokio::test]
async fn zero_replies_send_nothing_and_the_connection_goes_on() {
    let server = start(|_| {}, scripted_handler()).await;
    let mut stream = connect_raw(server.addr).await;
    stream.write_all(&encode_frame(b"SILENT")).await.unwrap();
    stream.write_all(&encode_frame(b"after")).await.unwrap();
    assert_eq!(
        read_frames(&mut stream, 1).await,
        vec![Bytes::from_static(b"after")]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn two_replies_arrive_as_two_frames_in_order() {
    let server = start(|_| {}, scripted_handler()).await;
    let mut client = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    client.write_frame(b"TWICE").await.unwrap();
    assert_eq!(&client.read_frame().await.unwrap()[..], b"first reply");
    assert_eq!(&client.read_frame().await.unwrap()[..], b"second reply");
    assert_eq!(&client.send(b"next").await.unwrap()[..], b"next");
    server.shutdown().await;
}

#[tokio::test]
async fn handler_panic_closes_that_connection_only() {
    let server = start(|_| {}, scripted_handler()).await;
    let mut bystander = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    assert_eq!(&bystander.send(b"before").await.unwrap()[..], b"before");

    let mut victim = connect_raw(server.addr).await;
    victim.write_all(&encode_frame(b"PANIC")).await.unwrap();
    expect_closed(&mut victim, Duration::from_secs(5)).await;

    assert_eq!(&bystander.send(b"after").await.unwrap()[..], b"after");
    let mut newcomer = Client::connect(&server.addr_string(), PATIENCE).await.unwrap();
    assert_eq!(&newcomer.send(b"new").await.unwrap()[..], b"new");
    server.shutdown().await;
}
