//! Member accounts over HTTP against the real engine: point-of-care enrollment and activation,
//! printable instructions when a token cannot be sent, token resend / renew / regenerate with
//! every refusal, passphrases, status changes, password and username recovery, member search,
//! settings, and the audit trail. Notifications are checked where they arrive: the folders the
//! `file` adapter delivers them to, standing in for the email and SMS gateways.

use crate::common::code;
use crate::members_support::{nth, settle, start, start_with, token_in};
use serde_json::{Value, json};

#[tokio::test]
async fn point_of_care_enrollment_sends_the_token_and_activation_makes_the_member_active() {
    let w = start("").await;
    let jane = w.jane().await;

    // The synced patient is found, not yet enrolled.
    let (status, found) = w
        .get("/api/patients?name=doe%20jan&birth_date=1984-03-12", "desk")
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["patients"][0]["id"],
        jane.as_str(),
        "found by name and birth date: {found}"
    );
    let (status, found) = w.get("/api/patients?identifier=MRN00012345", "desk").await;
    assert_eq!(status, 200);
    assert_eq!(found["patients"][0]["id"], jane.as_str());
    assert_eq!(found["patients"][0]["enrolled"], false);

    let enrolled = w.enroll(&jane).await;
    assert_eq!(enrolled["sent"], true, "{enrolled}");
    assert!(
        enrolled.get("instructions").is_none(),
        "no instructions when sent: {enrolled}"
    );
    assert_eq!(enrolled["member"]["status"], "pending");
    assert_eq!(
        enrolled["notification"]["deliveries"].as_array().unwrap().len(),
        2
    );
    let email = nth(&w.email, 1).await;
    let text = nth(&w.sms, 1).await;
    let token = token_in(&email);
    assert_eq!(token.len(), 32);
    assert_eq!(token_in(&text), token, "the same token by email and text");
    assert!(email.contains("https://portal.test/activate?token="), "{email}");

    // Enrolled: Yes, pending; delivery state can be followed.
    let (_, found) = w.get("/api/patients?identifier=MRN00012345", "desk").await;
    assert_eq!(found["patients"][0]["enrolled"], true);
    assert_eq!(found["patients"][0]["membership_status"], "pending");
    let delivery = enrolled["notification"]["deliveries"][0].as_str().unwrap();
    let (status, state) = w.get(&format!("/api/notifications/{delivery}"), "desk").await;
    assert_eq!(status, 200, "{state}");
    assert!(
        state.get("payload").is_none(),
        "the content (with its token) is not shown"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, state) = w.get(&format!("/api/notifications/{delivery}"), "desk").await;
        if state["state"] == "delivered" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never delivered: {state}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (status, _) = w.get("/api/notifications/member-email-999-0", "desk").await;
    assert_eq!(status, 404);

    // Enrolling again is refused.
    let (status, again) = w
        .post(
            "/api/members",
            "desk",
            json!({ "patient_id": jane, "preference": "email", "email": "a@b.org" }),
        )
        .await;
    assert_eq!((status, code(&again)), (409, "already-enrolled"), "{again}");

    // Activation refusals, then activation.
    let (status, body) = w.activate("NOTATOKEN", "jane.doe").await;
    assert_eq!((status, code(&body)), (409, "token-unknown"), "{body}");
    let (status, body) = w.activate(&token, "x").await;
    assert_eq!((status, code(&body)), (422, "invalid"), "{body}");
    let (status, body) = w
        .post(
            "/api/activation",
            "portal",
            json!({ "token": token, "username": "jane.doe", "password": "short" }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "weak-password"), "{body}");
    let (status, body) = w.activate(&token, "jane.doe").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["member"]["status"], "active");
    let complete = nth(&w.email, 2).await;
    assert!(complete.contains("now active"), "{complete}");
    assert!(complete.contains("jane.doe"));
    nth(&w.sms, 2).await;

    let (status, body) = w.activate(&token, "jane.again").await;
    assert_eq!((status, code(&body)), (409, "token-used"), "{body}");

    // A second member cannot take the username.
    let other = w.patient(1, "SMITH").await;
    w.enroll(&other).await;
    let second = token_in(&nth(&w.email, 3).await);
    let (status, body) = w.activate(&second, "JANE.DOE").await;
    assert_eq!((status, code(&body)), (409, "username-taken"), "{body}");
    let (status, _) = w.activate(&second, "anna.smith").await;
    assert_eq!(status, 200);

    // The audit trail, by member and by actor.
    let (status, trail) = w.get(&format!("/api/audit?member={jane}"), "manager").await;
    assert_eq!(status, 200, "{trail}");
    let actions: Vec<&str> = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["member.enroll", "member.activate"], "{trail}");
    assert_eq!(trail["records"][0]["actor"], "client:desk");
    assert!(trail["records"][0]["at"].as_str().unwrap().ends_with('Z'));
    let (_, by_desk) = w.get("/api/audit?actor=client:desk", "config").await;
    assert_eq!(by_desk["records"].as_array().unwrap().len(), 2, "{by_desk}");

    // Secrets reach neither the journal nor the audit trail nor the member record.
    let (_, journal) = w.engine.get("/journal?limit=1000").await;
    let (_, audit) = w.get("/api/audit?limit=1000", "manager").await;
    let (_, member) = w.get(&format!("/api/members/{jane}"), "manager").await;
    for text in [journal.to_string(), audit.to_string(), member.to_string()] {
        assert!(!text.contains(&token), "a token leaked: {text}");
        assert!(!text.contains("correct horse battery"), "a password leaked");
        assert!(!text.contains("$argon2"), "a hash leaked");
    }
}

