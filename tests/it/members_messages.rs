//! Messages over HTTP and MLLP against the real engine (issue 17, release notes 6.6 and 5.3):
//! - a provider's system posts a FHIR Communication with a PDF attachment to the patient; the
//!   member is emailed that a message is waiting (never its text), finds it in the inbox, opens
//!   it (read from then on), downloads the attachment, archives it; another member sees none;
//! - members write general, medical and billing questions and replies, each reaching its
//!   category's destination (real HTTP receivers playing the provider systems), kept in Sent,
//!   threaded with the provider's answer; every switch checked on and off, with its coded 403;
//! - the provider directory (FHIR Practitioner, PractitionerRole, Organization) searched, and
//!   favourites;
//! - a proxy reads and writes a principal's messages only with a grant;
//! - TrakCare's HL7 v2 messages (MDM) land in the inbox through their mapping.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::code;
use crate::common::peers::HttpReceiver;
use crate::credentials_support::{active_jane, as_member, session_of};
use crate::members_support::{World, nth, settle, start};

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

/// A member's call with a JSON body (or none).
async fn member_call(
    w: &World,
    method: &str,
    path: &str,
    session: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", w.engine.http);
    let mut request = match method {
        "GET" => w.http.get(url),
        "POST" => w.http.post(url),
        "PUT" => w.http.put(url),
        "DELETE" => w.http.delete(url),
        other => panic!("method {other}"),
    };
    request = request.bearer_auth(session);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn set_switches(
    w: &World,
    general: bool,
    medical: bool,
    replies: bool,
    provider: bool,
) -> (u16, Value) {
    let body = json!({
        "patient_general": general, "patient_medical": medical, "patient_billing": false,
        "patient_replies": replies, "provider_initiated": provider, "reason": "Clinic staffing"
    });
    w.call("PUT", "/api/settings/messages", Some("config"), Some(body))
        .await
}

/// The engine with the medical and replies destinations at `clinic`, general at `desk`, and no
/// billing destination.
async fn world_with_destinations(clinic: &HttpReceiver, desk: &HttpReceiver) -> World {
    start(&format!(
        "[credentials]\nmode = \"portal\"\ntwo_factor = false\n\n\
         [messages.destinations]\ngeneral = [\"desk\"]\nmedical = [\"clinic\"]\nreplies = [\"clinic\"]\n\n\
         [[destinations]]\nname = \"clinic\"\nkind = \"http\"\n\
         [destinations.settings]\nurl = \"{}\"\n\n\
         [[destinations]]\nname = \"desk\"\nkind = \"http\"\n\
         [destinations.settings]\nurl = \"{}\"\n",
        clinic.url("/fhir/Communication"),
        desk.url("/fhir/Communication"),
    ))
    .await
}

/// Dr Osei of Riverside Cardiology, in the directory.
async fn directory(w: &World) {
    let practitioner = json!({ "resourceType": "Practitioner", "id": "osei", "active": true,
        "name": [{ "prefix": ["Dr"], "given": ["Kwame"], "family": "Osei" }] });
    let (status, stored) = w
        .call("PUT", "/fhir/Practitioner/osei", Some("fhir"), Some(practitioner))
        .await;
    assert_eq!(status, 201, "{stored}");
    let organization = json!({ "resourceType": "Organization", "id": "cardiology", "active": true,
        "name": "Riverside Cardiology", "type": [{ "text": "Clinic" }] });
    let (status, stored) = w
        .call(
            "PUT",
            "/fhir/Organization/cardiology",
            Some("fhir"),
            Some(organization),
        )
        .await;
    assert_eq!(status, 201, "{stored}");
    let role = json!({ "resourceType": "PractitionerRole", "id": "osei-cardiology", "active": true,
        "practitioner": { "reference": "Practitioner/osei" },
        "organization": { "reference": "Organization/cardiology" },
        "specialty": [{ "text": "Cardiology" }] });
    let (status, stored) = w
        .call(
            "PUT",
            "/fhir/PractitionerRole/osei-cardiology",
            Some("fhir"),
            Some(role),
        )
        .await;
    assert_eq!(status, 201, "{stored}");
}

#[tokio::test]
async fn members_write_by_category_and_reply_each_to_its_destination_as_the_switches_allow() {
    let clinic = HttpReceiver::start().await;
    let desk = HttpReceiver::start().await;
    let w = world_with_destinations(&clinic, &desk).await;
    let jane = active_jane(&w).await;
    assert!(nth(&w.email, 2).await.contains("now active"));
    directory(&w).await;
    let session = session_of(&w, "jane").await;

    // The directory: by any word of the name, with specialties and groups; favourites.
    let (status, found) = member_call(&w, "GET", "/api/me/providers?q=osei", &session, None).await;
    assert_eq!(status, 200, "{found}");
    let osei = &found["entries"][0];
    assert_eq!(osei["reference"], "Practitioner/osei");
    assert_eq!(osei["name"], "Dr Kwame Osei");
    assert_eq!(osei["specialties"], json!(["Cardiology"]));
    assert_eq!(osei["groups"], json!(["Riverside Cardiology"]));
    assert_eq!(osei["favourite"], false);
    let (_, groups) = member_call(&w, "GET", "/api/me/providers?q=river&kind=groups", &session, None).await;
    assert_eq!(groups["entries"].as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups["entries"][0]["kind"], "group");
    let (_, none) = member_call(&w, "GET", "/api/me/providers?q=smith", &session, None).await;
    assert!(none["entries"].as_array().unwrap().is_empty(), "{none}");
    let (status, bad) = member_call(&w, "GET", "/api/me/providers?kind=nurses", &session, None).await;
    assert_eq!((status, code(&bad)), (400, "bad-kind"), "{bad}");
    let (status, _) = member_call(&w, "PUT", "/api/me/favourites/Practitioner/osei", &session, None).await;
    assert_eq!(status, 200);
    let (status, unknown) = member_call(
        &w,
        "PUT",
        "/api/me/favourites/Practitioner/nobody",
        &session,
        None,
    )
    .await;
    assert_eq!((status, code(&unknown)), (422, "unknown-provider"), "{unknown}");
    let (_, favourites) = member_call(&w, "GET", "/api/me/favourites", &session, None).await;
    assert_eq!(
        favourites["entries"][0]["reference"], "Practitioner/osei",
        "{favourites}"
    );
    let (_, found) = member_call(&w, "GET", "/api/me/providers?q=kwame", &session, None).await;
    assert_eq!(found["entries"][0]["favourite"], true);
    let (status, _) = member_call(
        &w,
        "DELETE",
        "/api/me/favourites/Practitioner/osei",
        &session,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, favourites) = member_call(&w, "GET", "/api/me/favourites", &session, None).await;
    assert!(
        favourites["entries"].as_array().unwrap().is_empty(),
        "{favourites}"
    );
    let (status, gone) = member_call(
        &w,
        "DELETE",
        "/api/me/favourites/Practitioner/osei",
        &session,
        None,
    )
    .await;
    assert_eq!((status, code(&gone)), (404, "not-a-favourite"), "{gone}");

    // Off by default: each category answers its own 403.
    let question = |category: &str| {
        json!({ "category": category, "to": "Practitioner/osei", "subject": "My new tablets",
                "text": "Should I take them with food?",
                "attachments": [{ "title": "Prescription", "content_type": "image/png",
                                  "data": base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n") }] })
    };
    for (category, refusal) in [
        ("medical", "medical-questions-off"),
        ("general", "general-questions-off"),
        ("billing", "billing-questions-off"),
    ] {
        let (status, refused) =
            member_call(&w, "POST", "/api/me/messages", &session, Some(question(category))).await;
        assert_eq!((status, code(&refused)), (403, refusal), "{refused}");
    }
    // A switch with nowhere to send to is refused; the site has no billing destination.
    let body = json!({ "patient_general": false, "patient_medical": false, "patient_billing": true,
        "patient_replies": false, "provider_initiated": true, "reason": "Billing desk" });
    let (status, refused) = w
        .call("PUT", "/api/settings/messages", Some("config"), Some(body))
        .await;
    assert_eq!((status, code(&refused)), (422, "no-destination"), "{refused}");

    // Medical on: the question reaches the clinic's system, and only it.
    let (status, saved) = set_switches(&w, false, true, false, true).await;
    assert_eq!(status, 200, "{saved}");
    let (status, sent) = member_call(
        &w,
        "POST",
        "/api/me/messages",
        &session,
        Some(question("medical")),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["pushed"].as_array().unwrap().len(), 1, "{sent}");
    let question_id = sent["message"]["id"].as_str().unwrap().to_string();
    assert_eq!(sent["message"]["to"], json!(["Dr Kwame Osei"]));
    let received = clinic.wait_for(1).await;
    let pushed: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(pushed["resourceType"], "Communication");
    assert_eq!(pushed["category"][0]["coding"][0]["code"], "medical");
    assert_eq!(pushed["recipient"][0]["reference"], "Practitioner/osei");
    assert_eq!(pushed["sender"]["reference"], format!("Patient/{jane}"));
    assert_eq!(pushed["subject"]["reference"], format!("Patient/{jane}"));
    assert_eq!(
        pushed["payload"][0]["contentString"],
        "Should I take them with food?"
    );
    assert_eq!(
        pushed["payload"][1]["contentAttachment"]["contentType"],
        "image/png"
    );
    for bad in [
        json!({ "category": "gossip", "text": "hello" }),
        json!({ "category": "medical", "text": "  " }),
        json!({ "category": "medical", "to": "Patient/someone", "text": "hello" }),
        json!({ "category": "medical", "text": "hello", "attachments": [{ "content_type": "image/png", "data": "not base64!" }] }),
    ] {
        let (status, refused) =
            member_call(&w, "POST", "/api/me/messages", &session, Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}: {refused}");
    }

    // Sent, not the inbox.
    let (_, sent_box) = member_call(&w, "GET", "/api/me/messages?box=sent", &session, None).await;
    assert_eq!(sent_box["messages"].as_array().unwrap().len(), 1, "{sent_box}");
    assert_eq!(sent_box["messages"][0]["id"], question_id.as_str());
    assert_eq!(sent_box["messages"][0]["from"], "JANE QUINN DOE");
    let (_, inbox) = member_call(&w, "GET", "/api/me/messages", &session, None).await;
    assert!(inbox["messages"].as_array().unwrap().is_empty(), "{inbox}");

    // The doctor answers in the thread; she is told, and reads it in her inbox.
    let emails = w.email.received().len();
    let answer = json!({
        "resourceType": "Communication", "status": "completed",
        "category": [{ "coding": [{ "system": "urn:tributary:message-category", "code": "medical" }] }],
        "inResponseTo": [{ "reference": format!("Communication/{question_id}") }],
        "sender": { "reference": "Practitioner/osei", "display": "Dr Kwame Osei" },
        "recipient": [{ "reference": format!("Patient/{jane}") }],
        "sent": "2030-01-01T09:00:00Z",
        "payload": [{ "contentString": "Yes, with breakfast." }]
    });
    let (status, stored) = w.post("/fhir/Communication", "fhir", answer.clone()).await;
    assert_eq!(status, 201, "{stored}");
    let answer_id = stored["id"].as_str().unwrap().to_string();
    assert!(nth(&w.email, emails + 1).await.contains("sent you a message"));
    let (_, inbox) = member_call(&w, "GET", "/api/me/messages", &session, None).await;
    assert_eq!(inbox["messages"][0]["id"], answer_id.as_str());
    assert_eq!(inbox["messages"][0]["thread"], question_id.as_str(), "{inbox}");
    assert_eq!(inbox["messages"][0]["category"], "medical");

    // Replies are their own switch; a reply goes to the thread's category's destination.
    let reply_path = format!("/api/me/messages/{answer_id}/reply");
    let reply = json!({ "text": "Thank you." });
    let (status, refused) = member_call(&w, "POST", &reply_path, &session, Some(reply.clone())).await;
    assert_eq!((status, code(&refused)), (403, "replies-off"), "{refused}");
    set_switches(&w, false, true, true, true).await;
    let (status, replied) = member_call(&w, "POST", &reply_path, &session, Some(reply)).await;
    assert_eq!(status, 201, "{replied}");
    assert_eq!(replied["message"]["thread"], question_id.as_str(), "{replied}");
    assert_eq!(replied["message"]["in_reply_to"], answer_id.as_str());
    let received = clinic.wait_for(2).await;
    let pushed: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(
        pushed["inResponseTo"][0]["reference"],
        format!("Communication/{answer_id}")
    );
    assert_eq!(pushed["recipient"][0]["reference"], "Practitioner/osei");
    let (_, sent_box) = member_call(&w, "GET", "/api/me/messages?box=sent", &session, None).await;
    assert_eq!(sent_box["messages"].as_array().unwrap().len(), 2, "{sent_box}");

    // General questions go to the desk.
    set_switches(&w, true, true, true, true).await;
    let general = json!({ "category": "general", "subject": "Parking", "text": "Where do I park?" });
    let (status, sent) = member_call(&w, "POST", "/api/me/messages", &session, Some(general)).await;
    assert_eq!(status, 201, "{sent}");
    let at_desk = desk.wait_for(1).await;
    let pushed: Value = serde_json::from_slice(&at_desk[0].body).unwrap();
    assert_eq!(pushed["topic"]["text"], "Parking");
    settle().await;
    assert_eq!(
        clinic.requests().len(),
        2,
        "the clinic hears only medical and replies"
    );

    // Provider-initiated messaging off: a provider's message is refused (403, coded); an
    // external system's still fills the inbox, which works with everything else off.
    set_switches(&w, false, false, false, false).await;
    let mut from_provider = answer.clone();
    from_provider.as_object_mut().unwrap().remove("inResponseTo");
    let from_provider_again = from_provider.clone();
    let (status, refused) = w.post("/fhir/Communication", "fhir", from_provider).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["resourceType"], "OperationOutcome");
    assert!(
        refused["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .starts_with("provider-messages-off"),
        "{refused}"
    );
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:6f1c2a4e-2b7d-4c3e-9a55-0d6f7e8a9b10",
        "resource": from_provider_again,
        "request": { "method": "POST", "url": "Communication" } }] });
    let (status, refused) = w.post("/fhir", "fhir", bundle).await;
    assert_eq!(status, 403, "a Bundle is no way around the switch: {refused}");
    let from_system = json!({
        "resourceType": "Communication", "status": "completed",
        "sender": { "reference": "Organization/cardiology", "display": "Riverside Cardiology" },
        "recipient": [{ "reference": format!("Patient/{jane}") }],
        "topic": { "text": "Flu clinic" },
        "sent": "2030-02-01T09:00:00Z",
        "payload": [{ "contentString": "Flu vaccines are available from Monday." }]
    });
    let (status, stored) = w.post("/fhir/Communication", "fhir", from_system).await;
    assert_eq!(status, 201, "{stored}");
    let (status, inbox) = member_call(&w, "GET", "/api/me/messages", &session, None).await;
    assert_eq!(status, 200, "{inbox}");
    assert_eq!(inbox["messages"][0]["subject"], "Flu clinic", "{inbox}");
    assert_eq!(inbox["messages"].as_array().unwrap().len(), 2);
    let (status, refused) = member_call(
        &w,
        "POST",
        &reply_path,
        &session,
        Some(json!({ "text": "Again" })),
    )
    .await;
    assert_eq!((status, code(&refused)), (403, "replies-off"), "{refused}");
    let (_, switches) = w.get("/api/settings/messages", "config").await;
    assert_eq!(switches["provider_initiated"], false, "{switches}");
    let (_, audit) = w.get("/api/audit?target=settings/messages", "config").await;
    assert_eq!(audit["records"][0]["action"], "settings.update", "{audit}");
}

#[tokio::test]
async fn a_proxy_reads_and_writes_a_principals_messages_only_with_a_grant() {
    let clinic = HttpReceiver::start().await;
    let desk = HttpReceiver::start().await;
    let w = world_with_destinations(&clinic, &desk).await;
    let jane = active_jane(&w).await;
    assert!(nth(&w.email, 2).await.contains("now active"));
    set_switches(&w, true, true, true, true).await;
    let message = json!({
        "resourceType": "Communication", "status": "completed",
        "sender": { "reference": "Practitioner/osei", "display": "Dr Kwame Osei" },
        "recipient": [{ "reference": format!("Patient/{jane}") }],
        "topic": { "text": "Your appointment" }, "sent": "2030-01-01T09:00:00Z",
        "payload": [{ "contentString": "Please bring your tablets." },
                    { "contentAttachment": { "contentType": "application/pdf", "title": "Letter",
                      "data": base64::engine::general_purpose::STANDARD.encode(PDF) } }]
    });
    let (status, stored) = w.post("/fhir/Communication", "fhir", message).await;
    assert_eq!(status, 201, "{stored}");
    let id = stored["id"].as_str().unwrap().to_string();

    // Jane's two emails, then her message's notice.
    nth(&w.email, 3).await;
    let sam = w.active_member(1, "SMITH", "sam", 3).await;
    let sam_session = session_of(&w, "sam").await;
    let hers = format!("/api/me/principals/{jane}/messages");
    // Without a relationship: nothing.
    let (status, refused) = member_call(&w, "GET", &hers, &sam_session, None).await;
    assert_eq!((status, code(&refused)), (403, "no-proxy-access"), "{refused}");
    let (status, refused) = member_call(&w, "GET", &format!("{hers}/{id}"), &sam_session, None).await;
    assert_eq!((status, code(&refused)), (403, "no-proxy-access"), "{refused}");

    w.relate(&jane, &sam, ("expires_at", "2099-01-01T00:00:00Z"))
        .await;
    let (status, listed) = member_call(&w, "GET", &hers, &sam_session, None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["messages"][0]["id"], id.as_str());
    // Sam's reading is his own: Jane's copy stays unread.
    let (status, opened) = member_call(&w, "GET", &format!("{hers}/{id}"), &sam_session, None).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["read"], true);
    let jane_session = session_of(&w, "jane").await;
    let (_, her_inbox) = member_call(&w, "GET", "/api/me/messages", &jane_session, None).await;
    assert_eq!(her_inbox["messages"][0]["read"], false, "{her_inbox}");
    let download = w
        .http
        .get(format!("{}{hers}/{id}/attachments/1", w.engine.http))
        .bearer_auth(&sam_session)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status().as_u16(), 404, "attachment 1 of one");
    let download = w
        .http
        .get(format!("{}{hers}/{id}/attachments/0", w.engine.http))
        .bearer_auth(&sam_session)
        .send()
        .await
        .unwrap();
    assert_eq!(download.bytes().await.unwrap().as_ref(), PDF);

    // He replies for her: the reply is about Jane, from Sam, and shows in her Sent box.
    let (status, replied) = member_call(
        &w,
        "POST",
        &format!("{hers}/{id}/reply"),
        &sam_session,
        Some(json!({ "text": "She will bring them." })),
    )
    .await;
    assert_eq!(status, 201, "{replied}");
    assert_eq!(replied["message"]["from"], "ANNA QUINN SMITH", "{replied}");
    let pushed: Value = serde_json::from_slice(&clinic.wait_for(1).await[0].body).unwrap();
    assert_eq!(pushed["subject"]["reference"], format!("Patient/{jane}"));
    assert_eq!(pushed["sender"]["reference"], format!("Patient/{sam}"));
    let (_, her_sent) = member_call(&w, "GET", "/api/me/messages?box=sent", &jane_session, None).await;
    assert_eq!(her_sent["messages"].as_array().unwrap().len(), 1, "{her_sent}");
    // Jane is not Sam's proxy; Sam's own boxes do not hold Jane's messages.
    let (status, refused) = member_call(
        &w,
        "GET",
        &format!("/api/me/principals/{sam}/messages"),
        &jane_session,
        None,
    )
    .await;
    assert_eq!((status, code(&refused)), (403, "no-proxy-access"), "{refused}");
    let (_, his) = member_call(&w, "GET", "/api/me/messages?box=sent", &sam_session, None).await;
    assert!(his["messages"].as_array().unwrap().is_empty(), "{his}");
}

