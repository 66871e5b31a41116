//! Self-requested and automated enrollment over HTTP: the request and exception queues (claim,
//! match, approve, decline with a message to the requester, forward), each step in the task's
//! history, no enrollment status before a token is issued; and an external system enrolling a
//! patient by identifier.

use crate::common::code;
use crate::members_support::{nth, settle, start, token_in};
use serde_json::{Value, json};

fn request_from_jane() -> Value {
    json!({
        "family": "Doe",
        "given": "Jane",
        "birth_date": "1984-03-12",
        "email": "jane.requests@example.org",
        "preference": "email",
        "locales": ["en"],
        "identifier": "MRN00012345",
    })
}

#[tokio::test]
async fn a_request_agent_claims_matches_and_approves_a_self_requested_enrollment() {
    let w = start("").await;
    let jane = w.jane().await;

    let (status, body) = w
        .post("/api/enrollment-requests", "portal", json!({ "family": "Doe" }))
        .await;
    assert_eq!(status, 400, "{body}");
    let mut no_contact = request_from_jane();
    no_contact["email"] = Value::Null;
    let (status, body) = w.post("/api/enrollment-requests", "portal", no_contact).await;
    assert_eq!(status, 422, "{body}");
    let (status, submitted) = w
        .post("/api/enrollment-requests", "portal", request_from_jane())
        .await;
    assert_eq!(status, 201, "{submitted}");
    let id = submitted["id"].as_str().unwrap().to_string();

    // No enrollment status of any kind yet.
    let (_, found) = w.get("/api/patients?identifier=MRN00012345", "desk").await;
    assert_eq!(found["patients"][0]["enrolled"], false);
    let (_, members) = w.get("/api/members?mrn=MRN00012345", "manager").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 0);

    // The request queue is the request agents'.
    let (status, queue) = w.get("/api/enrollment-requests?queue=request", "agent").await;
    assert_eq!(status, 200);
    assert_eq!(queue["requests"][0]["id"], id.as_str());
    let (status, _) = w.get("/api/enrollment-requests?queue=request", "exception").await;
    assert_eq!(status, 403);
    let (status, _) = w
        .get(&format!("/api/enrollment-requests/{id}"), "exception")
        .await;
    assert_eq!(status, 403);

    let path = |a: &str| format!("/api/enrollment-requests/{id}/{a}");
    let (status, body) = w
        .post(&path("approve"), "agent", json!({ "patient_id": jane }))
        .await;
    assert_eq!((status, code(&body)), (409, "not-claimed"), "{body}");
    let (status, body) = w.post(&path("claim"), "agent", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claimed_by"], "client:agent");
    let (status, body) = w.post(&path("claim"), "agent2", json!({})).await;
    assert_eq!((status, code(&body)), (409, "claimed-by-other"), "{body}");
    let (status, body) = w
        .post(&path("approve"), "agent2", json!({ "patient_id": jane }))
        .await;
    assert_eq!((status, code(&body)), (409, "claimed-by-other"), "{body}");

    let (status, matches) = w.get(&path("matches"), "agent").await;
    assert_eq!(status, 200, "{matches}");
    assert_eq!(matches["patients"][0]["id"], jane.as_str(), "{matches}");
    let (_, elsewhere) = w
        .get(&format!("{}?facility=OTHERHOSP", path("matches")), "agent")
        .await;
    assert_eq!(elsewhere["patients"].as_array().unwrap().len(), 0, "{elsewhere}");
    let (_, here) = w
        .get(&format!("{}?facility=HOSPA", path("matches")), "agent")
        .await;
    assert_eq!(here["patients"][0]["id"], jane.as_str(), "{here}");

    let (status, body) = w
        .post(&path("approve"), "agent", json!({ "patient_id": "no-such" }))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = w
        .post(&path("approve"), "agent", json!({ "patient_id": jane }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["request"]["state"], "approved");
    assert_eq!(body["enrollment"]["member"]["status"], "pending");
    assert_eq!(body["enrollment"]["member"]["enrollment"], "self-requested");
    assert!(body["enrollment"].get("instructions").is_none());
    let message = nth(&w.email, 1).await;
    assert!(message.contains("jane.requests@example.org") || !token_in(&message).is_empty());
    let (status, body) = w.activate(&token_in(&message), "jane.doe").await;
    assert_eq!(status, 200, "{body}");

    // Closed: out of the queue, acted on no more, its history kept.
    let (_, queue) = w.get("/api/enrollment-requests?queue=request", "agent").await;
    assert_eq!(queue["requests"].as_array().unwrap().len(), 0);
    let (status, body) = w.post(&path("decline"), "agent", json!({})).await;
    assert_eq!((status, code(&body)), (409, "request-closed"));
    let (status, request) = w.get(&format!("/api/enrollment-requests/{id}"), "agent").await;
    assert_eq!(status, 200);
    let steps: Vec<&str> = request["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["submitted", "claimed", "approved"]);
    assert_eq!(request["history"][1]["actor"], "client:agent");

    // A second request for an enrolled patient cannot be approved.
    let (_, again) = w
        .post("/api/enrollment-requests", "portal", request_from_jane())
        .await;
    let again = again["id"].as_str().unwrap().to_string();
    w.post(
        &format!("/api/enrollment-requests/{again}/claim"),
        "agent",
        json!({}),
    )
    .await;
    let (status, body) = w
        .post(
            &format!("/api/enrollment-requests/{again}/approve"),
            "agent",
            json!({ "patient_id": jane }),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "already-enrolled"), "{body}");
}

#[tokio::test]
async fn requests_are_forwarded_to_the_exception_queue_and_declined_with_a_message() {
    let w = start("").await;
    let (_, submitted) = w
        .post("/api/enrollment-requests", "portal", request_from_jane())
        .await;
    let id = submitted["id"].as_str().unwrap().to_string();
    let path = |a: &str| format!("/api/enrollment-requests/{id}/{a}");

    let (status, _) = w
        .post(&path("forward"), "exception", json!({ "message": "x" }))
        .await;
    assert_eq!(status, 403, "exception agents do not forward");
    let (status, body) = w
        .post(&path("forward"), "agent", json!({ "message": "no match" }))
        .await;
    assert_eq!((status, code(&body)), (409, "not-claimed"));
    w.post(&path("claim"), "agent", json!({})).await;
    let (status, body) = w.post(&path("forward"), "agent", json!({ "message": " " })).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = w
        .post(
            &path("forward"),
            "agent",
            json!({ "message": "no patient matches" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["queue"].as_str(), body["state"].as_str()),
        (Some("exception"), Some("open"))
    );

    // Now the exception agents' task, not the request agents'.
    let (_, queue) = w
        .get("/api/enrollment-requests?queue=exception", "exception")
        .await;
    assert_eq!(queue["requests"][0]["id"], id.as_str());
    let (_, queue) = w.get("/api/enrollment-requests?queue=request", "agent").await;
    assert_eq!(queue["requests"].as_array().unwrap().len(), 0);
    let (status, _) = w.post(&path("claim"), "agent", json!({})).await;
    assert_eq!(status, 403);
    let (status, _) = w.get(&path("matches"), "agent").await;
    assert_eq!(status, 403);
    let (status, body) = w.post(&path("claim"), "exception", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w
        .post(&path("decline"), "exception", json!({ "send_message": true }))
        .await;
    assert_eq!(status, 422, "a message to send is required: {body}");
    let (status, body) = w
        .post(
            &path("decline"),
            "exception",
            json!({ "message": "Please call the registration desk.", "send_message": true }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let message = nth(&w.email, 1).await;
    assert!(
        message.contains("Please call the registration desk."),
        "{message}"
    );
    assert!(message.contains("could not approve"));

    let (_, request) = w.get(&format!("/api/enrollment-requests/{id}"), "agent").await;
    let history: Vec<(String, String)> = request["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap().into(),
                s["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("submitted".into(), "client:portal".into()),
            ("claimed".into(), "client:agent".into()),
            ("forwarded to exception queue".into(), "client:agent".into()),
            ("claimed".into(), "client:exception".into()),
            ("declined".into(), "client:exception".into()),
        ]
    );
    assert_eq!(request["history"][2]["message"], "no patient matches");

    // Declined without telling the requester: nothing sent.
    let (_, other) = w
        .post("/api/enrollment-requests", "portal", request_from_jane())
        .await;
    let other = other["id"].as_str().unwrap().to_string();
    w.post(
        &format!("/api/enrollment-requests/{other}/claim"),
        "agent",
        json!({}),
    )
    .await;
    let (status, _) = w
        .post(
            &format!("/api/enrollment-requests/{other}/decline"),
            "agent",
            json!({ "message": "duplicate" }),
        )
        .await;
    assert_eq!(status, 200);
    settle().await;
    assert_eq!(w.email.received().len(), 1);
    let (_, trail) = w
        .get(
            &format!("/api/audit?target=enrollment-request/{other}"),
            "manager",
        )
        .await;
    let last = trail["records"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["reason"].as_str()),
        (Some("request.decline"), Some("duplicate"))
    );
}

#[tokio::test]
async fn an_external_system_enrolls_a_patient_by_identifier() {
    // The site does not send passphrases, but nobody could hand this one over: it is sent.
    let w = start("passphrase_required = true\nsend_passphrase = false").await;
    let jane = w.jane().await;
    let (status, _) = w
        .post(
            "/api/automated-enrollments",
            "portal",
            json!({ "identifier": "MRN00012345" }),
        )
        .await;
    assert_eq!(status, 403, "the self-service scope does not enroll");
    let (status, _) = w
        .post(
            "/api/automated-enrollments",
            "system-no-scope",
            json!({ "identifier": "MRN00012345" }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = w
        .post(
            "/api/automated-enrollments",
            "crm",
            json!({ "identifier": "NO-SUCH-MRN" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = w
        .post(
            "/api/automated-enrollments",
            "crm",
            json!({ "identifier": "urn:oid:2.16.840.1.113883.3.9999.2|MRN00012345" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["member"]["patient_id"], jane.as_str());
    assert_eq!(body["member"]["enrollment"], "automated");
    assert_eq!(
        body["member"]["contact"]["email"], "jane.doe@example.org",
        "from the patient record"
    );
    assert!(
        body.get("instructions").is_none(),
        "the token is not shown to the external system"
    );
    // The token and the generated passphrase go to the member, who activates with both.
    let message = nth(&w.email, 1).await;
    assert!(
        message.contains("jane.doe@example.org") || message.contains("passphrase"),
        "{message}"
    );
    let passphrase = message
        .split("passphrase: ")
        .nth(1)
        .map(|rest| rest.chars().take(19).collect::<String>())
        .expect("the passphrase is sent");
    let token = token_in(&message);
    let (status, body) = w
        .post(
            "/api/activation",
            "portal",
            json!({ "token": token, "passphrase": passphrase, "username": "jane.doe", "password": "long enough password" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = w
        .post(
            "/api/automated-enrollments",
            "crm",
            json!({ "identifier": "MRN00012345" }),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "already-enrolled"));
    let (_, trail) = w.get(&format!("/api/audit?member={jane}"), "manager").await;
    assert_eq!(trail["records"][0]["actor"], "client:crm");
    assert_eq!(trail["records"][0]["details"]["method"], "automated");
}
