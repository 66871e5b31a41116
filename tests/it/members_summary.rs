//! A member's Summary and the Records tab's site switches over HTTP against the real engine
//! (issue 16): Summary records fed as FHIR R4 (the Summary types, one entered in error), read
//! back by the signed-in member by type and by a granted proxy; then a Configuration Manager
//! changes the switches at run time (Summary types, result categories, Documents off, info
//! buttons with an education link, the whole tab off) and the member's next reads follow them.

use crate::common::code;
use crate::credentials_support::{active_jane, as_member, session_of};
use crate::members_support::{World, start, variant};
use serde_json::{Value, json};

/// Posts a record to the FHIR endpoint as the upstream feed's client; expects 201.
async fn post_record(w: &World, resource: Value) {
    let kind = resource["resourceType"].as_str().unwrap().to_string();
    let (status, answer) = w.post(&format!("/fhir/{kind}"), "fhir", resource).await;
    assert_eq!(status, 201, "{kind}: {answer}");
}

fn coded(system: &str, code: &str, text: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code, "display": text }], "text": text })
}

fn names(summary: &Value, kind: &str) -> Vec<String> {
    summary["summary"][kind]
        .as_array()
        .unwrap_or_else(|| panic!("no {kind} in {summary}"))
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_string())
        .collect()
}

async fn put_switches(w: &World, body: Value) -> (u16, Value) {
    w.call("PUT", "/api/settings/records", Some("config"), Some(body))
        .await
}