const TRAKCARE_MESSAGE: &str = "MSH|^~\\&|TRAKCARE|RIVERSIDE|TRIBUTARY|PORTAL|20251003090000-0400||MDM^T02^MDM_T02|TCMSG0001|P|2.5\r\
     EVN|T02|20251003090000-0400\r\
     PID|1||1000234567^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||DOE^JANE||19840312|F\r\
     TXA|1|PATMSG^Message to patient^L|TX|20251003085500-0400|1568330217^OSEI^KWAME^^^DR|||||||MSG7001^TRAKCARE^2.16.840.1.113883.3.9999.7^ISO|||||AU||AV\r\
     OBX|1|TX|MSG^Your blood test^L||Your results are normal.||||||F\r\
     OBX|2|ED|LETTER^Results letter^L||^application^pdf^Base64^JVBERi0xLjQKJSVFT0YK||||||F\r";

#[tokio::test]
async fn trakcares_hl7_messages_land_in_the_inbox_through_their_mapping() {
    let w = start(
        "[credentials]\nmode = \"portal\"\ntwo_factor = false\n\n\
         [[channels]]\nname = \"trakcare-messages\"\nmapping = \"trakcare-mdm-message\"\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n\
         [channels.filter]\nsending_applications = [\"TRAKCARE\"]\nmessage_types = [\"MDM\"]\n",
    )
    .await;
    let _jane = active_jane(&w).await;
    // Her activation token, then the note that her account is active.
    assert!(nth(&w.email, 2).await.contains("now active"));
    let emails = 2;
    w.feed(TRAKCARE_MESSAGE.as_bytes()).await;
    let notice = nth(&w.email, emails + 1).await;
    assert!(notice.contains("sent you a message"), "{notice}");
    assert!(!notice.contains("results are normal"), "{notice}");
    let session = session_of(&w, "jane").await;
    let (_, inbox) = member_call(&w, "GET", "/api/me/messages", &session, None).await;
    let message = &inbox["messages"][0];
    assert_eq!(message["subject"], "Your blood test", "{inbox}");
    assert_eq!(message["from"], "DR KWAME OSEI");
    assert_eq!(message["text"], "Your results are normal.");
    assert_eq!(message["attachments"][0]["content_type"], "application/pdf");
    // The same message again is the same message; a cancel (T11) takes it back.
    w.feed(TRAKCARE_MESSAGE.replace("TCMSG0001", "TCMSG0002").as_bytes())
        .await;
    let (_, inbox) = member_call(&w, "GET", "/api/me/messages", &session, None).await;
    assert_eq!(inbox["messages"].as_array().unwrap().len(), 1, "{inbox}");
    let cancel = TRAKCARE_MESSAGE
        .replace("MDM^T02^MDM_T02|TCMSG0001", "MDM^T11^MDM_T01|TCMSG0003")
        .replace("EVN|T02", "EVN|T11");
    w.feed(cancel.as_bytes()).await;
    let (_, inbox) = member_call(&w, "GET", "/api/me/messages", &session, None).await;
    assert!(inbox["messages"].as_array().unwrap().is_empty(), "{inbox}");
}

