//! The HTTP adapter against a real receiver on 127.0.0.1: what goes over the wire, and how each
//! kind of answer is classified for the outbox.

mod support;

use std::time::Duration;

use tokio::net::TcpListener;
use tributary_adapter_core::{DeliveryError, Envelope, Outbound};
use tributary_adapter_http::{HttpConfig, from_config};

use support::Receiver;

fn envelope(id: &str) -> Envelope {
    let mut envelope = Envelope::new(id, r#"{"resourceType":"Patient"}"#, "application/fhir+json");
    envelope.headers.push(("X-Tenant".into(), "north".into()));
    envelope
}

fn permanent(error: DeliveryError) -> String {
    match error {
        DeliveryError::Permanent(message) => message,
        other => panic!("expected Permanent, got {other}"),
    }
}

fn transient(error: DeliveryError) -> String {
    match error {
        DeliveryError::Transient(message) => message,
        other => panic!("expected Transient, got {other}"),
    }
}

#[tokio::test]
async fn posts_the_payload_with_its_content_type_headers_and_delivery_id() {
    let receiver = Receiver::start().await;
    receiver.answer(201, "created Patient/7");
    let mut config = HttpConfig::new(receiver.url("/fhir/Patient?tenant=a"));
    config
        .headers
        .insert("Accept".into(), "application/fhir+json".into());
    config
        .headers
        .insert("X-Tenant".into(), "replaced-by-envelope".into());
    let outbound = from_config(config).unwrap();
    assert_eq!(outbound.kind(), "http");

    let reply = outbound.deliver(&envelope("d-42")).await.unwrap();
    assert_eq!(&reply[..], b"created Patient/7");

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/fhir/Patient?tenant=a");
    assert_eq!(request.body_text(), r#"{"resourceType":"Patient"}"#);
    assert_eq!(request.header("content-type"), Some("application/fhir+json"));
    assert_eq!(request.header("x-delivery-id"), Some("d-42"));
    assert_eq!(request.header("accept"), Some("application/fhir+json"));
    assert_eq!(request.header("x-tenant"), Some("north"));
    assert_eq!(request.headers.get_all("x-tenant").iter().count(), 1);
    assert_eq!(request.header("authorization"), None);
}

#[tokio::test]
async fn a_retry_carries_the_same_delivery_id() {
    let receiver = Receiver::start().await;
    receiver.answer(503, "busy");
    let outbound = from_config(HttpConfig::new(receiver.url("/in"))).unwrap();
    let first = outbound.deliver(&envelope("d-7")).await.unwrap_err();
    assert!(first.is_transient(), "{first}");
    outbound.deliver(&envelope("d-7")).await.unwrap();
    let ids: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.header("x-delivery-id").unwrap().to_string())
        .collect();
    assert_eq!(ids, ["d-7", "d-7"]);
}

#[tokio::test]
async fn the_method_is_configurable() {
    let receiver = Receiver::start().await;
    let mut config = HttpConfig::new(receiver.url("/fhir/Patient/7"));
    config.method = "put".into();
    from_config(config)
        .unwrap()
        .deliver(&envelope("d-1"))
        .await
        .unwrap();
    assert_eq!(receiver.requests()[0].method, "PUT");
}

#[tokio::test]
async fn server_errors_throttling_and_request_timeouts_are_transient() {
    let receiver = Receiver::start().await;
    let outbound = from_config(HttpConfig::new(receiver.url("/in"))).unwrap();
    for status in [500, 502, 503, 429, 408] {
        receiver.answer(status, "try later");
        let message = transient(outbound.deliver(&envelope("d-1")).await.unwrap_err());
        assert!(message.contains(&status.to_string()), "{message}");
        assert!(message.contains("try later"), "{message}");
    }
}

#[tokio::test]
async fn client_errors_are_permanent_with_status_and_body_excerpt() {
    let receiver = Receiver::start().await;
    let outbound = from_config(HttpConfig::new(receiver.url("/in"))).unwrap();
    receiver.answer(400, "Patient.birthDate: invalid date\n");
    let message = permanent(outbound.deliver(&envelope("d-1")).await.unwrap_err());
    assert!(message.contains("400"), "{message}");
    assert!(message.contains("Patient.birthDate: invalid date"), "{message}");

    for status in [401, 403, 404, 409, 422] {
        receiver.answer(status, "");
        let message = permanent(outbound.deliver(&envelope("d-1")).await.unwrap_err());
        assert!(message.contains(&status.to_string()), "{message}");
    }
}

#[tokio::test]
async fn a_long_error_body_is_quoted_only_in_part() {
    let receiver = Receiver::start().await;
    let outbound = from_config(HttpConfig::new(receiver.url("/in"))).unwrap();
    receiver.answer(422, &"x".repeat(100_000));
    let message = permanent(outbound.deliver(&envelope("d-1")).await.unwrap_err());
    assert!(message.len() < 600, "{} bytes", message.len());
}

#[tokio::test]
async fn redirects_are_not_followed_and_are_permanent() {
    let receiver = Receiver::start().await;
    let outbound = from_config(HttpConfig::new(receiver.url("/old"))).unwrap();
    receiver.answer_with(301, &[("location", "/new")], "");
    let message = permanent(outbound.deliver(&envelope("d-1")).await.unwrap_err());
    assert!(message.contains("/new"), "{message}");
    assert_eq!(receiver.requests().len(), 1, "the redirect must not be followed");
}

#[tokio::test]
async fn a_slow_receiver_is_a_transient_timeout() {
    let receiver = Receiver::start().await;
    receiver.behave(|b| b.delay = Duration::from_secs(5));
    let mut config = HttpConfig::new(receiver.url("/in"));
    config.timeout_secs = 1;
    let outbound = from_config(config).unwrap();
    let started = std::time::Instant::now();
    let message = transient(outbound.deliver(&envelope("d-1")).await.unwrap_err());
    assert!(message.contains("timed out"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outbound = from_config(HttpConfig::new(format!("http://{addr}/in?key=secret"))).unwrap();
    let message = transient(outbound.deliver(&envelope("d-1")).await.unwrap_err());
    assert!(message.contains("cannot connect"), "{message}");
    assert!(!message.contains("secret"), "the query may hold a key: {message}");
}

#[tokio::test]
async fn delivers_once_a_down_receiver_is_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outbound = from_config(HttpConfig::new(format!("http://{addr}/in"))).unwrap();
    assert!(
        outbound
            .deliver(&envelope("d-1"))
            .await
            .unwrap_err()
            .is_transient()
    );

    let listener = TcpListener::bind(addr).await.unwrap();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "back" });
        axum::serve(listener, app).await.unwrap();
    });
    assert_eq!(&outbound.deliver(&envelope("d-1")).await.unwrap()[..], b"back");
    server.abort();
}

