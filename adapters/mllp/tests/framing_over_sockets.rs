//! The listener reassembles frames however TCP cuts them, and answers each message in order.

mod support;

use tokio::io::AsyncWriteExt;
use tributary_adapter_mllp::{encode_frame, encode_frame_into};

use support::{ack, connect_raw, echo_handler, read_frames, start};

#[tokio::test]
async fn frame_split_into_single_bytes_is_reassembled() {
    let server = start(|_| {}, echo_handler()).await;
    let mut stream = connect_raw(server.addr).await;
    let message = b"MSH|^~\\&|UCR|UCRHIE|||20250101120000+0000||ADT^A08|1|P|2.5\rPID|1\r";
    for byte in encode_frame(message) {
        stream.write_all(&[byte]).await.unwrap();
        stream.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(read_frames(&mut stream, 1).await, vec![ack(message)]);
    server.shutdown().await;
}

#[tokio::test]
async fn several_frames_in_one_write_are_answered_in_order() {
    let server = start(|_| {}, echo_handler()).await;
    let mut stream = connect_raw(server.addr).await;
    let mut wire = Vec::new();
    for index in 0..5 {
        encode_frame_into(format!("message {index}").as_bytes(), &mut wire);
    }
    stream.write_all(&wire).await.unwrap();
    let expected: Vec<_> = (0..5).map(|i| ack(format!("message {i}").as_bytes())).collect();
    assert_eq!(read_frames(&mut stream, 5).await, expected);
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_before_and_between_frames_is_skipped() {
    let server = start(|_| {}, echo_handler()).await;
    let mut stream = connect_raw(server.addr).await;
    let mut wire = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    encode_frame_into(b"first", &mut wire);
    wire.extend_from_slice(b"\r\n\x1c\x0d junk between frames");
    encode_frame_into(b"second", &mut wire);
    stream.write_all(&wire).await.unwrap();
    assert_eq!(
        read_frames(&mut stream, 2).await,
        vec![ack(b"first"), ack(b"second")]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn many_concurrent_connections_each_get_their_own_replies_in_order() {
    const CONNECTIONS: usize = 50;
    const MESSAGES: usize = 20;
    let server = start(|_| {}, echo_handler()).await;
    let mut clients = tokio::task::JoinSet::new();
    for connection in 0..CONNECTIONS {
        let addr = server.addr;
        clients.spawn(async move {
            let mut stream = connect_raw(addr).await;
            // Half the clients pipeline all their messages, half wait for each reply.
            let messages: Vec<Vec<u8>> = (0..MESSAGES)
                .map(|n| format!("conn {connection} msg {n}").into_bytes())
                .collect();
            if connection % 2 == 0 {
                let mut wire = Vec::new();
                for message in &messages {
                    encode_frame_into(message, &mut wire);
                }
                stream.write_all(&wire).await.unwrap();
                let replies = read_frames(&mut stream, MESSAGES).await;
                assert_eq!(replies, messages.iter().map(|m| ack(m)).collect::<Vec<_>>());
            } else {
                for message in &messages {
                    stream.write_all(&encode_frame(message)).await.unwrap();
                    assert_eq!(read_frames(&mut stream, 1).await, vec![ack(message)]);
                }
            }
        });
    }
    while let Some(finished) = clients.join_next().await {
        finished.expect("client task");
    }
    server.shutdown().await;
}
