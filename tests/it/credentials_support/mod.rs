//! What the credential tests share: a member who activated an account (username `jane`), the
//! one-time code out of the text the member received, and an identity provider played by a real
//! HTTP server on loopback (src: `idp.rs`).

pub mod idp;

use serde_json::{Value, json};

use crate::members_support::{World, nth, token_in};

pub const PASSWORD: &str = "correct horse battery";

/// Jane Doe enrolled (email + text) and activated as `jane`; returns her patient id.
pub async fn active_jane(w: &World) -> String {
    let jane = w.jane().await;
    w.enroll(&jane).await;
    let token = token_in(&nth(&w.email, 1).await);
    let (status, body) = w.activate(&token, "jane").await;
    assert_eq!(status, 200, "{body}");
    jane
}

pub use crate::common::sign_in_code as code_in;

pub async fn sign_in(w: &World, username: &str, password: &str) -> (u16, Value) {
    w.post(
        "/api/sign-in",
        "portal",
        json!({ "username": username, "password": password, "channel": "text" }),
    )
    .await
}

pub async fn send_code(w: &World, challenge: &str, code: &str) -> (u16, Value) {
    w.post(
        "/api/sign-in/code",
        "portal",
        json!({ "challenge": challenge, "code": code }),
    )
    .await
}

/// Signs `username` in with the shared test password (no two-factor) and answers the session
/// token.
pub async fn session_of(w: &World, username: &str) -> String {
    let (status, signed) = w
        .post(
            "/api/sign-in",
            "portal",
            json!({ "username": username, "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    signed["session"].as_str().unwrap().to_string()
}

/// A request with a member's session token as the bearer.
pub async fn as_member(w: &World, method: &str, path: &str, session: &str) -> (u16, Value) {
    let url = format!("{}{path}", w.engine.http);
    let request = match method {
        "GET" => w.http.get(url),
        _ => w.http.post(url),
    };
    let response = request.bearer_auth(session).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Audit records of a member, by action.
pub async fn audit_actions(w: &World, target: &str) -> Vec<(String, Value)> {
    let (status, body) = w
        .get(&format!("/api/audit?target={target}&limit=1000"), "manager")
        .await;
    assert_eq!(status, 200, "{body}");
    body["records"]
        .as_array()
        .or_else(|| body.as_array())
        .expect("audit records")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").to_string(),
                r["details"].clone(),
            )
        })
        .collect()
}
