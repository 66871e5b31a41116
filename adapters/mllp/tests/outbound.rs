//! The outbound adapter: replies come back, failures are classified for the outbox, and the kept
//! connection is replaced when the peer has closed it.

mod support;

use std::time::Duration;

use tokio::net::TcpListener;
use tributary_adapter_core::{DeliveryError, Envelope, Outbound};
use tributary_adapter_mllp::MllpOutbound;

use support::{PATIENCE, ack, echo_handler, start};

fn envelope(id: &str, payload: &'static [u8]) -> Envelope {
    Envelope::new(id, payload, "x-application/hl7-v2+er7")
}

#[tokio::test]
async fn delivers_and_returns_the_ack_over_one_kept_connection() {
    let server = start(|_| {}, echo_handler()).await;
    let outbound = MllpOutbound::new(server.addr_string(), PATIENCE);
    assert_eq!(outbound.kind(), "mllp");
    for id in ["d-1", "d-2", "d-3"] {
        let reply = outbound.deliver(&envelope(id, b"MSH|x\r")).await.unwrap();
        assert_eq!(reply, ack(b"MSH|x\r"));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn refused_connection_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let outbound = MllpOutbound::new(addr, PATIENCE);
    let error = outbound.deliver(&envelope("d-1", b"MSH|x\r")).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Transient(_)), "{error}");
}

#[tokio::test]
async fn silent_peer_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let silent = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let outbound = MllpOutbound::new(addr, Duration::from_millis(200));
    let error = outbound.deliver(&envelope("d-1", b"MSH|x\r")).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Transient(_)), "{error}");
    silent.abort();
}

#[tokio::test]
async fn payload_that_cannot_be_framed_is_permanent() {
    let outbound = MllpOutbound::new("127.0.0.1:9".into(), PATIENCE);
    let error = outbound
        .deliver(&envelope("d-1", b"MSH|\x1c|x\r"))
        .await
        .unwrap_err();
    assert!(matches!(error, DeliveryError::Permanent(_)), "{error}");
}

#[tokio::test]
async fn reconnects_when_the_peer_closed_the_kept_connection() {
    let idle = Duration::from_millis(150);
    let server = start(|config| config.idle_timeout = idle, echo_handler()).await;
    let outbound = MllpOutbound::new(server.addr_string(), PATIENCE);
    outbound.deliver(&envelope("d-1", b"one")).await.unwrap();
    // The listener closes the kept connection as idle; the next delivery must still succeed.
    tokio::time::sleep(idle * 4).await;
    let reply = outbound.deliver(&envelope("d-2", b"two")).await.unwrap();
    assert_eq!(reply, ack(b"two"));
    server.shutdown().await;
}

#[tokio::test]
async fn delivers_again_once_a_down_peer_comes_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outbound = MllpOutbound::new(addr.to_string(), PATIENCE);
    assert!(
        outbound
            .deliver(&envelope("d-1", b"x"))
            .await
            .unwrap_err()
            .is_transient()
    );

    let listener = TcpListener::bind(addr).await.unwrap();
    let server = tokio::spawn(tributary_adapter_mllp::serve(
        listener,
        tributary_adapter_mllp::ListenerConfig::new(addr),
        echo_handler(),
        std::future::pending(),
    ));
    assert_eq!(outbound.deliver(&envelope("d-1", b"x")).await.unwrap(), ack(b"x"));
    server.abort();
}