#[tokio::test]
async fn a_providers_message_is_told_by_email_to_a_real_smtp_server_and_by_text() {
    let w = crate::engagement_support::start().await;
    let jane = w.jane().await;
    w.active_member(&jane).await;
    let (emails_before, texts_before) = (w.emails().len(), w.texts().len());
    let message = json!({
        "resourceType": "Communication", "status": "completed",
        "sender": { "reference": "Practitioner/osei", "display": "Dr Kwame Osei" },
        "recipient": [{ "reference": format!("Patient/{jane}") }],
        "topic": { "text": "Your scan" }, "sent": "2030-01-01T09:00:00Z",
        "payload": [{ "contentString": "The scan shows nothing to worry about." }]
    });
    let (status, stored) = w.post("/fhir/Communication", "fhir", message).await;
    assert_eq!(status, 201, "{stored}");
    // Quoted-printable soft line breaks undone, to read the text as the member does.
    let notice = |text: &str| text.replace("=\r\n", "").replace("=\n", "");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let email = loop {
        let found = w
            .emails()
            .into_iter()
            .skip(emails_before)
            .find(|(_, text)| notice(text).contains("sent you a message"));
        if let Some(found) = found {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notice at the SMTP server: {:?}",
            w.emails()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(email.0.len(), 1, "to the member alone: {:?}", email.0);
    assert!(
        !notice(&email.1).contains("nothing to worry about"),
        "{}",
        email.1
    );
    let texts = w.wait_texts(texts_before + 1).await;
    let text = texts
        .iter()
        .skip(texts_before)
        .find(|t| t.contains("message"))
        .expect("a text notice");
    assert!(!text.contains("nothing to worry about"), "{text}");
}

#[tokio::test]
async fn a_message_in_a_bundle_with_its_file_as_a_binary_is_downloaded_from_the_binary() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = false\n").await;
    let jane = active_jane(&w).await;
    let pdf = base64::engine::general_purpose::STANDARD.encode(PDF);
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        { "fullUrl": "urn:uuid:3b0e8f4c-7d3a-4c1e-9f0a-2a6b8c1d5e01",
          "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": pdf },
          "request": { "method": "POST", "url": "Binary" } },
        { "fullUrl": "urn:uuid:3b0e8f4c-7d3a-4c1e-9f0a-2a6b8c1d5e02",
          "resource": { "resourceType": "Communication", "status": "completed",
            "sender": { "reference": "Organization/lab", "display": "Riverside Laboratory" },
            "recipient": [{ "reference": format!("Patient/{jane}") }],
            "topic": { "text": "Your report" }, "sent": "2030-01-01T09:00:00Z",
            "payload": [{ "contentString": "Your report is attached." },
                        { "contentAttachment": { "contentType": "application/pdf", "title": "Report",
                                                 "url": "urn:uuid:3b0e8f4c-7d3a-4c1e-9f0a-2a6b8c1d5e01" } }] },
          "request": { "method": "POST", "url": "Communication" } }
    ] });
    let (status, answer) = w.post("/fhir", "fhir", bundle).await;
    assert_eq!(status, 200, "{answer}");
    let session = session_of(&w, "jane").await;
    let (_, inbox) = member_call(&w, "GET", "/api/me/messages", &session, None).await;
    let message = &inbox["messages"][0];
    assert_eq!(message["attachments"][0]["title"], "Report", "{inbox}");
    let id = message["id"].as_str().unwrap();
    let download = w
        .http
        .get(format!("{}/api/me/messages/{id}/attachments/0", w.engine.http))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.headers()["content-type"], "application/pdf");
    assert_eq!(download.bytes().await.unwrap().as_ref(), PDF);
}
