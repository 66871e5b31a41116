//! Patient Tasks over the wire: a system with the `tasks` scope creates a task (a document link,
//! an attached file, a questionnaire) for a member, who is told by email (a real SMTP server)
//! and text; the portal moves it along (bad transitions refused), posts the completed
//! questionnaire, which is stored and pushed to an HTTP peer playing TrakCare, and everything is
//! readable through the FHIR endpoint.

use crate::engagement_support::start;
use serde_json::{Value, json};

fn questionnaire() -> Value {
    json!({
        "resourceType": "Questionnaire",
        "url": "https://trakcare.test/Questionnaire/pre-op",
        "status": "active",
        "item": [{ "linkId": "1", "text": "Any allergies?", "type": "boolean" }]
    })
}

#[tokio::test]
async fn a_task_is_created_notified_moved_along_and_its_answers_go_to_trakcare() {
    let w = start().await;
    let jane = w.jane().await;
    w.active_member(&jane).await;
    let emails_before = w.wait_emails(2).await.len();

    let (status, created) = w
        .post(
            "/api/tasks",
            "trak",
            json!({
                "patient_identifier": { "system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "1000234567" },
                "title": "Before your operation",
                "description": "Read the leaflet and answer the questions.",
                "identifier": { "system": "https://trakcare.test/task", "value": "T-77" },
                "due": "2026-12-24",
                "items": [
                    { "type": "document", "title": "Pre-op leaflet", "url": "https://trakcare.test/docs/leaflet.pdf" },
                    { "type": "document", "attachment": { "content_type": "text/plain", "data": "SGVsbG8gSmFuZQ==", "title": "note.txt" } },
                    { "type": "questionnaire", "title": "Pre-op questions", "questionnaire": questionnaire() }
                ]
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["notified"], true, "{created}");
    let task = &created["task"];
    let id = task["id"].as_str().unwrap().to_string();
    assert_eq!(task["status"], "requested");
    assert_eq!(task["for"]["reference"], format!("Patient/{jane}"));
    assert_eq!(task["input"].as_array().unwrap().len(), 3);
    assert_eq!(created["items"].as_array().unwrap().len(), 3);
    let questionnaire_ref = task["input"][2]["valueReference"]["reference"]
        .as_str()
        .unwrap()
        .to_string();

    // The member is told by email and text.
    let emails = w.wait_emails(emails_before + 1).await;
    let (to, text) = emails.last().unwrap();
    assert_eq!(to, &vec!["jane.doe@example.org".to_string()]);
    assert!(text.contains("Subject: You have a new task"), "{text}");
    let texts = w.wait_texts(3).await;
    assert!(
        texts.last().unwrap().contains("Before your operation"),
        "{texts:?}"
    );

    // Readable through the API and through FHIR.
    let (status, read) = w.get(&format!("/api/tasks/{id}"), "portal").await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["items"].as_array().unwrap().len(), 3);
    let (status, fhir_task) = w.engine.get(&format!("/fhir/Task/{id}")).await;
    assert_eq!(status, 200, "{fhir_task}");
    assert_eq!(fhir_task["identifier"][0]["value"], "T-77");
    let (status, doc) = w
        .engine
        .get(&format!(
            "/fhir/{}",
            task["input"][1]["valueReference"]["reference"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["content"][0]["attachment"]["data"], "SGVsbG8gSmFuZQ==");
    let (status, _) = w.engine.get(&format!("/fhir/{questionnaire_ref}")).await;
    assert_eq!(status, 200);
    let (status, found) = w
        .engine
        .get(&format!("/fhir/Task?patient={jane}&status=requested"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["total"], 1, "{found}");

    // Jane signs in; through the portal her session moves her task along.
    let session = w.sign_in("jane.doe").await;

    // Status: requested -> in-progress; a jump back to requested is refused.
    let (status, moved) = w
        .post_as_member(
            &format!("/api/tasks/{id}/status"),
            &session,
            json!({ "status": "in-progress" }),
        )
        .await;
    assert_eq!(
        (status, moved["status"].as_str()),
        (200, Some("in-progress")),
        "{moved}"
    );
    let (status, body) = w
        .post(
            &format!("/api/tasks/{id}/status"),
            "trak",
            json!({ "status": "requested" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("bad-transition")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("`in-progress` cannot become `requested`"),
        "{body}"
    );
    let (status, body) = w
        .post(
            &format!("/api/tasks/{id}/status"),
            "trak",
            json!({ "status": "done" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // The completed questionnaire: stored, linked from the task, pushed to TrakCare.
    let (status, answered) = w
        .post_as_member(
            &format!("/api/tasks/{id}/questionnaire-response"),
            &session,
            json!({
                "resourceType": "QuestionnaireResponse",
                "questionnaire": "https://trakcare.test/Questionnaire/pre-op",
                "status": "completed",
                "item": [{ "linkId": "1", "answer": [{ "valueBoolean": false }] }]
            }),
        )
        .await;
    assert_eq!(status, 201, "{answered}");
    let response_id = answered["questionnaire_response"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        answered["pushed"].as_str().unwrap().starts_with("trakcare-"),
        "{answered}"
    );
    let (status, stored) = w
        .engine
        .get(&format!("/fhir/QuestionnaireResponse/{response_id}"))
        .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["subject"]["reference"], format!("Patient/{jane}"));
    let requests = w.trakcare.wait_for(1).await;
    let pushed: Value = serde_json::from_str(&requests[0].body_text()).unwrap();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/fhir/QuestionnaireResponse");
    assert_eq!(pushed["resourceType"], "QuestionnaireResponse");
    assert_eq!(pushed["id"], response_id.as_str());
    assert_eq!(pushed["item"][0]["answer"][0]["valueBoolean"], false);
    let (_, read) = w.get(&format!("/api/tasks/{id}"), "trak").await;
    assert_eq!(
        read["task"]["output"][0]["valueReference"]["reference"],
        format!("QuestionnaireResponse/{response_id}")
    );

    // Completed, then nothing more.
    let (status, _) = w
        .post(
            &format!("/api/tasks/{id}/status"),
            "trak",
            json!({ "status": "completed" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = w
        .post_as_member(
            &format!("/api/tasks/{id}/status"),
            &session,
            json!({ "status": "in-progress" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("bad-transition")),
        "{body}"
    );
    let (status, body) = w
        .post_as_member(
            &format!("/api/tasks/{id}/questionnaire-response"),
            &session,
            json!({ "resourceType": "QuestionnaireResponse", "status": "completed" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("task-closed")),
        "{body}"
    );
}

#[tokio::test]
async fn task_refusals_say_why() {
    let w = start().await;
    let jane = w.jane().await;
    let good = json!({
        "patient_id": jane,
        "title": "Read this",
        "items": [{ "type": "document", "url": "https://trakcare.test/a.pdf" }]
    });
    let (status, body) = w.call("POST", "/api/tasks", None, Some(good.clone())).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")));
    for client in ["portal", "crm", "desk", "manager", "nobody"] {
        let (status, body) = w.post("/api/tasks", client, good.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{client}: {body}"
        );
    }
    for client in ["crm", "desk", "nobody"] {
        let (status, _) = w.get("/api/tasks/x", client).await;
        assert_eq!(status, 403, "{client}");
        let (status, _) = w
            .post("/api/tasks/x/status", client, json!({ "status": "ready" }))
            .await;
        assert_eq!(status, 403, "{client}");
    }
    let (status, _) = w
        .post(
            "/api/tasks/x/questionnaire-response",
            "trak",
            json!({ "resourceType": "QuestionnaireResponse" }),
        )
        .await;
    assert_eq!(status, 403, "only the portal answers for the member");

    let bad = |change: Value| {
        let mut task = good.clone();
        for (k, v) in change.as_object().unwrap() {
            task[k] = v.clone();
        }
        task
    };
    let (status, body) = w
        .post("/api/tasks", "trak", bad(json!({ "colour": "red" })))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad-request")),
        "{body}"
    );
    let (status, body) = w.post("/api/tasks", "trak", bad(json!({ "items": [] }))).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .post(
            "/api/tasks",
            "trak",
            bad(json!({ "items": [{ "type": "document", "attachment": { "content_type": "application/pdf", "data": "not base64!" } }] })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("base64"), "{body}");
    let (status, body) = w
        .post(
            "/api/tasks",
            "trak",
            bad(json!({ "items": [{ "type": "video", "url": "https://x.test/v" }] })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .post(
            "/api/tasks",
            "trak",
            bad(json!({ "items": [{ "type": "questionnaire", "questionnaire": { "resourceType": "Questionnaire", "status": "active", "item": [{ "text": "no link id", "type": "string" }] } }] })),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid-resource")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("linkId"), "{body}");
    let (status, body) = w
        .post("/api/tasks", "trak", bad(json!({ "patient_id": "nobody-here" })))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = w
        .post("/api/tasks", "trak", bad(json!({ "due": "next week" })))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = w.get("/api/tasks/no-such-task", "trak").await;
    assert_eq!(status, 404);

    // A task for a patient who is not a member is stored; nobody is told.
    let (status, created) = w.post("/api/tasks", "trak", good).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["notified"], false);
    let id = created["task"]["id"].as_str().unwrap();
    // Once she is a member, the portal acts on her task only with her session.
    w.active_member(&jane).await;
    let answer = json!({ "resourceType": "QuestionnaireResponse", "status": "completed" });
    for path in [
        format!("/api/tasks/{id}/status"),
        format!("/api/tasks/{id}/questionnaire-response"),
    ] {
        let (status, body) = w.post(&path, "portal", answer.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("unauthenticated")),
            "{path}: {body}"
        );
    }
    let session = w.sign_in("jane.doe").await;
    let (status, body) = w
        .post_as_member(
            &format!("/api/tasks/{id}/questionnaire-response"),
            &session,
            json!({ "resourceType": "QuestionnaireResponse", "status": "completed" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("no-questionnaire")),
        "{body}"
    );
}
