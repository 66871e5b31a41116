//! Password sign-in over HTTP against the real engine: argon2-checked passwords, the one-time
//! code that completes a sign-in (sent by text through the outbox, valid for a while, usable
//! once, a few tries), growing waits after repeated failures instead of a lock, replies that do
//! not tell whether an account exists, sessions that end with a password reset, a
//! deactivation or a change of credentials, the request budget per client address, and the
//! audit trail of every result.

use std::time::{Duration, Instant};

use crate::common::code;
use crate::credentials_support::{
    PASSWORD, active_jane, as_member, audit_actions, code_in, send_code, sign_in,
};
use crate::members_support::{nth, start, token_in};
use serde_json::Value;
use serde_json::json;

/// The code of the latest sign-in text.
async fn latest_code(w: &crate::members_support::World, texts: usize) -> String {
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

/// A sign-in answered with its `Retry-After` header.
async fn sign_in_raw(
    w: &crate::members_support::World,
    username: &str,
    password: &str,
) -> (u16, Option<String>, Value) {
    let response = w
        .http
        .post(format!("{}/api/sign-in", w.engine.http))
        .bearer_auth(crate::members_support::key("portal"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn repeated_failures_make_the_next_attempt_wait_longer_and_never_lock_the_owner_out() {
    let w = start(
        "[credentials]\ntwo_factor = false\nmax_failed_sign_ins = 3\nsign_in_delay_max_seconds = 2\naddress_failed_sign_ins = 100",
    )
    .await;
    let jane = active_jane(&w).await;
    for _ in 0..3 {
        let (status, body) = sign_in(&w, "jane", "wrong password").await;
        assert_eq!((status, code(&body)), (401, "invalid-credentials"), "{body}");
    }
    // The third failure makes the next attempt wait a second, even with the right password.
    let (status, retry_after, body) = sign_in_raw(&w, "jane", PASSWORD).await;
    assert_eq!((status, code(&body)), (429, "sign-in-delayed"), "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["retry_after"], 1);
    let (status, state) = w
        .get(&format!("/api/members/{jane}/credentials"), "manager")
        .await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["sign_in"]["failures"], 3, "{state}");
    assert_eq!(state["sign_in"]["wait_seconds"], 1, "{state}");
    let (status, _) = w.get(&format!("/api/members/{jane}/credentials"), "desk").await;
    assert_eq!(status, 403);

    // An unknown username waits the same way: the wait tells nothing about the account.
    for _ in 0..3 {
        let (status, body) = sign_in(&w, "nobody-here", "wrong password").await;
        assert_eq!((status, code(&body)), (401, "invalid-credentials"), "{body}");
    }
    let (status, retry_after, body) = sign_in_raw(&w, "nobody-here", PASSWORD).await;
    assert_eq!(
        (status, code(&body), retry_after.as_deref()),
        (429, "sign-in-delayed", Some("1"))
    );

    // After the wait, one more failure makes the next wait longer (up to the cap).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = sign_in(&w, "jane", "wrong password").await;
    assert_eq!((status, code(&body)), (401, "invalid-credentials"), "{body}");
    let (status, retry_after, _) = sign_in_raw(&w, "jane", PASSWORD).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("2")));

    // Once it has passed, the right password signs in (two-factor off: at once).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = sign_in(&w, "jane", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["method"], "password");
    let (_, state) = w
        .get(&format!("/api/members/{jane}/credentials"), "manager")
        .await;
    assert_eq!(
        (
            state["sign_in"]["failures"].as_u64(),
            state["sign_in"]["wait_seconds"].as_u64()
        ),
        (Some(0), Some(0))
    );
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
            "signin.failure",
            "signin.success"
        ]
    );
}

#[tokio::test]
async fn guesses_sent_all_at_once_cannot_slip_past_the_wait() {
    let w =
        start("[credentials]\ntwo_factor = false\nmax_failed_sign_ins = 3\naddress_failed_sign_ins = 100")
            .await;
    active_jane(&w).await;
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = w
            .http
            .post(format!("{}/api/sign-in", w.engine.http))
            .bearer_auth(crate::members_support::key("portal"))
            .json(&json!({ "username": "jane", "password": "a guess" }));
        guesses.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = guesses.join_all().await;
    // Each attempt is counted as it starts: the three free ones run, the rest wait.
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 7, "{statuses:?}");
}

