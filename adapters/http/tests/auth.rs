//! Authentication against a real receiver and token endpoint on 127.0.0.1: a static header, and
//! OAuth 2.0 client credentials with token caching, expiry and one refresh on 401.

mod support;

use std::time::Duration;

use tributary_adapter_core::{DeliveryError, Envelope, Outbound};
use tributary_adapter_http::{AuthConfig, ClientAuth, HttpConfig, HttpOutbound, from_config};

use support::Receiver;

fn envelope() -> Envelope {
    Envelope::new("d-1", "MSH|^~\\&|x\r", "x-application/hl7-v2+er7")
}

fn oauth(receiver: &Receiver, client_auth: ClientAuth) -> HttpOutbound {
    let mut config = HttpConfig::new(receiver.url("/in"));
    config.auth = AuthConfig::Oauth2ClientCredentials {
        token_url: receiver.url("/token"),
        client_id: "tributary app".into(),
        client_secret: "s3cr:et".into(),
        scope: Some("system/Patient.write".into()),
        client_auth,
    };
    from_config(config).unwrap()
}

/// The form fields of a token request, decoded.
fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_static_header_goes_with_every_request() {
    let receiver = Receiver::start().await;
    let mut config = HttpConfig::new(receiver.url("/in"));
    config.auth = AuthConfig::Header {
        name: "X-Api-Key".into(),
        value: "k-123".into(),
    };
    let outbound = from_config(config).unwrap();
    outbound.deliver(&envelope()).await.unwrap();
    outbound.deliver(&envelope()).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.header("x-api-key") == Some("k-123")));
}

#[tokio::test]
async fn one_token_is_fetched_and_reused_while_it_is_valid() {
    let receiver = Receiver::start().await;
    receiver.behave(|b| {
        b.token_expires_in = Some(3600);
        b.require_latest_token = true;
    });
    let outbound = oauth(&receiver, ClientAuth::Basic);
    for _ in 0..3 {
        outbound.deliver(&envelope()).await.unwrap();
    }
    let tokens = receiver.token_requests();
    assert_eq!(tokens.len(), 1);
    let token_request = &tokens[0];
    assert_eq!(token_request.method, "POST");
    assert_eq!(
        token_request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // Basic auth of the form-encoded id and secret (RFC 6749 section 2.3.1).
    assert_eq!(
        token_request.header("authorization"),
        Some("Basic dHJpYnV0YXJ5K2FwcDpzM2NyJTNBZXQ=")
    );
    let fields = form(&token_request.body_text());
    assert!(
        fields.contains(&("grant_type".into(), "client_credentials".into())),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("scope".into(), "system/Patient.write".into())),
        "{fields:?}"
    );
    assert!(
        !fields.iter().any(|(key, _)| key == "client_secret"),
        "{fields:?}"
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer tok-1"))
    );
}

#[tokio::test]
async fn credentials_can_go_in_the_form_body() {
    let receiver = Receiver::start().await;
    let outbound = oauth(&receiver, ClientAuth::Body);
    outbound.deliver(&envelope()).await.unwrap();
    let token_request = &receiver.token_requests()[0];
    assert_eq!(token_request.header("authorization"), None);
    let fields = form(&token_request.body_text());
    assert!(
        fields.contains(&("client_id".into(), "tributary app".into())),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("client_secret".into(), "s3cr:et".into())),
        "{fields:?}"
    );
}

#[tokio::test]
async fn a_token_is_fetched_again_shortly_before_it_expires() {
    let receiver = Receiver::start().await;
    // A 4 s token is refreshed after 2 s (the margin is at most half the lifetime).
    receiver.behave(|b| b.token_expires_in = Some(4));
    let outbound = oauth(&receiver, ClientAuth::Basic);
    outbound.deliver(&envelope()).await.unwrap();
    outbound.deliver(&envelope()).await.unwrap();
    assert_eq!(receiver.token_requests().len(), 1);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    outbound.deliver(&envelope()).await.unwrap();
    assert_eq!(receiver.token_requests().len(), 2);
    let last = receiver.requests().pop().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer tok-2"));
}

#[tokio::test]
async fn a_401_fetches_a_new_token_once_and_retries() {
    let receiver = Receiver::start().await;
    receiver.behave(|b| b.token_expires_in = Some(3600));
    let outbound = oauth(&receiver, ClientAuth::Basic);
    outbound.deliver(&envelope()).await.unwrap();
    // The receiver revokes tok-1 and from now on accepts only the newest token.
    receiver.behave(|b| {
        b.required_token = Some("none-yet".into());
        b.require_latest_token = true;
    });
    let reply = outbound.deliver(&envelope()).await.unwrap();
    assert_eq!(&reply[..], b"ok");
    assert_eq!(receiver.token_requests().len(), 2);
    let auths: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    assert_eq!(auths, ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]);
}

#[tokio::test]
async fn a_second_401_is_permanent_without_further_tries() {
    let receiver = Receiver::start().await;
    receiver.behave(|b| b.required_token = Some("never-issued".into()));
    let outbound = oauth(&receiver, ClientAuth::Basic);
    let error = outbound.deliver(&envelope()).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Permanent(m) if m.contains("401")),
        "{error}"
    );
    assert_eq!(receiver.requests().len(), 2);
    assert_eq!(receiver.token_requests().len(), 2);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_transient_and_nothing_is_delivered() {
    let receiver = Receiver::start().await;
    let outbound = oauth(&receiver, ClientAuth::Basic);
    for status in [401, 500] {
        receiver.behave(|b| b.token_failure = Some(status));
        let error = outbound.deliver(&envelope()).await.unwrap_err();
        assert!(
            matches!(&error, DeliveryError::Transient(m) if m.contains("token") && m.contains(&status.to_string())),
            "{error}"
        );
    }
    assert!(receiver.requests().is_empty());
    // Once the endpoint works again, so does delivery.
    receiver.behave(|b| b.token_failure = None);
    outbound.deliver(&envelope()).await.unwrap();
    assert_eq!(receiver.requests().len(), 1);
}