#[tokio::test]
async fn when_the_token_cannot_be_sent_the_answer_carries_printable_instructions() {
    let w = start_with("", false).await;
    let jane = w.jane().await;
    // Text only, but no SMS destination is configured.
    let (status, body) = w
        .post(
            "/api/members",
            "desk",
            json!({ "patient_id": jane, "mobile": "617 555 0101", "preference": "text", "locales": ["ar"] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sent"], false);
    let instructions = body["instructions"].as_str().expect("printable instructions");
    assert!(
        instructions.contains("تفعيل"),
        "in the member's language: {instructions}"
    );
    let token = token_in(instructions);
    assert_eq!(token.len(), 32);
    assert!(
        body["notification"]["failures"][0]
            .as_str()
            .unwrap()
            .contains("SMS"),
        "{body}"
    );
    // The enrollment stands: the member can activate with the printed token.
    let (status, found) = w
        .get("/api/members?status=pending&mrn=MRN00012345", "manager")
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["members"].as_array().unwrap().len(), 1, "{found}");
    let (status, body) = w.activate(&token, "printed").await;
    assert_eq!(status, 200, "{body}");

    // Email preference without an address: instructions too.
    let other = w.patient(2, "ROE").await;
    let (status, body) = w
        .post(
            "/api/members",
            "desk",
            json!({ "patient_id": other, "preference": "email" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sent"], false);
    assert!(
        body["instructions"]
            .as_str()
            .unwrap()
            .contains("Activate your patient portal account")
    );

    // Malformed input and unknown patients are refused, nothing enrolled.
    let (status, body) = w
        .post(
            "/api/members",
            "desk",
            json!({ "patient_id": "nope", "preference": "email", "email": "a@b.org" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let third = w.patient(3, "POE").await;
    let (status, body) = w
        .post(
            "/api/members",
            "desk",
            json!({ "patient_id": third, "preference": "email", "email": "not-an-address" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .post("/api/members", "desk", json!({ "patient_id": third }))
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, found) = w.get("/api/patients?identifier=MRNX00003", "desk").await;
    assert_eq!(found["patients"][0]["enrolled"], false);
}

#[tokio::test]
async fn tokens_are_resent_renewed_and_regenerated_within_their_rules() {
    // One "hour" is one second here, so a token can expire while the test waits.
    let w =
        start("pending_user_expiration_hours = 2\nmax_expiration_reset_hours = 48\nhour_seconds = 1").await;
    let jane = w.jane().await;
    w.enroll(&jane).await;
    let first = token_in(&nth(&w.email, 1).await);
    let base = format!("/api/members/{jane}/token");

    // Resend: the same token; editing contact details needs a reason.
    let (status, body) = w.post(&format!("{base}/resend"), "manager", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(token_in(&nth(&w.email, 2).await), first);
    let edit = json!({ "email": "new@example.org", "preference": "email", "locales": ["ar"] });
    let (status, body) = w
        .post(&format!("{base}/resend"), "manager", json!({ "contact": edit }))
        .await;
    assert_eq!((status, code(&body)), (422, "invalid"), "{body}");
    let (status, body) = w
        .post(
            &format!("{base}/resend"),
            "manager",
            json!({ "contact": edit, "reason": "patient moved to a new address" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let arabic = nth(&w.email, 3).await;
    assert_eq!(token_in(&arabic), first);
    assert!(arabic.contains("مرحباً"), "{arabic}");
    assert_eq!(body["member"]["contact"]["email"], "new@example.org");

    // Renew: bounds and reason; no notification.
    for (days, hours, reason, wanted) in [
        (0, 0, "r", "validity-out-of-bounds"),
        (2, 1, "r", "validity-out-of-bounds"),
        (1, 0, "", "invalid"),
    ] {
        let (status, body) = w
            .post(
                &format!("{base}/renew"),
                "manager",
                json!({ "days": days, "hours": hours, "reason": reason }),
            )
            .await;
        assert_eq!((status, code(&body)), (422, wanted), "{days}d {hours}h: {body}");
    }

    // Let it expire: activation says so; resend is refused; renew brings it back.
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    let (status, body) = w.activate(&first, "jane.doe").await;
    assert_eq!((status, code(&body)), (409, "token-expired"), "{body}");
    let (status, body) = w.post(&format!("{base}/resend"), "manager", json!({})).await;
    assert_eq!((status, code(&body)), (409, "token-expired"), "{body}");
    let (status, body) = w
        .post(
            &format!("{base}/renew"),
            "manager",
            json!({ "days": 1, "hours": 12, "reason": "lost the letter" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    settle().await;
    assert_eq!(w.email.received().len(), 3, "renewing notifies nobody");

    // Regenerate without notifying: the old token is superseded at once; nothing is sent.
    let (status, body) = w
        .post(
            &format!("{base}/regenerate"),
            "manager",
            json!({ "days": 0, "hours": 40, "reason": "never received", "notify": false }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["member"]["token"]["generation"], 2);
    settle().await;
    assert_eq!(w.email.received().len(), 3);
    let (status, body) = w.activate(&first, "jane.doe").await;
    assert_eq!((status, code(&body)), (409, "token-superseded"), "{body}");
    let (status, body) = w
        .post(
            &format!("{base}/regenerate"),
            "manager",
            json!({ "days": 0, "hours": 49, "reason": "r", "notify": true }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validity-out-of-bounds"), "{body}");
    let (status, body) = w
        .post(
            &format!("{base}/regenerate"),
            "manager",
            json!({ "hours": 48, "reason": "wrong address", "notify": true }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let third = token_in(&nth(&w.email, 4).await);
    assert_ne!(third, first);
    let (status, body) = w.activate(&third, "jane.doe").await;
    assert_eq!(status, 200, "{body}");

    // Tokens are for pending members only.
    for (action, body) in [
        ("resend", json!({})),
        ("renew", json!({ "hours": 5, "reason": "r" })),
        ("regenerate", json!({ "hours": 5, "reason": "r" })),
    ] {
        let (status, body) = w.post(&format!("{base}/{action}"), "manager", body).await;
        assert_eq!((status, code(&body)), (409, "not-pending"), "{action}: {body}");
    }
    let (status, _) = w
        .post(
            "/api/members/nobody-here/token/renew",
            "manager",
            json!({ "hours": 5, "reason": "r" }),
        )
        .await;
    assert_eq!(status, 404);

    let (_, trail) = w.get(&format!("/api/audit?member={jane}"), "manager").await;
    let actions: Vec<&str> = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "member.enroll",
            "token.resend",
            "member.contact.edit",
            "token.resend",
            "token.renew",
            "token.regenerate",
            "token.regenerate",
            "member.activate"
        ]
    );
    assert_eq!(trail["records"][2]["reason"], "patient moved to a new address");
}

#[tokio::test]
async fn a_required_passphrase_is_typed_or_generated_and_checked_at_activation() {
    let w = start("passphrase_required = true\nsend_passphrase = false").await;
    let jane = w.jane().await;
    let enroll = |extra: Value| {
        let mut body = json!({ "patient_id": jane, "email": "j@example.org", "preference": "email" });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let (status, body) = w.post("/api/members", "desk", enroll(json!({}))).await;
    assert_eq!((status, code(&body)), (422, "passphrase-required"), "{body}");
    let (status, body) = w
        .post(
            "/api/members",
            "desk",
            enroll(json!({ "passphrase": "blue-river", "passphrase_confirm": "blue-rivers" })),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "passphrase-mismatch"), "{body}");
    let (status, body) = w
        .post(
            "/api/members",
            "desk",
            enroll(json!({ "generate_passphrase": true })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let passphrase = body["generated_passphrase"].as_str().unwrap().to_string();
    assert_eq!(passphrase.len(), 19);
    let message = nth(&w.email, 1).await;
    assert!(
        !message.contains(&passphrase),
        "the site does not send passphrases"
    );
    let token = token_in(&message);

    let (status, body) = w.activate(&token, "jane.doe").await;
    assert_eq!((status, code(&body)), (422, "passphrase-required"), "{body}");
    let attempt = |p: &str| json!({ "token": token, "passphrase": p, "username": "jane.doe", "password": "a long password" });
    let (status, body) = w
        .post("/api/activation", "portal", attempt("WRONG-WRONG-WRONG"))
        .await;
    assert_eq!((status, code(&body)), (409, "passphrase-wrong"), "{body}");
    let (status, body) = w.post("/api/activation", "portal", attempt(&passphrase)).await;
    assert_eq!(status, 200, "{body}");

    // Typed passphrase, sent with the token when the site sends passphrases: see the settings test.
    let other = w.patient(4, "TYPED").await;
    let (status, body) = w
        .post(
            "/api/members",
            "desk",
            json!({ "patient_id": other, "email": "t@example.org", "preference": "email", "passphrase": "my secret phrase", "passphrase_confirm": "my secret phrase" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("generated_passphrase").is_none());
    let (_, member) = w.get(&format!("/api/members/{other}"), "manager").await;
    assert_eq!(member["passphrase_set"], true);
    assert!(!member.to_string().contains("my secret phrase"));
}

#[tokio::test]
async fn members_are_deactivated_reactivated_and_recover_passwords_and_usernames() {
    let w = start("").await;
    let jane = w.jane().await;
    w.post(
        "/api/members",
        "desk",
        json!({ "patient_id": jane, "email": "jane@example.org", "preference": "email" }),
    )
    .await;
    let token = token_in(&nth(&w.email, 1).await);
    let path = |a: &str| format!("/api/members/{jane}/{a}");

    let (status, body) = w
        .post(&path("deactivate"), "manager", json!({ "reason": "asked" }))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "not-active"),
        "a pending member is not deactivated: {body}"
    );
    let (status, body) = w.post(&path("password-reset"), "manager", json!({})).await;
    assert_eq!((status, code(&body)), (409, "not-active"), "{body}");
    w.activate(&token, "jane.doe").await;
    nth(&w.email, 2).await;

    let (status, body) = w
        .post(&path("deactivate"), "manager", json!({ "reason": " " }))
        .await;
    assert_eq!((status, code(&body)), (422, "invalid"), "{body}");
    let (status, body) = w
        .post(&path("deactivate"), "manager", json!({ "reason": "moved away" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "inactive");
    let (status, _) = w
        .post(&path("deactivate"), "manager", json!({ "reason": "again" }))
        .await;
    assert_eq!(status, 409);
    let (status, body) = w
        .post(&path("reactivate"), "manager", json!({ "reason": "came back" }))
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("active")), "{body}");
    let (status, _) = w
        .post(&path("reactivate"), "manager", json!({ "reason": "again" }))
        .await;
    assert_eq!(status, 409);
    let (_, body) = w
        .post(
            &path("deactivate"),
            "manager",
            json!({ "reason": "under 13", "minor": true }),
        )
        .await;
    assert_eq!(body["status"], "inactive/minor");
    let (status, found) = w.get("/api/members?status=activated&name=doe", "manager").await;
    assert_eq!(status, 200);
    assert_eq!(found["members"][0]["status"], "inactive/minor", "{found}");
    let (status, found) = w.get("/api/members?status=pending&name=doe", "manager").await;
    assert_eq!((status, found["members"].as_array().unwrap().len()), (200, 0));
    w.post(&path("reactivate"), "manager", json!({ "reason": "turned 18" }))
        .await;

    // Staff password reset: a link by email; the member sets a new password with it, once.
    let (status, body) = w
        .post(
            &path("password-reset"),
            "manager",
            json!({ "reason": "locked out" }),
        )
        .await;
    assert_eq!((status, body["sent"].as_bool()), (200, Some(true)), "{body}");
    let link = nth(&w.email, 3).await;
    assert!(
        link.contains("https://portal.test/reset-password?token="),
        "{link}"
    );
    let reset = token_in(&link);
    let (status, body) = w
        .post(
            "/api/password/reset",
            "portal",
            json!({ "token": reset, "password": "tiny" }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "weak-password"));
    let (status, body) = w
        .post(
            "/api/password/reset",
            "portal",
            json!({ "token": reset, "password": "a brand new password" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w
        .post(
            "/api/password/reset",
            "portal",
            json!({ "token": reset, "password": "a brand new password" }),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "token-used"));
    let (status, body) = w
        .post(
            "/api/password/reset",
            "portal",
            json!({ "token": token, "password": "a brand new password" }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "token-unknown"),
        "an activation token is no reset token"
    );

    // Forgotten password: the same answer for a stranger, a link for the member; the newer link
    // supersedes the older one.
    let (status, _) = w
        .post(
            "/api/password/forgot",
            "portal",
            json!({ "username": "nobody.here" }),
        )
        .await;
    assert_eq!(status, 202);
    settle().await;
    assert_eq!(w.email.received().len(), 3);
    let (status, _) = w
        .post(
            "/api/password/forgot",
            "portal",
            json!({ "username": "Jane.Doe" }),
        )
        .await;
    assert_eq!(status, 202);
    let first = token_in(&nth(&w.email, 4).await);
    w.post(
        "/api/password/forgot",
        "portal",
        json!({ "username": "jane.doe" }),
    )
    .await;
    let second = token_in(&nth(&w.email, 5).await);
    let (status, body) = w
        .post(
            "/api/password/reset",
            "portal",
            json!({ "token": first, "password": "another password" }),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "token-superseded"));
    let (status, _) = w
        .post(
            "/api/password/reset",
            "portal",
            json!({ "token": second, "password": "another password" }),
        )
        .await;
    assert_eq!(status, 200);

    // Forgotten username: sent to the email on file when email and birth date match.
    let (status, _) = w
        .post(
            "/api/username/forgot",
            "portal",
            json!({ "email": "jane@example.org", "birth_date": "1999-01-01" }),
        )
        .await;
    assert_eq!(status, 202);
    settle().await;
    assert_eq!(w.email.received().len(), 5);
    let (status, _) = w
        .post(
            "/api/username/forgot",
            "portal",
            json!({ "email": "JANE@example.org", "birth_date": "1984-03-12" }),
        )
        .await;
    assert_eq!(status, 202);
    let message = nth(&w.email, 6).await;
    assert!(message.contains("username is jane.doe"), "{message}");

    let (_, trail) = w.get(&format!("/api/audit?member={jane}"), "manager").await;
    let records = trail["records"].as_array().unwrap();
    let deactivation = records
        .iter()
        .find(|r| r["action"] == "member.deactivate")
        .unwrap();
    assert_eq!(deactivation["reason"], "moved away");
    assert_eq!(deactivation["actor"], "client:manager");
    assert_eq!(deactivation["target"], format!("member/{jane}"));
}

#[tokio::test]
async fn member_search_finds_by_each_field_and_filters_by_status() {
    let w = start("").await;
    let jane = w.jane().await;
    let anna = w.patient(5, "DOEBLER").await;
    let _unenrolled = w.patient(6, "DOEMAN").await;
    w.enroll(&jane).await;
    w.enroll(&anna).await;
    let token = token_in(&nth(&w.email, 1).await);
    w.activate(&token, "jane.doe").await;

    let ids = |body: &Value| -> Vec<String> {
        let mut ids: Vec<String> = body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["patient_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut both = vec![jane.clone(), anna.clone()];
    both.sort();
    for (query, wanted) in [
        ("name=doe", both.clone()),
        ("name=DOE%20JANE", vec![jane.clone()]),
        ("name=doe&status=pending", vec![anna.clone()]),
        ("name=doe&status=activated", vec![jane.clone()]),
        ("birth_date=1984-03-12", both.clone()),
        ("mrn=MRN00012345", vec![jane.clone()]),
        ("mrn=mrnx00005", vec![anna.clone()]),
        ("email=P5@example.org", vec![anna.clone()]),
        ("email=member@example.org&status=pending", vec![anna.clone()]),
        ("phone=6175559876", vec![jane.clone()]),
        ("phone=%2B1%20(617)%20555-0000", both.clone()),
        ("name=nobody", vec![]),
    ] {
        let (status, body) = w.get(&format!("/api/members?{query}"), "manager").await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(ids(&body), wanted, "{query}");
    }
    for bad in [
        "",
        "status=pending",
        "birth_date=12/03/1984",
        "name=doe&status=gone",
    ] {
        let (status, body) = w.get(&format!("/api/members?{bad}"), "manager").await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, body) = w.get("/api/members/unknown", "manager").await;
    assert_eq!((status, code(&body)), (404, "not-found"));
}

#[tokio::test]
async fn a_configuration_manager_changes_the_member_settings_with_a_reason() {
    let w = start("").await;
    let (status, settings) = w.get("/api/settings/members", "config").await;
    assert_eq!(status, 200);
    assert_eq!(
        settings,
        json!({ "pending_user_expiration_hours": 72, "max_expiration_reset_hours": 168, "passphrase_required": false })
    );
    let wanted = json!({ "pending_user_expiration_hours": 24, "max_expiration_reset_hours": 36, "passphrase_required": false });
    let (status, body) = w
        .call(
            "PUT",
            "/api/settings/members",
            Some("config"),
            Some(wanted.clone()),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (422, "invalid"),
        "a reason is required: {body}"
    );
    let mut with_reason = wanted.clone();
    with_reason["reason"] = json!("site policy");
    let (status, body) = w
        .call("PUT", "/api/settings/members", Some("config"), Some(with_reason))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = w
        .call("PUT", "/api/settings/members", Some("manager"), Some(wanted))
        .await;
    assert_eq!(status, 403);

    // New tokens follow the new settings.
    let jane = w.jane().await;
    let enrolled = w.enroll(&jane).await;
    let issued =
        chrono::DateTime::parse_from_rfc3339(enrolled["member"]["token"]["issued_at"].as_str().unwrap())
            .unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(enrolled["member"]["token"]["expires_at"].as_str().unwrap())
            .unwrap();
    assert_eq!((expires - issued).num_hours(), 24);
    let (status, body) = w
        .post(
            &format!("/api/members/{jane}/token/renew"),
            "manager",
            json!({ "days": 1, "hours": 13, "reason": "r" }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validity-out-of-bounds"), "{body}");
    let (_, trail) = w.get("/api/audit?target=settings/members", "config").await;
    assert_eq!(trail["records"][0]["reason"], "site policy");
    assert_eq!(
        trail["records"][0]["details"]["after"]["max_expiration_reset_hours"],
        36
    );
}

#[tokio::test]
async fn a_member_is_found_under_the_name_a_later_feed_gives_the_patient() {
    let w = start("").await;
    let jane = w.jane().await;
    w.enroll(&jane).await;
    let renamed = crate::members_support::variant(
        "ucr/adt_a28_new_patient.hl7",
        "UCR-RENAME-1",
        &[
            ("ADT^A28^ADT_A05", "ADT^A08^ADT_A01"),
            ("|A28|", "|A08|"),
            ("DOE^JANE", "HARTWELL^JANE"),
        ],
    );
    w.feed(&renamed).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, found) = w.get("/api/members?name=hartwell", "manager").await;
        assert_eq!(status, 200);
        if found["members"].as_array().unwrap().len() == 1 {
            assert_eq!(found["members"][0]["patient_id"], jane.as_str());
            assert_eq!(found["members"][0]["name"], "HARTWELL, JANE QUINN");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never re-indexed: {found}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, found) = w.get("/api/members?name=doe", "manager").await;
    assert_eq!(
        found["members"].as_array().unwrap().len(),
        0,
        "the old name is gone: {found}"
    );
}
