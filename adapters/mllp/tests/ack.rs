//! The outbound adapter's ACK check against a real MLLP listener on 127.0.0.1 answering AA, AE,
//! AR, CA, CE, CR and garbage: what succeeds, what is retried, what is dead-lettered.

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tributary_adapter_core::{DeliveryError, Envelope, Inbound, InboundHandler, Outbound, handler_fn};
use tributary_adapter_mllp::{Disposition, MllpOutbound, MllpOutboundConfig, from_config};

use support::{PATIENCE, start};

const MESSAGE: &[u8] =
    b"MSH|^~\\&|TRIBUTARY|PORTAL|UCR|NHS|20261125120000||ADT^A31^ADT_A05|M1|P|2.5\rPID|1||42\r";

/// What the listener answers, and which connections the messages came on.
#[derive(Default)]
struct Peer {
    reply: Mutex<Vec<u8>>,
    seen_from: Mutex<Vec<String>>,
}

impl Peer {
    fn answer(&self, reply: &[u8]) {
        *self.reply.lock().unwrap() = reply.to_vec();
    }

    fn answer_code(&self, code: &str) {
        self.answer(
            format!("MSH|^~\\&|UCR|NHS|TRIBUTARY|PORTAL|20261125120001||ACK^A31^ACK|A1|P|2.5\rMSA|{code}|M1|reason for {code}\r")
                .as_bytes(),
        );
    }

    fn handler(self: &Arc<Self>) -> Arc<dyn InboundHandler> {
        let peer = self.clone();
        Arc::new(handler_fn(move |message: Inbound| {
            let peer = peer.clone();
            async move {
                peer.seen_from.lock().unwrap().push(message.peer);
                vec![Bytes::from(peer.reply.lock().unwrap().clone())]
            }
        }))
    }
}

fn envelope() -> Envelope {
    Envelope::new("d-1", MESSAGE, "x-application/hl7-v2+er7")
}

async fn adapter_for(config: MllpOutboundConfig) -> MllpOutbound {
    from_config(config).unwrap()
}

#[tokio::test]
async fn aa_and_ca_succeed_and_return_the_ack() {
    let peer = Arc::new(Peer::default());
    let server = start(|_| {}, peer.handler()).await;
    let mut config = MllpOutboundConfig::new(server.addr_string());
    config.timeout_secs = PATIENCE.as_secs();
    let outbound = adapter_for(config).await;
    for code in ["AA", "CA"] {
        peer.answer_code(code);
        let reply = outbound.deliver(&envelope()).await.unwrap();
        assert!(reply.ends_with(format!("MSA|{code}|M1|reason for {code}\r").as_bytes()));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_errors_are_retried_and_rejects_dead_lettered() {
    let peer = Arc::new(Peer::default());
    let server = start(|_| {}, peer.handler()).await;
    let outbound = adapter_for(MllpOutboundConfig::new(server.addr_string())).await;
    for (code, transient) in [("AE", true), ("CE", true), ("AR", false), ("CR", false)] {
        peer.answer_code(code);
        let error = outbound.deliver(&envelope()).await.unwrap_err();
        assert_eq!(error.is_transient(), transient, "{code}: {error}");
        let message = error.to_string();
        assert!(message.contains(code), "{message}");
        assert!(message.contains(&format!("reason for {code}")), "{message}");
        assert!(message.contains(&server.addr_string()), "{message}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_dispositions_follow_the_config() {
    let peer = Arc::new(Peer::default());
    let server = start(|_| {}, peer.handler()).await;
    let config: MllpOutboundConfig = toml::from_str(&format!(
        "address = \"{}\"\nack_error = \"permanent\"\nack_reject = \"transient\"\n",
        server.addr_string()
    ))
    .unwrap();
    assert_eq!(config.ack_error, Disposition::Permanent);
    let outbound = adapter_for(config).await;
    peer.answer_code("AE");
    assert!(matches!(
        outbound.deliver(&envelope()).await,
        Err(DeliveryError::Permanent(_))
    ));
    peer.answer_code("AR");
    assert!(matches!(
        outbound.deliver(&envelope()).await,
        Err(DeliveryError::Transient(_))
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn a_reply_that_is_not_an_ack_is_transient() {
    let peer = Arc::new(Peer::default());
    let server = start(|_| {}, peer.handler()).await;
    let outbound = adapter_for(MllpOutboundConfig::new(server.addr_string())).await;
    for garbage in [
        &b"hello, world"[..],
        b"MSH|^~\\&|UCR|NHS\rPID|1||42\r",
        b"MSA|AA|M1\r",
        b"\x00\xff\xfe",
        b"",
    ] {
        peer.answer(garbage);
        let error = outbound.deliver(&envelope()).await.unwrap_err();
        assert!(
            matches!(&error, DeliveryError::Transient(m) if m.contains("not an HL7 ACK")),
            "{:?}: {error}",
            String::from_utf8_lossy(garbage)
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_ack_with_its_own_separator_and_line_feeds_is_read() {
    let peer = Arc::new(Peer::default());
    let server = start(|_| {}, peer.handler()).await;
    let outbound = adapter_for(MllpOutboundConfig::new(server.addr_string())).await;
    peer.answer(b"MSH#^~\\&#UCR#NHS#TRIBUTARY#PORTAL#20261125##ACK#A1#P#2.5\nMSA#AR#M1#unknown patient\n");
    let error = outbound.deliver(&envelope()).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Permanent(m) if m.contains("unknown patient")),
        "{error}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_negative_ack_keeps_the_connection_for_the_next_delivery() {
    let peer = Arc::new(Peer::default());
    let server = start(|_| {}, peer.handler()).await;
    let outbound = adapter_for(MllpOutboundConfig::new(server.addr_string())).await;
    peer.answer_code("AE");
    assert!(outbound.deliver(&envelope()).await.unwrap_err().is_transient());
    peer.answer_code("AA");
    outbound.deliver(&envelope()).await.unwrap();
    let seen = peer.seen_from.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "both deliveries on one kept connection");
    server.shutdown().await;
}

#[tokio::test]
async fn without_the_check_any_reply_is_returned() {
    let peer = Arc::new(Peer::default());
    let server = start(|_| {}, peer.handler()).await;
    let mut config = MllpOutboundConfig::new(server.addr_string());
    config.check_ack = false;
    let outbound = adapter_for(config).await;
    assert_eq!(outbound.ack_policy(), None);
    peer.answer(b"not an ack");
    assert_eq!(&outbound.deliver(&envelope()).await.unwrap()[..], b"not an ack");
    peer.answer_code("AR");
    outbound.deliver(&envelope()).await.unwrap();
    server.shutdown().await;
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    for address in ["", "host", "host:", ":2575", "host:port", "host:70000", "host:0"] {
        let error = from_config(MllpOutboundConfig::new(address)).unwrap_err();
        assert!(error.contains("address"), "{address:?}: {error}");
    }
    let mut config = MllpOutboundConfig::new("127.0.0.1:2575");
    config.timeout_secs = 0;
    assert!(from_config(config).unwrap_err().contains("timeout_secs"));
    let built = from_config(MllpOutboundConfig::new("[::1]:2575")).unwrap();
    assert_eq!(built.addr(), "[::1]:2575");
    assert!(built.ack_policy().is_some());
}
