//! Messages from providers over HTTP against the real engine (issue 17, release notes 6.6,
//! first part): a provider's system posts a FHIR Communication with a PDF attachment to the
//! patient; the member is emailed that a message is waiting (never its text), finds it in the
//! inbox, opens it (read from then on), downloads the attachment, archives it; another member
//! sees none of it.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::code;
use crate::credentials_support::{active_jane, as_member, session_of};
use crate::members_support::{nth, start};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

#[tokio::test]
async fn a_providers_message_reaches_the_inbox_with_its_attachment_and_a_notice_without_its_text() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = false\n").await;
    let jane = active_jane(&w).await;
    // Her activation token, then the note that her account is active.
    let registered = nth(&w.email, 2).await;
    assert!(registered.contains("now active"), "{registered}");
    let emails_before = 2;
    let message = json!({
        "resourceType": "Communication", "status": "completed",
        "category": [{ "text": "medical" }],
        "topic": { "text": "Your blood test" },
        "sender": { "reference": "Practitioner/osei", "display": "Dr Kwame Osei" },
        "recipient": [{ "reference": format!("Patient/{jane}") }],
        "sent": "2025-10-03T09:00:00Z",
        "payload": [
            { "contentString": "Your results are normal. The letter is attached." },
            { "contentAttachment": { "contentType": "application/pdf", "title": "Results letter",
                                     "data": base64::engine::general_purpose::STANDARD.encode(PDF) } }
        ]
    });
    let (status, stored) = w.post("/fhir/Communication", "fhir", message).await;
    assert_eq!(status, 201, "{stored}");
    let id = stored["id"].as_str().unwrap().to_string();

    // The notice says a message is waiting and where, never what it says.
    let notice = nth(&w.email, emails_before + 1).await;
    assert!(notice.contains("sent you a message"), "{notice}");
    assert!(notice.contains("https://portal.test/messages"), "{notice}");
    assert!(!notice.contains("results are normal"), "{notice}");

    let session = session_of(&w, "jane").await;
    let (status, inbox) = as_member(&w, "GET", "/api/me/messages", &session).await;
    assert_eq!(status, 200, "{inbox}");
    let listed = &inbox["messages"][0];
    assert_eq!(listed["subject"], "Your blood test");
    assert_eq!(listed["from"], "Dr Kwame Osei");
    assert_eq!(listed["category"], "medical");
    assert_eq!(listed["read"], false);
    assert_eq!(listed["attachments"][0]["title"], "Results letter");

    let (status, opened) = as_member(&w, "GET", &format!("/api/me/messages/{id}"), &session).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["text"], "Your results are normal. The letter is attached.");
    assert_eq!(opened["read"], true);
    let (_, inbox) = as_member(&w, "GET", "/api/me/messages", &session).await;
    assert_eq!(inbox["messages"][0]["read"], true, "read from then on");

    let download = w
        .http
        .get(format!("{}/api/me/messages/{id}/attachments/0", w.engine.http))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(download.headers()["content-type"], "application/pdf");
    assert_eq!(download.bytes().await.unwrap().as_ref(), PDF);
    let (status, none) = as_member(
        &w,
        "GET",
        &format!("/api/me/messages/{id}/attachments/1"),
        &session,
    )
    .await;
    assert_eq!((status, code(&none)), (404, "no-attachment"), "{none}");

    // Archived: out of the inbox, in the archive; and back.
    let archive = |archived: bool| {
        let (w, session, id) = (&w, session.clone(), id.clone());
        async move {
            let response = w
                .http
                .put(format!("{}/api/me/messages/{id}", w.engine.http))
                .bearer_auth(&session)
                .json(&json!({ "archived": archived }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, marked) = archive(true).await;
    assert_eq!(status, 200, "{marked}");
    let (_, inbox) = as_member(&w, "GET", "/api/me/messages", &session).await;
    assert!(inbox["messages"].as_array().unwrap().is_empty(), "{inbox}");
    let (_, archived) = as_member(&w, "GET", "/api/me/messages?box=archived", &session).await;
    assert_eq!(archived["messages"][0]["id"], id.as_str());
    assert_eq!(archive(false).await.0, 200);
    let (status, bad) = as_member(&w, "GET", "/api/me/messages?box=trash", &session).await;
    assert_eq!((status, code(&bad)), (400, "bad-box"), "{bad}");

    // Another member sees none of it.
    let emails = w.email.received().len();
    w.active_member(1, "SMITH", "sam", emails).await;
    let sam = session_of(&w, "sam").await;
    let (_, his) = as_member(&w, "GET", "/api/me/messages", &sam).await;
    assert!(his["messages"].as_array().unwrap().is_empty(), "{his}");
    let (status, _) = as_member(&w, "GET", &format!("/api/me/messages/{id}"), &sam).await;
    assert_eq!(status, 404);
}
