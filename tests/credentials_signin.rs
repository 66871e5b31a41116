//! Password sign-in over HTTP against the real engine: argon2-checked passwords, the one-time
//! code that completes a sign-in (sent by text through the outbox, valid for a while, usable
//! once, a few tries), lockout after repeated failures, sessions, and the audit trail of every
//! result.

mod common;
mod credentials_support;
mod members_support;

use std::time::Duration;

use credentials_support::{PASSWORD, active_jane, as_member, audit_actions, code_in, send_code, sign_in};
use members_support::start;
use serde_json::Value;

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

/// The code of the latest sign-in text.
async fn latest_code(w: &members_support::World, texts: usize) -> String {
    let received = w.sms.wait_for(texts).await;
    code_in(received.last().unwrap())
}

#[tokio::test]
async fn a_password_then_a_one_time_code_signs_in_once_and_every_result_is_audited() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = true").await;
    let jane = active_jane(&w).await;
    // Enrollment and activation each sent a text.
    let texts = w.sms.wait_for(2).await.len();

    // Only the portal (self-service) signs members in.
    let (status, _) = w
        .post(
            "/api/sign-in",
            "manager",
            serde_json::json!({ "username": "jane", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 403);

    let (status, body) = sign_in(&w, "jane", "wrong password").await;
    assert_eq!((status, code(&body)), (401, "invalid-credentials"), "{body}");
    let (status, body) = sign_in(&w, "nobody-here", PASSWORD).await;
    assert_eq!((status, code(&body)), (401, "invalid-credentials"), "{body}");

    // The right password (any case of the username): a code goes out by text.
    let (status, body) = sign_in(&w, "JANE", PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "code-sent");
    let challenge = body["challenge"].as_str().unwrap().to_string();
    assert_eq!(challenge.len(), 32);
    let otp = latest_code(&w, texts + 1).await;
    assert_eq!(otp.len(), 6);

    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let (status, body) = send_code(&w, &challenge, wrong).await;
    assert_eq!((status, code(&body)), (401, "code-wrong"), "{body}");
    let (status, body) = send_code(&w, &challenge, &otp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "signed-in");
    assert_eq!(body["patient_id"], jane.as_str());
    assert_eq!(body["method"], "password+code");
    let session = body["session"].as_str().unwrap().to_string();

    // A code is good once.
    let (status, body) = send_code(&w, &challenge, &otp).await;
    assert_eq!((status, code(&body)), (401, "code-used"), "{body}");
    // A code belongs to its challenge.
    let (status, body) = send_code(&w, "NOT-A-CHALLENGE", &otp).await;
    assert_eq!((status, code(&body)), (401, "challenge-unknown"), "{body}");

    // The session works for the member's own endpoints, until signed out.
    let (status, me) = as_member(&w, "GET", "/api/me", &session).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["member"]["patient_id"], jane.as_str());
    assert_eq!(me["session"]["method"], "password+code");
    let (status, _) = as_member(&w, "GET", "/api/me", "not-a-session").await;
    assert_eq!(status, 401);
    let (status, _) = as_member(&w, "POST", "/api/sign-out", &session).await;
    assert_eq!(status, 204);
    let (status, body) = as_member(&w, "GET", "/api/me", &session).await;
    assert_eq!((status, code(&body)), (401, "session-unknown"));

    // Every result is in the trail, and no secret is.
    let records = audit_actions(&w, &format!("member/{jane}")).await;
    let actions: Vec<(&str, &str)> = records
        .iter()
        .filter(|(a, _)| a.starts_with("signin."))
        .map(|(a, d)| (a.as_str(), d["result"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        actions,
        [
            ("signin.failure", "invalid-credentials"),
            ("signin.code-sent", ""),
            ("signin.failure", "code-wrong"),
            ("signin.success", ""),
            ("signin.failure", "code-used"),
            ("signin.sign-out", ""),
        ]
    );
    let anonymous = audit_actions(&w, "sign-in").await;
    let results: Vec<&str> = anonymous
        .iter()
        .map(|(_, d)| d["result"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(results, ["invalid-credentials", "challenge-unknown"]);
    let (_, everything) = w.get("/api/audit?limit=1000", "manager").await;
    let text = everything.to_string();
    for secret in [PASSWORD, "wrong password", &otp, &challenge, &session] {
        assert!(!text.contains(secret), "the audit trail holds a secret");
    }
    assert!(!text.contains("nobody-here"), "a typed username is not recorded");
}

#[tokio::test]
async fn repeated_failures_lock_the_account_until_the_lockout_passes() {
    let w = start("[credentials]\ntwo_factor = false\nmax_failed_sign_ins = 3\nlockout_seconds = 2").await;
    let jane = active_jane(&w).await;
    for _ in 0..2 {
        let (status, body) = sign_in(&w, "jane", "wrong password").await;
        assert_eq!((status, code(&body)), (401, "invalid-credentials"), "{body}");
    }
    let (status, body) = sign_in(&w, "jane", "wrong password").await;
    assert_eq!((status, code(&body)), (423, "locked"), "{body}");
    assert!(body["locked_until"].is_string());
    // Locked: even the right password is refused.
    let (status, body) = sign_in(&w, "jane", PASSWORD).await;
    assert_eq!((status, code(&body)), (423, "locked"), "{body}");
    let (status, state) = w
        .get(&format!("/api/members/{jane}/credentials"), "manager")
        .await;
    assert_eq!(status, 200, "{state}");
    assert!(state["sign_in"]["locked_until"].is_string(), "{state}");
    let (status, _) = w.get(&format!("/api/members/{jane}/credentials"), "desk").await;
    assert_eq!(status, 403);

    tokio::time::sleep(Duration::from_millis(2300)).await;
    // Two-factor off: the right password signs in at once.
    let (status, body) = sign_in(&w, "jane", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["method"], "password");
    let actions: Vec<String> = audit_actions(&w, &format!("member/{jane}"))
        .await
        .into_iter()
        .map(|(a, _)| a)
        .filter(|a| a.starts_with("signin."))
        .collect();
    assert_eq!(
        actions,
        [
            "signin.failure",
            "signin.failure",
            "signin.failure",
            "signin.lockout",
            "signin.failure",
            "signin.success"
        ]
    );
}

#[tokio::test]
async fn a_code_expires_and_too_many_wrong_codes_kill_it() {
    let w =
        start("[credentials]\ncode_valid_seconds = 1\ncode_max_attempts = 2\nmax_failed_sign_ins = 10").await;
    active_jane(&w).await;
    let texts = w.sms.wait_for(2).await.len();

    let (status, body) = sign_in(&w, "jane", PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let challenge = body["challenge"].as_str().unwrap().to_string();
    let otp = latest_code(&w, texts + 1).await;
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        let (status, body) = send_code(&w, &challenge, wrong).await;
        assert_eq!((status, code(&body)), (401, "code-wrong"), "{body}");
    }
    let (status, body) = send_code(&w, &challenge, &otp).await;
    assert_eq!((status, code(&body)), (401, "too-many-attempts"), "{body}");

    let (status, body) = sign_in(&w, "jane", PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let challenge = body["challenge"].as_str().unwrap().to_string();
    let otp = latest_code(&w, texts + 2).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = send_code(&w, &challenge, &otp).await;
    assert_eq!((status, code(&body)), (401, "code-expired"), "{body}");
}
