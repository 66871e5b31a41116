//! The SMS adapter against a real HTTP gateway on 127.0.0.1: JSON and form bodies that stay valid
//! whatever the text holds, the recipient from the envelope, and the HTTP adapter's status rules.

// An SMS gateway is an HTTP receiver: the HTTP adapter's test receiver plays it.
#[path = "../../http/tests/support/mod.rs"]
mod support;

use tributary_adapter_core::{DeliveryError, Envelope, Outbound};
use tributary_adapter_sms::{AuthConfig, BodyFormat, SmsConfig, from_config};

use support::Receiver as Gateway;

/// Quotes, a backslash, line breaks, a tab, Arabic, and the characters forms treat specially.
const TRICKY: &str = "رمز التفعيل: \"4821\"\nلا تشاركه مع أحد.\r\nPath C:\\temp\t& a=b+c 100%";

fn envelope(id: &str, to: Option<&str>, text: &str) -> Envelope {
    let mut envelope = Envelope::new(id, text.to_string(), "text/plain");
    if let Some(to) = to {
        envelope.headers.push(("To".into(), to.into()));
    }
    envelope
}

fn json_config(gateway: &Gateway) -> SmsConfig {
    SmsConfig::new(
        gateway.url("/api/messages"),
        r#"{"to": "{{to}}", "text": "{{body}}", "reference": "tributary-{{id}}"}"#,
    )
}

#[tokio::test]
async fn a_json_body_stays_valid_and_carries_the_exact_text() {
    let gateway = Gateway::start().await;
    gateway.answer(200, r#"{"status":"queued"}"#);
    let outbound = from_config(json_config(&gateway)).unwrap();
    assert_eq!(outbound.kind(), "sms");
    let reply = outbound
        .deliver(&envelope("d-9", Some(" +971 50 123 4567 "), TRICKY))
        .await
        .unwrap();
    assert_eq!(&reply[..], br#"{"status":"queued"}"#);

    let requests = gateway.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/messages");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-delivery-id"), Some("d-9"));
    // The envelope's headers are template input, not HTTP headers.
    assert_eq!(request.header("to"), None);
    let sent: serde_json::Value = serde_json::from_slice(&request.body).expect("valid JSON");
    assert_eq!(sent["to"], "+971 50 123 4567");
    assert_eq!(sent["text"], TRICKY);
    assert_eq!(sent["reference"], "tributary-d-9");
}

#[tokio::test]
async fn a_form_body_carries_the_exact_text() {
    let gateway = Gateway::start().await;
    let mut config = SmsConfig::new(
        gateway.url("/send"),
        "To={{to}}&From=Portal&Body={{body}}&Ref={{id}}",
    );
    config.format = BodyFormat::Form;
    from_config(config)
        .unwrap()
        .deliver(&envelope("d/10 x", Some("+15550100"), TRICKY))
        .await
        .unwrap();
    let request = &gateway.requests()[0];
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(request.body.is_ascii());
    let fields: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    assert_eq!(
        fields,
        [
            ("To".to_string(), "+15550100".to_string()),
            ("From".to_string(), "Portal".to_string()),
            ("Body".to_string(), TRICKY.to_string()),
            ("Ref".to_string(), "d/10 x".to_string()),
        ]
    );
}

#[tokio::test]
async fn configured_headers_and_auth_go_with_the_request() {
    let gateway = Gateway::start().await;
    let mut config = json_config(&gateway);
    config
        .headers
        .insert("Content-Type".into(), "application/vnd.sms+json".into());
    config.headers.insert("X-Account".into(), "portal".into());
    config.auth = AuthConfig::Header {
        name: "Authorization".into(),
        value: "Bearer gw-key".into(),
    };
    config.method = "PUT".into();
    from_config(config)
        .unwrap()
        .deliver(&envelope("d-1", Some("+15550100"), "hi"))
        .await
        .unwrap();
    let request = &gateway.requests()[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.header("content-type"), Some("application/vnd.sms+json"));
    assert_eq!(request.header("x-account"), Some("portal"));
    assert_eq!(request.header("authorization"), Some("Bearer gw-key"));
}

#[tokio::test]
async fn a_missing_recipient_or_binary_text_is_permanent_and_nothing_is_sent() {
    let gateway = Gateway::start().await;
    let outbound = from_config(json_config(&gateway)).unwrap();
    for bad in [
        envelope("d-1", None, "hi"),
        envelope("d-2", Some("   "), "hi"),
        Envelope {
            payload: bytes::Bytes::from_static(b"\xc3\x28"),
            ..envelope("d-3", Some("+15550100"), "")
        },
    ] {
        let error = outbound.deliver(&bad).await.unwrap_err();
        assert!(matches!(error, DeliveryError::Permanent(_)), "{error}");
    }
    assert!(gateway.requests().is_empty());
}

#[tokio::test]
async fn gateway_answers_are_classified_as_for_http() {
    let gateway = Gateway::start().await;
    let outbound = from_config(json_config(&gateway)).unwrap();
    gateway.answer(503, "maintenance");
    let error = outbound
        .deliver(&envelope("d-1", Some("+1"), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Transient(m) if m.contains("503")),
        "{error}"
    );
    gateway.answer(429, "slow down");
    assert!(
        outbound
            .deliver(&envelope("d-1", Some("+1"), "x"))
            .await
            .unwrap_err()
            .is_transient()
    );
    gateway.answer(400, r#"{"error": "invalid number"}"#);
    let error = outbound
        .deliver(&envelope("d-1", Some("+1"), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Permanent(m) if m.contains("400") && m.contains("invalid number")),
        "{error}"
    );
}
