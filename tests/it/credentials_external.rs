//! External credentials over HTTP against the real engine, with a real identity provider on
//! loopback (JWKS, introspection, userInfo) signing real RS256 JWTs: first sign-in links the
//! credential to the member the provider's patient identifier matches, several credentials per
//! account, and every refusal: forged, expired, wrong-audience, wrong-issuer, wrong-algorithm,
//! replayed and inactive tokens, no match, demographics that disagree, a non-member; and the
//! deployment mode.

use crate::common::code;
use crate::credentials_support::idp::Idp;
use crate::credentials_support::{PASSWORD, active_jane, as_member, audit_actions, sign_in};
use crate::members_support::{World, start};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const JANE_MPI: &str = "1000234567";
const JANE_BORN: &str = "1984-03-12";

async fn external(w: &World, token: &str, provider: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "token": token });
    if let Some(p) = provider {
        body["provider"] = json!(p);
    }
    w.post("/api/sign-in/external", "portal", body).await
}

#[tokio::test]
async fn a_jwt_links_the_credential_and_a_second_provider_adds_another_to_the_account() {
    let national = Idp::start("national").await;
    let regional = Idp::start("regional").await;
    national.user("sub-1", JANE_MPI, JANE_BORN);
    regional.user("r-77", JANE_MPI, JANE_BORN);
    let config = format!(
        "[credentials]\nmode = \"both\"\n{}{}",
        national.config("national", ""),
        regional.config("regional", "")
    );
    let w = start(&config).await;
    let jane = active_jane(&w).await;

    let token = national.sign(&national.claims("sub-1"));
    let (status, body) = external(&w, &token, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["patient_id"], jane.as_str());
    assert_eq!(body["method"], "external:national");
    let session = body["session"].as_str().unwrap().to_string();

    // The same token again: refused.
    let (status, body) = external(&w, &token, None).await;
    assert_eq!((status, code(&body)), (401, "token-replayed"), "{body}");

    // A new token of the linked credential signs in by the link.
    let (status, body) = external(&w, &national.sign(&national.claims("sub-1")), Some("national")).await;
    assert_eq!(status, 200, "{body}");

    // Another provider whose identifier matches Jane adds its credential to her account.
    let (status, body) = external(&w, &regional.sign(&regional.claims("r-77")), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["patient_id"], jane.as_str());
    // A credential linked is a new way in: the sessions opened before it are over.
    let (status, me) = as_member(&w, "GET", "/api/me", &session).await;
    assert_eq!((status, code(&me)), (401, "session-unknown"), "{me}");
    let session = body["session"].as_str().unwrap().to_string();

    let (status, me) = as_member(&w, "GET", "/api/me", &session).await;
    assert_eq!(status, 200, "{me}");
    let subjects: Vec<&str> = me["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["sub-1", "r-77"]);
    let (_, staff) = w
        .get(&format!("/api/members/{jane}/credentials"), "manager")
        .await;
    assert_eq!(staff["credentials"].as_array().unwrap().len(), 2, "{staff}");

    // Portal credentials still work in `both`.
    let (status, body) = sign_in(&w, "jane", PASSWORD).await;
    assert_eq!(status, 202, "{body}");

    let actions: Vec<String> = audit_actions(&w, &format!("member/{jane}"))
        .await
        .into_iter()
        .map(|(a, d)| format!("{a}:{}", d["result"].as_str().unwrap_or("")))
        .filter(|a| a.starts_with("signin.success") || a.starts_with("credential") || a.contains("replayed"))
        .collect();
    assert_eq!(
        actions,
        [
            "credential.link:",
            "signin.success:",
            "signin.failure:token-replayed",
            "signin.success:",
            "credential.link:",
            "signin.success:"
        ]
    );
}

#[tokio::test]
async fn forged_expired_wrong_audience_wrong_issuer_and_wrong_algorithm_tokens_are_refused() {
    let idp = Idp::start("national").await;
    idp.user("sub-1", JANE_MPI, JANE_BORN);
    let w = start(&format!(
        "[credentials]\nmode = \"external\"\n{}",
        idp.config("national", "")
    ))
    .await;
    active_jane(&w).await;
    let now = chrono::Utc::now().timestamp();

    let forged = idp.forge(&idp.claims("sub-1"));
    let (status, body) = external(&w, &forged, None).await;
    assert_eq!((status, code(&body)), (401, "token-signature"), "{body}");

    let mut expired = idp.claims("sub-1");
    expired["exp"] = json!(now - 120);
    let (status, body) = external(&w, &idp.sign(&expired), None).await;
    assert_eq!((status, code(&body)), (401, "token-expired"), "{body}");

    let mut audience = idp.claims("sub-1");
    audience["aud"] = json!("someone-else");
    let (status, body) = external(&w, &idp.sign(&audience), None).await;
    assert_eq!((status, code(&body)), (401, "token-audience"), "{body}");

    let mut issuer = idp.claims("sub-1");
    issuer["iss"] = json!("https://idp.elsewhere.test");
    let (status, body) = external(&w, &idp.sign(&issuer), None).await;
    assert_eq!((status, code(&body)), (401, "token-issuer"), "{body}");
    let (status, body) = external(&w, &idp.sign(&issuer), Some("national")).await;
    assert_eq!((status, code(&body)), (401, "token-issuer"), "{body}");

    // A shared-secret token is never accepted in place of a signed one.
    let hmac = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &idp.claims("sub-1"),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    let (status, body) = external(&w, &hmac, None).await;
    assert_eq!((status, code(&body)), (401, "token-algorithm"), "{body}");

    let (status, body) = external(&w, "not.a.token", Some("nobody")).await;
    assert_eq!((status, code(&body)), (401, "provider-unknown"), "{body}");

    // Within the allowed clock skew (30 s) an expired token still passes.
    let mut skewed = idp.claims("sub-1");
    skewed["exp"] = json!(now - 10);
    let (status, body) = external(&w, &idp.sign(&skewed), None).await;
    assert_eq!(status, 200, "{body}");

    let anonymous: Vec<String> = audit_actions(&w, "sign-in")
        .await
        .into_iter()
        .map(|(_, d)| d["result"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        anonymous,
        [
            "token-signature",
            "token-expired",
            "token-audience",
            "token-issuer",
            "token-issuer",
            "token-algorithm",
            "provider-unknown"
        ]
    );
}

#[tokio::test]
async fn opaque_tokens_go_through_introspection_and_userinfo_and_must_match_a_member() {
    let idp = Idp::start("national").await;
    let w = start(&format!(
        "[credentials]\nmode = \"both\"\n{}",
        idp.config("national", "")
    ))
    .await;
    let jane = active_jane(&w).await;
    let other = w.patient(2, "SMITH").await;
    idp.user("sub-1", JANE_MPI, JANE_BORN);
    idp.user("sub-born", JANE_MPI, "1990-01-01");
    idp.user("sub-unknown", "9999999999", JANE_BORN);
    idp.user("sub-other", "2000000002", JANE_BORN);

    let token = idp.opaque("sub-1", true);
    let (status, body) = external(&w, &token, Some("national")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["patient_id"], jane.as_str());
    let (status, body) = external(&w, &token, Some("national")).await;
    assert_eq!((status, code(&body)), (401, "token-replayed"), "{body}");

    let (status, body) = external(&w, &idp.opaque("sub-1", false), Some("national")).await;
    assert_eq!((status, code(&body)), (401, "token-inactive"), "{body}");
    let (status, body) = external(&w, "never-issued", Some("national")).await;
    assert_eq!((status, code(&body)), (401, "token-inactive"), "{body}");

    let (status, body) = external(&w, &idp.opaque("sub-born", true), None).await;
    assert_eq!((status, code(&body)), (401, "demographics-mismatch"), "{body}");
    let (status, body) = external(&w, &idp.opaque("sub-unknown", true), None).await;
    assert_eq!((status, code(&body)), (401, "no-match"), "{body}");
    let (status, body) = external(&w, &idp.opaque("sub-other", true), None).await;
    assert_eq!((status, code(&body)), (403, "not-a-member"), "{body}");
    let actions = audit_actions(&w, &format!("member/{other}")).await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].1["result"], "not-a-member");
}

