//! Care plans over HTTP against the real engine (issue 16): Care Community posts a
//! Questionnaire and CarePlans as FHIR R4; the signed-in member sees the plan on their To Do
//! list, answers its questionnaire, and the QuestionnaireResponse and the plan, now completed,
//! reach Care Community (a real HTTP receiver) through the outbox; the plan then shows under
//! completed. A granted proxy reads the principal's plans; the site switch hides them.

use crate::common::code;
use crate::common::peers::HttpReceiver;
use crate::credentials_support::{active_jane, as_member, session_of};
use crate::members_support::{World, start};
use serde_json::{Value, json};

const PHQ2: &str = "https://care.example/Questionnaire/phq-2";

/// Posts a resource to the FHIR endpoint as Care Community's client; answers its id.
async fn post_fhir(w: &World, resource: Value) -> String {
    let kind = resource["resourceType"].as_str().unwrap().to_string();
    let (status, answer) = w.post(&format!("/fhir/{kind}"), "fhir", resource).await;
    assert_eq!(status, 201, "{kind}: {answer}");
    answer["id"].as_str().unwrap().to_string()
}

async fn answer_as(w: &World, path: &str, session: &str, body: Value) -> (u16, Value) {
    let response = w
        .http
        .post(format!("{}{path}", w.engine.http))
        .bearer_auth(session)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn titles(plans: &Value, list: &str) -> Vec<String> {
    plans[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {plans}"))
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_member_answers_a_care_plans_questionnaire_and_care_community_receives_it() {
    let care_community = HttpReceiver::start().await;
    let extra = format!(
        "[credentials]\nmode = \"portal\"\ntwo_factor = false\n\n\
         [records]\ncare_plan_destinations = [\"care-community\"]\n\n\
         [[destinations]]\nname = \"care-community\"\nkind = \"http\"\n\
         [destinations.settings]\nurl = \"{}\"\n",
        care_community.url("/fhir")
    );
    let w = start(&extra).await;
    let jane = active_jane(&w).await;
    let subject = json!({ "reference": format!("Patient/{jane}") });
    post_fhir(&w, json!({
        "resourceType": "Questionnaire", "url": PHQ2, "title": "Mood check", "status": "active",
        "item": [{ "linkId": "1", "text": "Little interest or pleasure in doing things?", "type": "integer" }]
    }))
    .await;
    let plan = post_fhir(
        &w,
        json!({
            "resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": subject,
            "title": "Diabetes self-management", "period": { "start": "2025-09-01" },
            "author": { "display": "Care Community" },
            "activity": [
                { "detail": { "status": "scheduled", "description": "Fill in the mood check",
                              "instantiatesCanonical": [PHQ2] } },
                { "detail": { "status": "in-progress", "description": "Walk 30 minutes a day" } }
            ]
        }),
    )
    .await;
    post_fhir(
        &w,
        json!({
            "resourceType": "CarePlan", "status": "completed", "intent": "plan", "subject": subject,
            "title": "Post-operative recovery", "period": { "start": "2024-01-10", "end": "2024-03-01" }
        }),
    )
    .await;
    let session = session_of(&w, "jane").await;

    let (status, plans) = as_member(&w, "GET", "/api/me/care-plans", &session).await;
    assert_eq!(status, 200, "{plans}");
    assert_eq!(titles(&plans, "todo"), ["Diabetes self-management"]);
    assert_eq!(titles(&plans, "active"), ["Diabetes self-management"]);
    assert_eq!(titles(&plans, "completed"), ["Post-operative recovery"]);
    let asked = &plans["todo"][0]["activities"][0]["questionnaire"];
    assert_eq!(asked["url"], PHQ2);
    assert_eq!(
        asked["title"], "Mood check",
        "the stored Questionnaire, for the portal to render"
    );
    assert_eq!(plans["todo"][0]["activities"][1]["questionnaire"], Value::Null);

    // An answer to a questionnaire the plan does not ask for is refused; nothing is sent.
    let path = format!("/api/me/care-plans/{plan}/questionnaire-response");
    let (status, refused) = answer_as(&w, &path, &session, json!({
        "resourceType": "QuestionnaireResponse", "questionnaire": "https://care.example/Questionnaire/other",
        "status": "completed"
    }))
    .await;
    assert_eq!(status, 422, "{refused}");
    let response = json!({
        "resourceType": "QuestionnaireResponse", "questionnaire": PHQ2, "status": "completed",
        "item": [{ "linkId": "1", "answer": [{ "valueInteger": 1 }] }]
    });
    let (status, answered) = answer_as(&w, &path, &session, response.clone()).await;
    assert_eq!(status, 201, "{answered}");
    assert_eq!(
        answered["care_plan"]["status"], "completed",
        "its one questionnaire is answered"
    );
    assert_eq!(answered["pushed"].as_array().unwrap().len(), 2, "{answered}");

    // Care Community receives the response and the plan, as FHIR JSON.
    let received = care_community.wait_for(2).await;
    let bodies: Vec<Value> = received
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let sent = |kind: &str| {
        bodies
            .iter()
            .find(|b| b["resourceType"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {bodies:?}"))
            .clone()
    };
    let sent_response = sent("QuestionnaireResponse");
    assert_eq!(sent_response["questionnaire"], PHQ2);
    assert_eq!(
        sent_response["basedOn"][0]["reference"],
        format!("CarePlan/{plan}")
    );
    assert_eq!(sent_response["subject"]["reference"], format!("Patient/{jane}"));
    assert_eq!(sent_response["item"][0]["answer"][0]["valueInteger"], 1);
    let sent_plan = sent("CarePlan");
    assert_eq!(sent_plan["status"], "completed");
    assert_eq!(sent_plan["activity"][0]["detail"]["status"], "completed");

    let (_, plans) = as_member(&w, "GET", "/api/me/care-plans", &session).await;
    assert!(titles(&plans, "todo").is_empty(), "{plans}");
    assert_eq!(
        titles(&plans, "completed"),
        ["Diabetes self-management", "Post-operative recovery"]
    );
    let (status, closed) = answer_as(&w, &path, &session, response).await;
    assert_eq!((status, code(&closed)), (409, "plan-closed"), "{closed}");
    let (_, audit) = w
        .get(&format!("/api/audit?target=care-plan/{plan}"), "config")
        .await;
    assert_eq!(audit["records"].as_array().map(Vec::len), Some(1), "{audit}");

    // Sam, her proxy, reads her plans; she cannot read his.
    let sam = w.active_member(1, "SMITH", "sam", 2).await;
    w.relate(&jane, &sam, ("expires_at", "2099-01-01T00:00:00Z"))
        .await;
    let sam_session = session_of(&w, "sam").await;
    let (status, hers) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/care-plans"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200, "{hers}");
    assert_eq!(titles(&hers, "completed").len(), 2);
    let (status, refused) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{sam}/care-plans"),
        &session,
    )
    .await;
    assert_eq!((status, code(&refused)), (403, "no-proxy-access"), "{refused}");

    // The site stops showing Care Plans: the member's next read is refused.
    let (_, mut switches) = w.get("/api/settings/records", "config").await;
    switches["care_plans"] = json!(false);
    switches["reason"] = json!("Care plans move to the Care Community app");
    let (status, _) = w
        .call("PUT", "/api/settings/records", Some("config"), Some(switches))
        .await;
    assert_eq!(status, 200);
    let (status, off) = as_member(&w, "GET", "/api/me/care-plans", &session).await;
    assert_eq!((status, code(&off)), (404, "not-offered"), "{off}");
}