#[tokio::test]
async fn a_member_reads_their_summary_by_type_and_the_site_switches_change_what_shows_at_run_time() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = false\n").await;
    let jane = active_jane(&w).await;
    let subject = json!({ "reference": format!("Patient/{jane}") });
    let sct = "http://snomed.info/sct";
    post_record(&w, json!({
        "resourceType": "AllergyIntolerance", "patient": subject,
        "clinicalStatus": coded("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
        "code": coded(sct, "91936005", "Penicillin"), "criticality": "high", "recordedDate": "2024-02-10",
        "reaction": [{ "manifestation": [coded(sct, "271807003", "Rash")] }]
    })).await;
    post_record(&w, json!({
        "resourceType": "AllergyIntolerance", "patient": subject,
        "verificationStatus": coded("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "entered-in-error", "Entered in error"),
        "code": coded(sct, "300913006", "Shellfish"), "recordedDate": "2024-03-01"
    })).await;
    post_record(
        &w,
        json!({
            "resourceType": "Condition", "subject": subject,
            "code": coded(sct, "44054006", "Type 2 diabetes mellitus"), "onsetDateTime": "2019-06-01"
        }),
    )
    .await;
    post_record(&w, json!({
        "resourceType": "MedicationRequest", "subject": subject, "status": "active", "intent": "order",
        "medicationCodeableConcept": coded("http://www.nlm.nih.gov/research/umls/rxnorm", "860975", "Metformin 500 MG"),
        "authoredOn": "2025-01-15", "dosageInstruction": [{ "text": "One tablet twice a day" }]
    })).await;
    post_record(&w, json!({
        "resourceType": "MedicationStatement", "subject": subject, "status": "active",
        "medicationCodeableConcept": coded("http://www.nlm.nih.gov/research/umls/rxnorm", "197361", "Amlodipine 5 MG"),
        "effectiveDateTime": "2024-11-02"
    })).await;
    post_record(&w, json!({
        "resourceType": "Immunization", "patient": subject, "status": "completed",
        "vaccineCode": coded("http://hl7.org/fhir/sid/cvx", "140", "Influenza, seasonal"), "occurrenceDateTime": "2025-10-01"
    })).await;
    post_record(&w, json!({
        "resourceType": "CareTeam", "subject": subject, "status": "active", "name": "Diabetes care team",
        "participant": [{ "member": { "display": "Dr Kwame Osei" }, "role": [{ "text": "Endocrinologist" }] }]
    })).await;
    for (fixture, id) in [
        ("oru_r01_lab_panel.hl7", "SUMLAB"),
        ("oru_r01_radiology_report.hl7", "SUMRAD"),
    ] {
        let message = variant(
            &format!("ucr/{fixture}"),
            id,
            &[
                ("1000551903", "1000234567"),
                ("NGUYEN^LINH^THI", "DOE^JANE^QUINN"),
            ],
        );
        w.feed(&message).await;
    }
    let session = session_of(&w, "jane").await;

    let (status, summary) = as_member(&w, "GET", "/api/me/summary", &session).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["patient_id"], jane.as_str());
    assert_eq!(
        names(&summary, "allergies"),
        ["Penicillin"],
        "the one entered in error is left out"
    );
    let allergy = &summary["summary"]["allergies"][0];
    assert_eq!(allergy["status"], "active");
    assert_eq!(allergy["criticality"], "high");
    assert_eq!(allergy["reactions"], json!(["Rash"]));
    assert_eq!(allergy.get("info_url"), None, "info buttons are off by default");
    assert_eq!(names(&summary, "conditions"), ["Type 2 diabetes mellitus"]);
    // Newest first: the prescription of January 2025, then the statement of November 2024.
    assert_eq!(
        names(&summary, "medications"),
        ["Metformin 500 MG", "Amlodipine 5 MG"]
    );
    assert_eq!(
        summary["summary"]["medications"][0]["dosage"],
        "One tablet twice a day"
    );
    assert_eq!(names(&summary, "immunizations"), ["Influenza, seasonal"]);
    assert_eq!(names(&summary, "care-team"), ["Diabetes care team"]);
    assert_eq!(
        summary["summary"]["care-team"][0]["members"][0]["role"],
        "Endocrinologist"
    );
    assert!(names(&summary, "procedures").is_empty());
    let (_, one) = as_member(&w, "GET", "/api/me/summary?type=allergies", &session).await;
    assert_eq!(one["summary"].as_object().unwrap().len(), 1, "{one}");
    let (status, bad) = as_member(&w, "GET", "/api/me/summary?type=hobbies", &session).await;
    assert_eq!((status, code(&bad)), (400, "bad-type"), "{bad}");

    // Sam, her proxy, reads her Summary; she cannot read his.
    let sam = w.active_member(1, "SMITH", "sam", 2).await;
    w.relate(&jane, &sam, ("expires_at", "2099-01-01T00:00:00Z"))
        .await;
    let sam_session = session_of(&w, "sam").await;
    let (status, hers) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/summary"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200, "{hers}");
    assert_eq!(names(&hers, "allergies"), ["Penicillin"]);
    let (status, refused) =
        as_member(&w, "GET", &format!("/api/me/principals/{sam}/summary"), &session).await;
    assert_eq!((status, code(&refused)), (403, "no-proxy-access"), "{refused}");

    // A Configuration Manager reads the switches in force, then changes them at run time.
    let (status, switches) = w.get("/api/settings/records", "config").await;
    assert_eq!(status, 200, "{switches}");
    assert_eq!(switches["summary"], true);
    assert_eq!(switches["summary_types"].as_array().unwrap().len(), 7);
    let (status, _) = w.get("/api/settings/records", "portal").await;
    assert_eq!(status, 403, "configuration managers only");
    let mut changed = switches.clone();
    changed["summary_types"] = json!(["allergies", "medications"]);
    changed["result_categories"] = json!(["laboratory"]);
    changed["documents"] = json!(false);
    changed["info_buttons"] = json!(true);
    changed["education_link"] = json!("https://education.example/topic?code={code}&name={name}");
    let mut without_reason = changed.clone();
    without_reason["reason"] = json!(" ");
    assert_eq!(
        put_switches(&w, without_reason).await.0,
        422,
        "a reason is required"
    );
    let mut no_link = changed.clone();
    no_link["education_link"] = json!("");
    no_link["reason"] = json!("x");
    let (status, refused) = put_switches(&w, no_link).await;
    assert_eq!(status, 422, "info buttons need a link: {refused}");
    let mut unknown = changed.clone();
    unknown["summary_types"] = json!(["allergies", "hobbies"]);
    unknown["reason"] = json!("x");
    assert_eq!(put_switches(&w, unknown).await.0, 422);
    let (status, _) = put_switches(&w, json!({ "colour": "blue", "reason": "x" })).await;
    assert_eq!(status, 400, "an unknown switch is refused");
    changed["reason"] = json!("Pilot shows allergies and medications only");
    let (status, saved) = put_switches(&w, changed).await;
    assert_eq!(status, 200, "{saved}");
    let (_, audit) = w.get("/api/audit?target=settings/records", "config").await;
    assert_eq!(audit["records"].as_array().map(Vec::len), Some(1), "{audit}");

    let (_, summary) = as_member(&w, "GET", "/api/me/summary", &session).await;
    let shown: Vec<&String> = summary["summary"].as_object().unwrap().keys().collect();
    assert_eq!(shown, ["allergies", "medications"], "{summary}");
    assert_eq!(
        summary["summary"]["allergies"][0]["info_url"],
        "https://education.example/topic?code=91936005&name=Penicillin"
    );
    let (status, hidden) = as_member(&w, "GET", "/api/me/summary?type=conditions", &session).await;
    assert_eq!((status, code(&hidden)), (404, "not-offered"), "{hidden}");
    let (_, results) = as_member(&w, "GET", "/api/me/results", &session).await;
    let reports = results["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "imaging is not shown now: {results}");
    assert_eq!(reports[0]["category"], "laboratory");
    let glucose = reports[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Glucose")
        .unwrap();
    assert_eq!(
        glucose["info_url"],
        "https://education.example/topic?code=2345-7&name=Glucose"
    );
    let (status, off) = as_member(&w, "GET", "/api/me/documents", &session).await;
    assert_eq!((status, code(&off)), (404, "not-offered"), "{off}");

    // The whole Records tab off: none of its parts is served, to the member or their proxy.
    let (_, mut all_off) = w.get("/api/settings/records", "config").await;
    all_off["records"] = json!(false);
    all_off["reason"] = json!("Records tab withdrawn");
    assert_eq!(put_switches(&w, all_off).await.0, 200);
    for path in ["/api/me/summary", "/api/me/results"] {
        let (status, off) = as_member(&w, "GET", path, &session).await;
        assert_eq!((status, code(&off)), (404, "not-offered"), "{path}: {off}");
    }
    let (status, _) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/results"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 404);
}
