//! Secrets at rest: an activation token, a sign-in code and a password reset link go out to the
//! member through the outbox, yet none of them is ever written in clear under the data folder
//! (the journal's `.wal` segments, the store's files): the queued notification holds a
//! placeholder and the secret travels sealed under the server key until the worker sends it.
//! The gateway (a file drop standing in for the email and SMS gateways) gets the real secret,
//! and it works.

use std::path::{Path, PathBuf};

use crate::credentials_support::{PASSWORD, code_in, send_code, sign_in};
use crate::members_support::{nth, start, token_in};
use serde_json::json;

/// Every file under `dir` (recursively) whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = vec![];
    let mut folders = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files += 1;
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path);
                }
            }
        }
    }
    assert!(files > 2, "the data folder {} holds files", dir.display());
    found
}

/// Asserts no file under the engine's data folder holds `secret`.
fn nowhere_at_rest(w: &crate::members_support::World, secret: &str) {
    let found = files_holding(&w.engine.data_dir, secret);
    assert!(found.is_empty(), "`{secret}` in clear in {found:?}");
}

#[tokio::test]
async fn tokens_codes_and_reset_links_reach_the_member_but_never_rest_in_clear() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = true").await;
    let jane = w.jane().await;
    let enrolled = w.enroll(&jane).await;

    // The activation token, by email and by text: both carry it, the data folder does not.
    let email = nth(&w.email, 1).await;
    let text = nth(&w.sms, 1).await;
    let token = token_in(&email);
    assert_eq!(token.len(), 32, "{email}");
    assert!(text.contains(&token), "{text}");
    for message in [&email, &text] {
        assert!(
            !message.contains("{{sealed"),
            "a placeholder reached the member: {message}"
        );
    }
    nowhere_at_rest(&w, &token);
    // What was sent works.
    let (status, body) = w.activate(&token, "jane").await;
    assert_eq!(status, 200, "{body}");

    // A sign-in code by text. Six digits could turn up by chance among the store's numbers, so
    // it is looked for as the text shows it.
    let texts = w.sms.wait_for(2).await.len();
    let (status, body) = sign_in(&w, "jane", PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let challenge = body["challenge"].as_str().unwrap().to_string();
    let code_text = nth(&w.sms, texts + 1).await;
    let otp = code_in(&code_text);
    nowhere_at_rest(&w, &format!("code: {otp}"));
    let (status, body) = send_code(&w, &challenge, &otp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "signed-in");

    // A password reset link by email.
    let emails = w.email.wait_for(2).await.len();
    let (status, _) = w
        .post("/api/password/forgot", "portal", json!({ "username": "jane" }))
        .await;
    assert_eq!(status, 202);
    let link_email = nth(&w.email, emails + 1).await;
    assert!(
        link_email.contains("https://portal.test/reset-password?token="),
        "{link_email}"
    );
    let reset = token_in(&link_email);
    nowhere_at_rest(&w, &reset);
    let (status, body) = w
        .post(
            "/api/password/reset",
            "portal",
            json!({ "token": reset, "password": "a brand new password" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The API never shows a notification's content or its sealed secrets, and once delivered
    // nothing of them is kept.
    let ids = enrolled["notification"]["deliveries"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 2, "{enrolled}");
    for id in ids {
        let id = id.as_str().unwrap();
        let (status, delivery) = w.get(&format!("/outbox/deliveries/{id}"), "analyst").await;
        assert_eq!(status, 200, "{delivery}");
        assert_eq!(delivery["state"], "delivered", "{delivery}");
        assert!(delivery.get("sealed").is_none(), "{delivery}");
    }
}