#[tokio::test]
async fn the_deployment_mode_decides_which_credentials_are_accepted() {
    let idp = Idp::start("national").await;
    idp.user("sub-1", JANE_MPI, JANE_BORN);
    let w = start(&format!(
        "[credentials]\nmode = \"external\"\n{}",
        idp.config("national", "")
    ))
    .await;
    active_jane(&w).await;
    let (status, body) = sign_in(&w, "jane", PASSWORD).await;
    assert_eq!(
        (status, code(&body)),
        (403, "portal-credentials-disabled"),
        "{body}"
    );
    let (status, body) = external(&w, &idp.sign(&idp.claims("sub-1")), None).await;
    assert_eq!(status, 200, "{body}");
    drop(w);

    let portal_only = start(&format!(
        "[credentials]\nmode = \"portal\"\n{}",
        idp.config("national", "")
    ))
    .await;
    let (status, body) = external(&portal_only, &idp.sign(&idp.claims("sub-1")), None).await;
    assert_eq!(
        (status, code(&body)),
        (403, "external-credentials-disabled"),
        "{body}"
    );
}

#[tokio::test]
async fn with_external_credentials_only_the_first_sign_in_of_a_known_patient_creates_the_account() {
    let idp = Idp::start("national").await;
    let w = start(&format!(
        "[credentials]\nmode = \"external\"\n{}",
        idp.config("national", "")
    ))
    .await;
    let jane = w.jane().await;
    idp.user("sub-1", JANE_MPI, JANE_BORN);
    idp.user("sub-unknown", "9999999999", JANE_BORN);

    let (status, body) = external(&w, &idp.sign(&idp.claims("sub-1")), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["patient_id"], jane.as_str());
    let session = body["session"].as_str().unwrap().to_string();
    let (status, me) = as_member(&w, "GET", "/api/me", &session).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["member"]["status"], "active");
    assert_eq!(me["credentials"][0]["subject"], "sub-1");
    let (_, member) = w.get(&format!("/api/members/{jane}"), "manager").await;
    assert_eq!(member["enrollment"], "external-credential");
    assert_eq!(member["contact"]["email"], "jane.doe@example.org");
    assert_eq!(member["username"], Value::Null);

    // Once: the next sign-in finds the account by the link.
    let (status, body) = external(&w, &idp.sign(&idp.claims("sub-1")), None).await;
    assert_eq!(status, 200, "{body}");
    let actions: Vec<String> = audit_actions(&w, &format!("member/{jane}"))
        .await
        .into_iter()
        .map(|(a, _)| a)
        .filter(|a| a != "signin.success")
        .collect();
    assert_eq!(actions, ["member.enroll", "credential.link"]);
    // Nobody the MPI does not know gets an account.
    let (status, body) = external(&w, &idp.sign(&idp.claims("sub-unknown")), None).await;
    assert_eq!((status, code(&body)), (401, "no-match"), "{body}");
}