#[tokio::test]
async fn a_success_body_is_cut_at_the_configured_limit() {
    let receiver = Receiver::start().await;
    receiver.answer(200, &"a".repeat(10_000));
    let mut config = HttpConfig::new(receiver.url("/in"));
    config.max_response_bytes = 1000;
    let reply = from_config(config)
        .unwrap()
        .deliver(&envelope("d-1"))
        .await
        .unwrap();
    assert_eq!(reply.len(), 1000);
}

#[tokio::test]
async fn envelope_headers_that_cannot_be_sent_are_permanent_and_nothing_is_sent() {
    let receiver = Receiver::start().await;
    let outbound = from_config(HttpConfig::new(receiver.url("/in"))).unwrap();
    for (name, value) in [
        ("Bad Name", "x"),
        ("X-Ok", "line\nbreak"),
        ("Content-Length", "3"),
        ("Host", "evil"),
    ] {
        let mut bad = envelope("d-1");
        bad.headers.push((name.into(), value.into()));
        let message = permanent(outbound.deliver(&bad).await.unwrap_err());
        assert!(message.contains(name), "{message}");
    }
    let mut bad_id = envelope("d-\r\n1");
    bad_id.headers.clear();
    permanent(outbound.deliver(&bad_id).await.unwrap_err());
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn an_empty_content_type_goes_out_as_octet_stream() {
    let receiver = Receiver::start().await;
    let outbound = from_config(HttpConfig::new(receiver.url("/in"))).unwrap();
    outbound.deliver(&Envelope::new("d-1", "x", "")).await.unwrap();
    assert_eq!(
        receiver.requests()[0].header("content-type"),
        Some("application/octet-stream")
    );
}
