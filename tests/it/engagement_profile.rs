//! Update Profile over the wire: the member's change (through the portal) is stored at once,
//! reaches the UCR as an A31 with the new address, a PIX consumer likewise, and the member's
//! email (the confirmation, through a real SMTP server); the UCR's echo of the same change back
//! over MLLP sends nothing again; every refusal says why. The change is the member's own: the
//! portal's key alone changes nothing, a new email or mobile needs a recent sign-in, tells the
//! old address too and ends the member's other sessions (issue #12).

use std::time::Duration;

use crate::engagement_support::{field, settle, start, start_with};
use serde_json::json;

#[tokio::test]
async fn a_profile_update_reaches_the_ucr_and_pix_and_the_ucr_echo_sends_nothing_again() {
    let w = start().await;
    let jane = w.jane().await;
    // The A28 itself went to the PIX consumer (patient-changed), not to the UCR (profile only).
    w.pix.wait_for(1).await;
    w.active_member(&jane).await;
    let session = w.sign_in("jane.doe").await;
    let emails_before = w.wait_emails(2).await.len();
    settle().await;
    assert_eq!(w.ucr.received().len(), 0, "the UCR is not sent its own feed");
    assert_eq!(w.pix.received().len(), 1);

    let (status, body) = w
        .put_profile(
            &jane,
            &session,
            json!({
                "address": { "line": ["9 Harbour Road", "Flat 2"], "city": "Cambridge", "state": "MA",
                             "postal_code": "02139", "country": "USA" },
                "email": "jane.new@example.org",
                "preferred_language": "ar",
                "reason": "moved house",
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let changed: Vec<&str> = body["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(changed, ["address", "email", "preferred_language"], "{body}");
    let pushed: Vec<&str> = body["pushed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(pushed.iter().any(|d| d.starts_with("ucr-")), "{body}");
    assert!(pushed.iter().any(|d| d.starts_with("pix-")), "{body}");
    assert_eq!(body["member"]["contact"]["email"], "jane.new@example.org");
    assert_eq!(body["member"]["contact"]["locales"][0], "ar");

    // Visible at once through FHIR.
    let (status, patient) = w.engine.get(&format!("/fhir/Patient/{jane}")).await;
    assert_eq!(status, 200);
    assert_eq!(patient["address"][0]["line"][0], "9 Harbour Road", "{patient}");
    assert_eq!(patient["communication"][0]["language"]["coding"][0]["code"], "ar");
    assert!(
        patient["telecom"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["value"] == "jane.new@example.org")
    );

    // The UCR gets an A31 with the new address; so does the PIX consumer.
    let to_ucr = w.ucr.wait_for(1).await[0].clone();
    assert_eq!(field(&to_ucr, "MSH", 8), "ADT^A31^ADT_A05", "{to_ucr}");
    let address = field(&to_ucr, "PID", 11);
    assert!(
        address.starts_with("9 Harbour Road^Flat 2^Cambridge^MA^02139^USA^H"),
        "{address}"
    );
    assert!(
        field(&to_ucr, "PID", 13).contains("jane.new@example.org"),
        "{to_ucr}"
    );
    assert_eq!(field(&to_ucr, "PID", 15), "ar^^ISO639");
    let to_pix = w.pix.wait_for(2).await[1].clone();
    assert!(
        field(&to_pix, "PID", 11).starts_with("9 Harbour Road"),
        "{to_pix}"
    );

    // The member is told, at the new address, in Arabic; and by text (preference both). The
    // old address is told too: a stranger who took the account would be seen.
    let emails = w.wait_emails(emails_before + 2).await;
    let to_new = emails[emails_before..]
        .iter()
        .find(|(to, _)| to == &vec!["jane.new@example.org".to_string()])
        .unwrap_or_else(|| panic!("nothing to the new address: {emails:?}"));
    assert!(
        to_new.1.contains("Subject: =?utf-8?b?"),
        "the Arabic subject: {}",
        to_new.1
    );
    assert!(
        emails[emails_before..]
            .iter()
            .any(|(to, _)| to == &vec!["jane.doe@example.org".to_string()]),
        "nothing to the old address: {emails:?}"
    );
    assert_eq!(
        body["old_contact_notification"]["deliveries"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{body}"
    );

    // The audit trail has it, with the reason.
    let (status, trail) = w.get(&format!("/api/audit?member={jane}"), "manager").await;
    assert_eq!(status, 200);
    let record = trail["records"]
        .as_array()
        .or(trail.as_array())
        .unwrap()
        .iter()
        .find(|r| r["action"] == "member.profile.update")
        .cloned()
        .unwrap_or_else(|| panic!("no profile audit record: {trail}"));
    assert_eq!(record["actor"], "client:portal");
    assert_eq!(record["reason"], "moved house");

    // The UCR echoes the change back in its own feed: the record reads the same, nobody is
    // sent anything again.
    let echo = to_ucr
        .replacen(
            "|TRIBUTARY|PORTAL|PIXCONSUMER|PIXCONSUMER|",
            "|UCR|UCRHIE|TRIBUTARY|PORTAL|",
            1,
        )
        .replace("ADT^A31^ADT_A05", "ADT^A08^ADT_A01")
        .replace(&field(&to_ucr, "MSH", 9), "UCRECHO0001")
        .replace("EVN|A31", "EVN|A08");
    w.feed(echo.as_bytes()).await;
    let (_, after_echo) = w.engine.get(&format!("/fhir/Patient/{jane}")).await;
    assert_eq!(
        after_echo["address"], patient["address"],
        "the echo changed the address"
    );
    assert_eq!(
        after_echo["telecom"], patient["telecom"],
        "the echo changed the telecom"
    );
    assert_eq!(after_echo["communication"], patient["communication"]);
    settle().await;
    assert_eq!(
        w.pix.received().len(),
        2,
        "the echo went to the PIX consumer again"
    );
    assert_eq!(w.ucr.received().len(), 1, "the echo went back to the UCR");
    let (_, journal) = w.engine.get("/journal?limit=1000").await;
    let entry = journal
        .as_array()
        .or(journal["entries"].as_array())
        .unwrap()
        .iter()
        .find(|e| e["control_id"] == "UCRECHO0001")
        .cloned()
        .expect("the echo is journaled");
    assert_eq!(entry["status"], "applied");
    assert!(
        entry["deliveries"].as_array().is_none_or(|d| d.is_empty()),
        "the echo queued deliveries: {entry}"
    );

    // The same update again (the session that made the change goes on) changes nothing and
    // sends nothing.
    let (status, again) = w
        .put_profile(&jane, &session, json!({ "email": "jane.new@example.org" }))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["changed"], json!([]));
    assert_eq!(again["pushed"], json!([]));
    settle().await;
    assert_eq!(w.pix.received().len(), 2);
    assert_eq!(w.ucr.received().len(), 1);
}

#[tokio::test]
async fn profile_update_refusals_say_why() {
    let w = start().await;
    let jane = w.jane().await;
    let path = format!("/api/members/{jane}/profile");
    let change = json!({ "mobile": "+1 617 5550101" });

    let (status, body) = w.call("PUT", &path, None, Some(change.clone())).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "{body}"
    );
    for client in ["desk", "manager", "crm", "trak", "nobody"] {
        let (status, body) = w.put(&path, client, change.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{client}: {body}"
        );
    }
    w.active_member(&jane).await;
    // The portal's key alone changes nobody's profile: the member's session is needed.
    let (status, body) = w.put(&path, "portal", change.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("X-Member-Session"),
        "{body}"
    );
    let (status, body) = w
        .call_as(
            "PUT",
            &path,
            Some("portal"),
            Some("not-a-session"),
            Some(change.clone()),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("session-unknown")),
        "{body}"
    );
    let session = w.sign_in("jane.doe").await;

    let (status, body) = w
        .put_profile(&jane, &session, json!({ "favourite_colour": "blue" }))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad-request")),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("favourite_colour"),
        "{body}"
    );
    let (status, body) = w.put_profile(&jane, &session, json!({})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .put_profile(&jane, &session, json!({ "email": "not-an-address" }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not an email address"),
        "{body}"
    );
    let (status, body) = w
        .put_profile(&jane, &session, json!({ "preferred_language": "english!" }))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .put_profile(&jane, &session, json!({ "address": { "line": [] } }))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .put_profile(
            &jane,
            &session,
            json!({ "mobile": "+1 617 5550101", "proxy_id": "someone-else" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("proxy-not-permitted")),
        "{body}"
    );
    // Another member's profile: Jane holds no proxy right to it (whether or not it exists).
    let (status, body) = w.put_profile("no-such-member", &session, change.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("proxy-not-permitted")),
        "{body}"
    );

    // A deactivation ends the member's sessions: the next change is refused at the door.
    let (status, body) = w
        .post(
            &format!("/api/members/{jane}/deactivate"),
            "manager",
            json!({ "reason": "moved away" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.put_profile(&jane, &session, change).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("session-unknown")),
        "{body}"
    );
}

#[tokio::test]
async fn a_new_mobile_needs_a_recent_sign_in_tells_the_old_number_and_ends_the_other_sessions() {
    let w = start_with("[credentials]\nreauth_seconds = 1\n").await;
    let jane = w.jane().await;
    w.active_member(&jane).await;
    let old = w.sign_in("jane.doe").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    // The session is older than the window: the address may change, the mobile may not.
    let (status, body) = w
        .put_profile(&jane, &old, json!({ "mobile": "+1 617 5550199" }))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("reauthentication-required")),
        "{body}"
    );
    let (status, body) = w
        .put_profile(&jane, &old, json!({ "address": { "line": ["1 Quay Street"] } }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], json!(["address"]));

    // Signed in again: the change goes through; the old number is told as well as the new.
    let fresh = w.sign_in("jane.doe").await;
    let texts_before = w.texts().len();
    let (status, body) = w
        .put_profile(&jane, &fresh, json!({ "mobile": "+1 617 5550199" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], json!(["mobile"]));
    let texts = w.wait_texts(texts_before + 2).await;
    let told = texts[texts_before..]
        .iter()
        .filter(|t| t.contains("profile was updated"))
        .count();
    assert_eq!(told, 2, "{texts:?}");
    for (which, number) in [
        ("old_contact_notification", "+1 617 5559876"),
        ("notification", "+1 617 5550199"),
    ] {
        let id = body[which]["deliveries"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap();
        let (status, n) = w.get(&format!("/api/notifications/{id}"), "manager").await;
        assert_eq!((status, n["to"].as_str()), (200, Some(number)), "{which}: {n}");
    }

    // Every other session of Jane's is over; the one that made the change goes on.
    let url = format!("{}/api/me", w.engine.http);
    for (session, expected) in [(&old, 401), (&fresh, 200)] {
        let response = w.http.get(&url).bearer_auth(session).send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            expected,
            "the older session ends, the one that made the change goes on"
        );
    }
}
