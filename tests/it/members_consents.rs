//! Consents over HTTP against the real engine (issue 17, release notes 6.2): a consent document
//! posted as a FHIR Consent by the external system; the member reads it and, once the site lets
//! them, changes an answer, which reaches the external system (a real HTTP receiver) and the
//! audit trail; a granted proxy reads the principal's consents and changes them only when the
//! proxy-edit switch is on; each switch is checked on and off.

use serde_json::{Value, json};

use crate::common::code;
use crate::common::peers::HttpReceiver;
use crate::credentials_support::{active_jane, as_member, session_of};
use crate::members_support::{World, start};

async fn put_as(w: &World, path: &str, session: &str, body: Value) -> (u16, Value) {
    let response = w
        .http
        .put(format!("{}{path}", w.engine.http))
        .bearer_auth(session)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn set_switches(w: &World, view: bool, edit: bool, proxy_edit: bool) {
    let body = json!({ "patient_view": view, "patient_edit": edit, "proxy_edit": proxy_edit, "reason": "Consent policy" });
    let (status, saved) = w
        .call("PUT", "/api/settings/consents", Some("config"), Some(body))
        .await;
    assert_eq!(status, 200, "{saved}");
}

#[tokio::test]
async fn a_member_changes_a_consent_answer_that_goes_back_and_the_switches_govern_who_may() {
    let consent_system = HttpReceiver::start().await;
    let w = start(&format!(
        "[credentials]\nmode = \"portal\"\ntwo_factor = false\n\n\
         [consents]\ndestinations = [\"consent-system\"]\n\n\
         [[destinations]]\nname = \"consent-system\"\nkind = \"http\"\n\
         [destinations.settings]\nurl = \"{}\"\n",
        consent_system.url("/fhir/Consent")
    ))
    .await;
    let jane = active_jane(&w).await;
    let consent = json!({
        "resourceType": "Consent", "status": "active",
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research" }] },
        "category": [{ "text": "Research participation" }],
        "patient": { "reference": format!("Patient/{jane}") },
        "dateTime": "2025-09-01T10:00:00Z",
        "organization": [{ "display": "Riverside Research Office" }],
        "provision": { "type": "permit", "provision": [
            { "type": "permit", "code": [{ "text": "Share my record with approved researchers" }] },
            { "type": "deny", "code": [{ "text": "Contact me about clinical trials" }] }
        ] }
    });
    let (status, stored) = w.post("/fhir/Consent", "fhir", consent).await;
    assert_eq!(status, 201, "{stored}");
    let id = stored["id"].as_str().unwrap().to_string();
    let session = session_of(&w, "jane").await;

    let (status, listed) = as_member(&w, "GET", "/api/me/consents", &session).await;
    assert_eq!(status, 200, "{listed}");
    let shown = &listed["consents"][0];
    assert_eq!(shown["title"], "Research participation");
    assert_eq!(
        shown["questions"][1]["question"],
        "Contact me about clinical trials"
    );
    assert_eq!(shown["questions"][1]["answer"], "deny");

    // Editing is off by default.
    let change = json!({ "answers": [{ "item": 1, "answer": "permit" }] });
    let path = format!("/api/me/consents/{id}");
    let (status, refused) = put_as(&w, &path, &session, change.clone()).await;
    assert_eq!((status, code(&refused)), (403, "patient-edit-off"), "{refused}");
    set_switches(&w, true, true, false).await;
    for bad in [
        json!({ "answers": [{ "item": 9, "answer": "permit" }] }),
        json!({ "answers": [{ "item": 0, "answer": "maybe" }] }),
    ] {
        let (status, refused) = put_as(&w, &path, &session, bad).await;
        assert_eq!(status, 422, "{refused}");
    }
    let (status, changed) = put_as(&w, &path, &session, change).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["consent"]["questions"][1]["answer"], "permit");
    assert_eq!(changed["pushed"].as_array().unwrap().len(), 1, "{changed}");
    let received = consent_system.wait_for(1).await;
    let sent: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(sent["resourceType"], "Consent");
    assert_eq!(sent["provision"]["provision"][1]["type"], "permit");
    assert_eq!(sent["patient"]["reference"], format!("Patient/{jane}"));
    let (_, audit) = w.get(&format!("/api/audit?target=consent/{id}"), "config").await;
    assert_eq!(audit["records"][0]["action"], "consent.update", "{audit}");

    // Sam, her proxy, reads her consents; he changes them only with proxy edit on.
    let sam = w.active_member(1, "SMITH", "sam", 2).await;
    w.relate(&jane, &sam, ("expires_at", "2099-01-01T00:00:00Z"))
        .await;
    let sam_session = session_of(&w, "sam").await;
    let (status, hers) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/consents"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200, "{hers}");
    assert_eq!(hers["consents"].as_array().unwrap().len(), 1);
    let proxy_path = format!("/api/me/principals/{jane}/consents/{id}");
    let undo = json!({ "answers": [{ "item": 1, "answer": "deny" }] });
    let (status, refused) = put_as(&w, &proxy_path, &sam_session, undo.clone()).await;
    assert_eq!((status, code(&refused)), (403, "proxy-edit-off"), "{refused}");
    set_switches(&w, true, true, true).await;
    let (status, changed) = put_as(&w, &proxy_path, &sam_session, undo).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["consent"]["questions"][1]["answer"], "deny");
    // Jane is not Sam's proxy.
    let (status, refused) =
        as_member(&w, "GET", &format!("/api/me/principals/{sam}/consents"), &session).await;
    assert_eq!((status, code(&refused)), (403, "no-proxy-access"), "{refused}");

    // With patient view off, nobody sees consents.
    set_switches(&w, false, false, false).await;
    let (status, refused) = as_member(&w, "GET", "/api/me/consents", &session).await;
    assert_eq!((status, code(&refused)), (403, "consents-not-shown"), "{refused}");
}