#[tokio::test]
async fn an_unknown_username_and_a_wrong_password_answer_alike() {
    let w =
        start("[credentials]\ntwo_factor = false\nmax_failed_sign_ins = 50\naddress_failed_sign_ins = 100")
            .await;
    active_jane(&w).await;
    let (mut known, mut unknown) = (Duration::ZERO, Duration::ZERO);
    for i in 0..6 {
        let started = Instant::now();
        let (wrong_status, wrong) = sign_in(&w, "jane", "wrong password").await;
        known += started.elapsed();
        let started = Instant::now();
        let (nobody_status, nobody) = sign_in(&w, &format!("nobody-{i}"), "wrong password").await;
        unknown += started.elapsed();
        assert_eq!(
            (wrong_status, &wrong),
            (nobody_status, &nobody),
            "the answers differ"
        );
        assert_eq!((wrong_status, code(&wrong)), (401, "invalid-credentials"));
    }
    // Both run the same password check: an unknown name is not answered markedly sooner.
    assert!(
        unknown * 2 >= known,
        "unknown usernames took {unknown:?}, known ones {known:?}"
    );
}

#[tokio::test]
async fn a_password_reset_a_deactivation_and_a_new_password_end_every_session() {
    let w = start("[credentials]\ntwo_factor = false").await;
    let jane = active_jane(&w).await;
    let session = |body: &Value| body["session"].as_str().unwrap().to_string();
    let (_, first) = sign_in(&w, "jane", PASSWORD).await;
    let (_, second) = sign_in(&w, "jane", PASSWORD).await;
    let sessions = [session(&first), session(&second)];
    for s in &sessions {
        assert_eq!(as_member(&w, "GET", "/api/me", s).await.0, 200);
    }

    // A staff-sent reset link, used: the new password ends both sessions.
    let (status, body) = w
        .post(
            &format!("/api/members/{jane}/password-reset"),
            "manager",
            json!({ "reason": "asked by phone" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let link = nth(&w.email, 3).await;
    let (status, body) = w
        .post(
            "/api/password/reset",
            "portal",
            json!({ "token": token_in(&link), "password": "a brand new password" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for s in &sessions {
        let (status, body) = as_member(&w, "GET", "/api/me", s).await;
        assert_eq!((status, code(&body)), (401, "session-unknown"), "{body}");
    }

    // A deactivation ends the new one; a reactivation does not bring it back.
    let (status, body) = sign_in(&w, "jane", "a brand new password").await;
    assert_eq!(status, 200, "{body}");
    let third = session(&body);
    let (status, body) = w
        .post(
            &format!("/api/members/{jane}/deactivate"),
            "manager",
            json!({ "reason": "moved away" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = as_member(&w, "GET", "/api/me", &third).await;
    assert_eq!((status, code(&body)), (401, "session-unknown"), "{body}");
    let (status, body) = w
        .post(
            &format!("/api/members/{jane}/reactivate"),
            "manager",
            json!({ "reason": "back again" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(as_member(&w, "GET", "/api/me", &third).await.0, 401);
    let (status, body) = sign_in(&w, "jane", "a brand new password").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(as_member(&w, "GET", "/api/me", &session(&body)).await.0, 200);
}

#[tokio::test]
async fn one_address_past_its_request_budget_is_answered_429_with_retry_after() {
    let w = start("[http.rate_limit]\nper_second = 1\nburst = 4").await;
    let get = |path: &str| {
        w.http
            .get(format!("{}{path}", w.engine.http))
            .bearer_auth(crate::members_support::key("manager"))
            .send()
    };
    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(get("/api/audit?limit=1").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200; 4]);
    let refused = get("/api/audit?limit=1").await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(code(&body), "too-many-requests", "{body}");
    // Under /fhir the refusal is an OperationOutcome; /health is never refused.
    let fhir = get("/fhir/Patient?name=doe").await.unwrap();
    assert_eq!(fhir.status().as_u16(), 429);
    assert!(fhir.headers().contains_key("retry-after"));
    let outcome: Value = fhir.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    for _ in 0..5 {
        assert_eq!(get("/health").await.unwrap().status().as_u16(), 200);
    }
    // The budget refills.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get("/api/audit?limit=1").await.unwrap().status().as_u16(), 200);
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
