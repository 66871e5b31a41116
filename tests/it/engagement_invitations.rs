//! Invitation to Enroll over the wire: a system with the `invite` scope invites a person by
//! email (through a real SMTP server) or text, in their language; a member is sent nothing; the
//! same invitation to the same address inside the window is suppressed; each has a status.

use std::time::{Duration, Instant};

use crate::engagement_support::{settle, start};
use serde_json::json;

#[tokio::test]
async fn invitations_are_sent_suppressed_for_members_and_repeats_and_followed() {
    let w = start().await;
    let invite = json!({
        "name": "Omar Haddad",
        "email": "omar@example.org",
        "preferred_language": "en",
        "content_key": "lab-results",
    });
    let (status, sent) = w.post("/api/invitations", "crm", invite.clone()).await;
    assert_eq!(status, 201, "{sent}");
    // Queued, or already sent when the outbox was quicker than the answer.
    assert!(sent["status"] == "queued" || sent["status"] == "sent", "{sent}");
    let id = sent["id"].as_str().unwrap().to_string();
    let emails = w.wait_emails(1).await;
    assert_eq!(emails[0].0, vec!["omar@example.org".to_string()]);
    assert!(
        emails[0].1.contains("Subject: Your lab results are ready"),
        "{}",
        emails[0].1
    );
    assert!(emails[0].1.contains("Omar Haddad"), "{}", emails[0].1);
    // Sent, once the outbox delivered it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, state) = w.get(&format!("/api/invitations/{id}"), "crm").await;
        assert_eq!(status, 200, "{state}");
        if state["status"] == "sent" {
            assert_eq!(state["deliveries"][0]["state"], "delivered");
            break;
        }
        assert!(Instant::now() < deadline, "never sent: {state}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The same invitation again inside the window: suppressed, nothing sent.
    let (status, again) = w.post("/api/invitations", "crm", invite.clone()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["status"], "suppressed");
    assert_eq!(again["duplicate_of"], id.as_str());
    // Another content is another invitation.
    let (status, other) = w
        .post(
            "/api/invitations",
            "crm",
            json!({ "name": "Omar Haddad", "email": "OMAR@example.org", "content_key": "waiting-list" }),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    assert!(
        other["status"] == "queued" || other["status"] == "sent",
        "{other}"
    );
    w.wait_emails(2).await;

    // In Arabic, by text.
    let (status, arabic) = w
        .post(
            "/api/invitations",
            "crm",
            json!({ "name": "ليلى", "mobile": "+971 50 123 4567", "preferred_language": "ar", "content_key": "waiting-list" }),
        )
        .await;
    assert_eq!(status, 201, "{arabic}");
    assert!(
        arabic["status"] == "queued" || arabic["status"] == "sent",
        "{arabic}"
    );
    let texts = w.wait_texts(1).await;
    assert!(texts[0].contains("قائمة الانتظار"), "{texts:?}");
    assert!(texts[0].contains("https://portal.test"), "{texts:?}");

    // A member is sent nothing.
    let jane = w.jane().await;
    w.active_member(&jane).await;
    let emails_now = w.wait_emails(4).await.len();
    for ask in [
        json!({ "name": "Jane Doe", "email": "Jane.Doe@example.org", "content_key": "lab-results" }),
        json!({ "name": "Jane Doe", "mobile": "(617) 555-9876", "content_key": "lab-results" }),
        json!({ "name": "Jane Doe", "email": "elsewhere@example.org", "content_key": "lab-results",
                "identifier": { "value": "MRN00012345" } }),
    ] {
        let (status, member) = w.post("/api/invitations", "crm", ask.clone()).await;
        assert_eq!(status, 200, "{member}");
        assert_eq!(member["status"], "already-member", "{ask}: {member}");
        assert_eq!(member["member"], jane.as_str());
        assert!(member["message"].as_str().unwrap().contains("already a member"));
        let (_, state) = w
            .get(
                &format!("/api/invitations/{}", member["id"].as_str().unwrap()),
                "crm",
            )
            .await;
        assert_eq!(state["status"], "already-member");
    }
    settle().await;
    assert_eq!(w.emails().len(), emails_now, "nothing was sent to the member");
}

#[tokio::test]
async fn invitation_refusals_say_why() {
    let w = start().await;
    let good = json!({ "name": "A Person", "email": "a@example.org", "content_key": "lab-results" });
    let (status, body) = w.call("POST", "/api/invitations", None, Some(good.clone())).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")));
    for client in ["portal", "trak", "desk", "manager", "enroller", "nobody"] {
        let (status, body) = w.post("/api/invitations", client, good.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{client}: {body}"
        );
        let (status, _) = w.get("/api/invitations/inv-1", client).await;
        assert_eq!(status, 403, "{client}");
    }
    let (status, body) = w
        .post(
            "/api/invitations",
            "crm",
            json!({ "name": "A", "email": "a@example.org" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad-request")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("content_key"), "{body}");
    let (status, body) = w
        .post(
            "/api/invitations",
            "crm",
            json!({ "name": "A", "email": "a@example.org", "content_key": "free-pizza" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("unknown-content-key")),
        "{body}"
    );
    let (status, body) = w
        .post(
            "/api/invitations",
            "crm",
            json!({ "name": "A", "content_key": "lab-results" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .post(
            "/api/invitations",
            "crm",
            json!({ "name": "A", "email": "nope", "content_key": "lab-results" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .post(
            "/api/invitations",
            "crm",
            json!({ "name": " ", "email": "a@example.org", "content_key": "lab-results" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = w.get("/api/invitations/inv-999999", "crm").await;
    assert_eq!(status, 404);
}
