//! Update Profile over the wire: the member's change (through the portal) is stored at once,
//! reaches the UCR as an A31 with the new address, a PIX consumer likewise, and the member's
//! email (the confirmation, through a real SMTP server); the UCR's echo of the same change back
//! over MLLP sends nothing again; every refusal says why.

mod common;
mod engagement_support;

use engagement_support::{field, settle, start};
use serde_json::json;

#[tokio::test]
async fn a_profile_update_reaches_the_ucr_and_pix_and_the_ucr_echo_sends_nothing_again() {
    let w = start().await;
    let jane = w.jane().await;
    // The A28 itself went to the PIX consumer (patient-changed), not to the UCR (profile only).
    w.pix.wait_for(1).await;
    w.active_member(&jane).await;
    let emails_before = w.wait_emails(2).await.len();
    settle().await;
    assert_eq!(w.ucr.received().len(), 0, "the UCR is not sent its own feed");
    assert_eq!(w.pix.received().len(), 1);

    let (status, body) = w
        .put(
            &format!("/api/members/{jane}/profile"),
            "portal",
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

    // The member is told, at the new address, in Arabic; and by text (preference both).
    let emails = w.wait_emails(emails_before + 1).await;
    let (to, text) = emails.last().unwrap();
    assert_eq!(to, &vec!["jane.new@example.org".to_string()]);
    assert!(text.contains("Subject: =?utf-8?b?"), "the Arabic subject: {text}");

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

    // The same update again changes nothing and sends nothing.
    let (status, again) = w
        .put(
            &format!("/api/members/{jane}/profile"),
            "portal",
            json!({ "email": "jane.new@example.org" }),
        )
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
    // Not a member yet.
    let (status, body) = w.put(&path, "portal", change.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not-found")),
        "{body}"
    );
    w.active_member(&jane).await;

    let (status, body) = w
        .put(&path, "portal", json!({ "favourite_colour": "blue" }))
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
    let (status, body) = w.put(&path, "portal", json!({})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w.put(&path, "portal", json!({ "email": "not-an-address" })).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not an email address"),
        "{body}"
    );
    let (status, body) = w
        .put(&path, "portal", json!({ "preferred_language": "english!" }))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w.put(&path, "portal", json!({ "address": { "line": [] } })).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .put(
            &path,
            "portal",
            json!({ "mobile": "+1 617 5550101", "proxy_id": "someone-else" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("proxy-not-permitted")),
        "{body}"
    );
    let (status, body) = w
        .put("/api/members/no-such-member/profile", "portal", change.clone())
        .await;
    assert_eq!(status, 404, "{body}");

    // A deactivated member's profile is not updated.
    let (status, body) = w
        .post(
            &format!("/api/members/{jane}/deactivate"),
            "manager",
            json!({ "reason": "moved away" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.put(&path, "portal", change).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("member-not-active")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("inactive"), "{body}");
}