#[tokio::test]
async fn the_sweep_forgets_used_tokens_once_they_could_no_longer_pass() {
    let idp = Idp::start("national").await;
    let w = start(&format!(
        "[credentials]\nmode = \"both\"\n{}\n[[schedule]]\njob = \"token-replay-sweep\"\ncron = \"* * * * * *\"\n",
        idp.config("national", "clock_skew_secs = 0")
    ))
    .await;
    active_jane(&w).await;
    idp.user("sub-1", JANE_MPI, JANE_BORN);
    let mut claims = idp.claims("sub-1");
    claims["exp"] = json!(chrono::Utc::now().timestamp() + 2);
    let token = idp.sign(&claims);
    let (status, body) = external(&w, &token, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = external(&w, &token, None).await;
    assert_eq!((status, code(&body)), (401, "token-replayed"), "{body}");

    // Past its expiry the sweep drops it from the replay memory (journaled as a command) ...
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, journal) = w.call("GET", "/journal?limit=1000", Some("analyst"), None).await;
        let swept = journal["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message_type"] == "token replay sweep" && e.to_string().contains("forgot 1 "));
        if swept {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no sweep: {journal}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // ... and the token still cannot pass: it has expired.
    let (status, body) = external(&w, &token, None).await;
    assert_eq!((status, code(&body)), (401, "token-expired"), "{body}");
}
