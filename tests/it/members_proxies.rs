//! Proxy relationships over HTTP against the real engine: staff create one between members,
//! enroll a party who has no account or register a person the MPI does not know, revoke it with
//! a reason; both parties are told each time (through the outbox, into the gateways' folders);
//! the relationship is a FHIR RelatedPerson; members list theirs both ways; past its expiry it
//! grants nothing and the scheduled job marks it and tells both; with external credentials only,
//! both parties must already be active members.

use std::time::Duration;

use crate::common::code;
use crate::credentials_support::idp::Idp;
use crate::credentials_support::{PASSWORD, active_jane, as_member, audit_actions};
use crate::members_support::{World, nth, start, token_in};
use serde_json::{Value, json};

fn relationship(principal: Value, proxy: Value, expires_on: &str) -> Value {
    json!({
        "principal": principal,
        "proxy": proxy,
        "relationship": "PRN",
        "expires_on": expires_on,
        "reason": "parent of the patient, consent form on file",
    })
}

async fn fhir(w: &World, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}/fhir/{path}", w.engine.http);
    let mut request = match method {
        "GET" => w.http.get(url),
        "PUT" => w.http.put(url),
        "DELETE" => w.http.delete(url),
        other => panic!("method {other}"),
    };
    request = request.bearer_auth(crate::common::FHIR_KEY);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Waits until `n` messages containing `text` have arrived (panics after 20 s); returns them.
async fn wait_containing(inbox: &crate::members_support::Inbox, text: &str, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = containing(&inbox.received(), text);
        if found.len() >= n {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} `{text}` messages",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Messages received so far that contain `text`.
fn containing(received: &[String], text: &str) -> Vec<String> {
    received.iter().filter(|m| m.contains(text)).cloned().collect()
}

#[tokio::test]
async fn staff_relate_two_members_both_are_told_and_a_revocation_needs_a_reason() {
    let w = start("").await;
    let jane = w.jane().await;
    let sam = w.patient(1, "SMITH").await;
    w.enroll(&jane).await;
    w.enroll(&sam).await;

    let (status, types) = w.get("/api/proxy-relationship-types", "manager").await;
    assert_eq!(status, 200, "{types}");
    assert!(
        types["types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == "PRN")
    );
    assert_eq!(
        types["system"],
        "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    );

    // Only a Member Account Manager creates one.
    let body = relationship(
        json!({"patient_id": jane}),
        json!({"patient_id": sam}),
        "2099-01-01",
    );
    let (status, _) = w.post("/api/proxies", "desk", body.clone()).await;
    assert_eq!(status, 403);

    let (status, created) = w.post("/api/proxies", "manager", body.clone()).await;
    assert_eq!(status, 201, "{created}");
    let rel = &created["relationship"];
    let id = rel["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("proxy-"), "{id}");
    assert_eq!(rel["status"], "active");
    assert_eq!(rel["grants_access"], true);
    assert_eq!(rel["principal"]["patient_id"], jane.as_str());
    assert_eq!(rel["proxy"]["patient_id"], sam.as_str());
    assert_eq!(rel["relationship"]["display"], "parent");
    assert_eq!(rel["expires_at"], "2099-01-01T00:00:00.000Z");
    assert!(
        created.get("principal_enrolled").is_none(),
        "both were members: {created}"
    );
    for side in ["principal", "proxy"] {
        assert_eq!(
            created["notifications"][side]["deliveries"]
                .as_array()
                .unwrap()
                .len(),
            2,
            "email and text to the {side}: {created}"
        );
    }
    // Both parties got an email and a text saying so.
    let told = wait_containing(&w.email, "can now act for", 2).await;
    assert!(
        told.iter().any(|m| m.contains("Hello DOE, JANE QUINN,")),
        "{told:?}"
    );
    assert!(
        told.iter().any(|m| m.contains("Hello SMITH, ANNA QUINN,")),
        "{told:?}"
    );
    assert!(
        told[0].contains("SMITH, ANNA QUINN can now act for DOE, JANE QUINN"),
        "{}",
        told[0]
    );
    assert!(told[0].contains("until 2099-01-01"), "{}", told[0]);
    wait_containing(&w.sms, "can now act for", 2).await;

    // The same pair again while it is active: refused.
    let (status, again) = w.post("/api/proxies", "manager", body.clone()).await;
    assert_eq!((status, code(&again)), (409, "already-related"), "{again}");

    // Bad requests say what is wrong and write nothing.
    let mut bad = body.clone();
    bad["relationship"] = json!("COUSIN-OF-A-FRIEND");
    let (status, answer) = w.post("/api/proxies", "manager", bad).await;
    assert_eq!((status, code(&answer)), (422, "unknown-relationship"), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("PRN"), "{answer}");
    let (status, answer) = w
        .post(
            "/api/proxies",
            "manager",
            relationship(
                json!({"patient_id": sam}),
                json!({"patient_id": jane}),
                "2001-01-01",
            ),
        )
        .await;
    assert_eq!((status, code(&answer)), (422, "expiry-past"), "{answer}");
    let mut bad = body.clone();
    bad.as_object_mut().unwrap().remove("expires_on");
    let (status, answer) = w.post("/api/proxies", "manager", bad).await;
    assert_eq!((status, code(&answer)), (422, "expiry-required"), "{answer}");
    let mut bad = body.clone();
    bad["reason"] = json!("  ");
    let (status, _) = w.post("/api/proxies", "manager", bad).await;
    assert_eq!(status, 422);
    let (status, answer) = w
        .post(
            "/api/proxies",
            "manager",
            relationship(
                json!({"patient_id": sam}),
                json!({"patient_id": sam}),
                "2099-01-01",
            ),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = w
        .post(
            "/api/proxies",
            "manager",
            relationship(
                json!({"patient_id": "no-such-patient"}),
                json!({"patient_id": sam}),
                "2099-01-01",
            ),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = w
        .post("/api/proxies", "manager", json!({ "principal": {}, "proxy": {} }))
        .await;
    assert_eq!(status, 400, "{answer}");

    // Listed both ways.
    let (status, of_jane) = w.get(&format!("/api/members/{jane}/proxies"), "manager").await;
    assert_eq!(status, 200, "{of_jane}");
    assert_eq!(of_jane["as_principal"].as_array().unwrap().len(), 1);
    assert_eq!(of_jane["as_proxy"].as_array().unwrap().len(), 0);
    let (_, of_sam) = w.get(&format!("/api/members/{sam}/proxies"), "manager").await;
    assert_eq!(of_sam["as_proxy"][0]["id"], id.as_str());
    // The member details show them too.
    let (_, details) = w.get(&format!("/api/members/{jane}"), "manager").await;
    assert_eq!(
        details["proxies"]["as_principal"][0]["id"],
        id.as_str(),
        "{details}"
    );
    assert_eq!(
        details["proxies"]["as_principal"][0]["proxy"]["name"],
        "SMITH, ANNA QUINN"
    );
    assert_eq!(of_sam["as_principal"].as_array().unwrap().len(), 0);

    // A FHIR RelatedPerson, found by the principal, not writable through FHIR.
    let (status, person) = fhir(&w, "GET", &format!("RelatedPerson/{id}"), None).await;
    assert_eq!(status, 200, "{person}");
    assert_eq!(person["patient"]["reference"], format!("Patient/{jane}"));
    assert_eq!(person["active"], true);
    assert_eq!(person["relationship"][0]["coding"][0]["code"], "PRN");
    assert_eq!(person["name"][0]["family"], "SMITH");
    assert_eq!(person["period"]["end"], "2099-01-01T00:00:00.000Z");
    assert_eq!(
        person["extension"][0]["valueReference"]["reference"],
        format!("Patient/{sam}")
    );
    let (status, bundle) = fhir(&w, "GET", &format!("RelatedPerson?patient=Patient/{jane}"), None).await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["total"], 1, "{bundle}");
    let (status, outcome) = fhir(&w, "PUT", &format!("RelatedPerson/{id}"), Some(person.clone())).await;
    assert_eq!(status, 405, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let (status, _) = fhir(&w, "DELETE", &format!("RelatedPerson/{id}"), None).await;
    assert_eq!(status, 405);

    // Revoking needs a reason; both are told; it cannot be revoked twice.
    let revoke = format!("/api/proxies/{id}/revoke");
    let (status, answer) = w.post(&revoke, "manager", json!({})).await;
    assert_eq!(status, 422, "{answer}");
    let (status, revoked) = w
        .post(&revoke, "manager", json!({ "reason": "the court order ended" }))
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["grants_access"], false);
    assert_eq!(revoked["end_reason"], "the court order ended");
    wait_containing(&w.email, "can no longer act for", 2).await;
    let (status, answer) = w.post(&revoke, "manager", json!({ "reason": "again" })).await;
    assert_eq!((status, code(&answer)), (409, "not-active"), "{answer}");
    let (_, person) = fhir(&w, "GET", &format!("RelatedPerson/{id}"), None).await;
    assert_eq!(person["active"], false);
    assert_eq!(person["meta"]["versionId"], "2");

    // The RelatedPerson follows the proxy's records: a contact edit, a rename by the feed; a
    // change that does not touch it makes no new version.
    let contact = json!({ "contact": { "email": "sam.new@example.org", "mobile": "+1 617 555 0000",
        "preference": "both" }, "reason": "new address" });
    let (status, answer) = w
        .call(
            "PUT",
            &format!("/api/members/{sam}/contact"),
            Some("manager"),
            Some(contact),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (_, person) = fhir(&w, "GET", &format!("RelatedPerson/{id}"), None).await;
    assert_eq!(person["telecom"][0]["value"], "sam.new@example.org", "{person}");
    assert_eq!(person["meta"]["versionId"], "3");
    w.feed(&crate::members_support::variant(
        "ucr/adt_a28_new_patient.hl7",
        "RENAME-1",
        &[
            ("1000234567", "2000000001"),
            ("MRN00012345", "MRNX00001"),
            ("DOE^JANE", "SMYTHE^ANNA"),
            ("jane.doe@example.org", "p1@example.org"),
            ("5559876", "5500001"),
        ],
    ))
    .await;
    let (_, person) = fhir(&w, "GET", &format!("RelatedPerson/{id}"), None).await;
    assert_eq!(person["name"][0]["family"], "SMYTHE", "{person}");
    assert_eq!(person["meta"]["versionId"], "4");
    let (status, _) = w
        .post(&format!("/api/members/{jane}/token/resend"), "manager", json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, person) = fhir(&w, "GET", &format!("RelatedPerson/{id}"), None).await;
    assert_eq!(
        person["meta"]["versionId"], "4",
        "the principal's change is not the proxy's"
    );

    // Inactive relationships stay listed; a new one may now be made for the pair.
    let (_, of_jane) = w.get(&format!("/api/members/{jane}/proxies"), "manager").await;
    assert_eq!(of_jane["as_principal"][0]["status"], "revoked");
    let (status, answer) = w.post("/api/proxies", "manager", body).await;
    assert_eq!(status, 201, "{answer}");

    // The audit trail of each party has the creation and the revocation with its reason.
    let actions = audit_actions(&w, &format!("member/{sam}")).await;
    let proxy_actions: Vec<&(String, Value)> =
        actions.iter().filter(|(a, _)| a.starts_with("proxy.")).collect();
    assert_eq!(proxy_actions.len(), 3, "{actions:?}");
    assert_eq!(proxy_actions[1].0, "proxy.revoke");
    let (_, records) = w
        .get(&format!("/api/audit?target=member/{jane}&limit=100"), "manager")
        .await;
    let revocation = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "proxy.revoke")
        .expect("a revocation record")
        .clone();
    assert_eq!(revocation["reason"], "the court order ended");
    assert_eq!(revocation["actor"], "client:manager");
}

#[tokio::test]
async fn a_party_without_an_account_is_enrolled_and_a_person_outside_the_mpi_is_registered() {
    let w = start("").await;
    let jane = w.jane().await;
    let body = json!({
        // Jane has no account: one is made from her patient record's contact details.
        "principal": { "patient_id": jane },
        "proxy": {
            "register": { "family": "ROE", "given": ["RICHARD"], "birth_date": "1960-02-29", "gender": "male" },
            "contact": { "email": "richard.roe@example.org", "mobile": "+1 617 555 0199",
                "preference": "both", "locales": ["ar"] },
            "generate_passphrase": true,
        },
        "relationship": "GRD",
        "expires_at": "2030-06-30T12:00:00+02:00",
        "reason": "guardian appointed by the family court",
    });
    let (status, created) = w.post("/api/proxies", "manager", body.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["relationship"]["expires_at"], "2030-06-30T10:00:00.000Z");
    assert_eq!(created["principal_enrolled"]["member"]["status"], "pending");
    assert_eq!(created["principal_enrolled"]["member"]["proxy_only"], false);
    assert_eq!(
        created["principal_enrolled"]["member"]["contact"]["email"],
        "jane.doe@example.org"
    );
    let registered = created["registered"].as_str().unwrap().to_string();
    assert_eq!(
        created["proxy_enrolled"]["member"]["patient_id"],
        registered.as_str()
    );
    // Registered only to act for someone: a proxy-only account.
    assert_eq!(created["proxy_enrolled"]["member"]["proxy_only"], true);
    let passphrase = created["proxy_enrolled"]["generated_passphrase"]
        .as_str()
        .unwrap();
    assert!(passphrase.len() >= 6);

    // The registered person is a local patient record, tagged as not from the MPI.
    let (status, patient) = fhir(&w, "GET", &format!("Patient/{registered}"), None).await;
    assert_eq!(status, 200, "{patient}");
    assert_eq!(patient["name"][0]["family"], "ROE");
    assert_eq!(patient["birthDate"], "1960-02-29");
    assert_eq!(patient["meta"]["tag"][0]["code"], "registered");
    let (_, member) = w.get(&format!("/api/members/{registered}"), "manager").await;
    assert_eq!(member["status"], "pending");

    // Each got their activation token and the relationship notice; Richard's are in Arabic.
    let texts = w.sms.wait_for(2).await;
    let to_richard: Vec<&String> = texts.iter().filter(|t| t.contains("بوابة المرضى")).collect();
    assert_eq!(
        to_richard.len(),
        2,
        "activation and relationship texts: {texts:?}"
    );
    let emails = w.email.wait_for(4).await;
    assert_eq!(containing(&emails, "token=").len(), 2, "{emails:?}");

    // A registration needs contact details and a family name; bad dates are refused.
    let mut bad = body.clone();
    bad["proxy"].as_object_mut().unwrap().remove("contact");
    bad["principal"] = json!({ "patient_id": registered });
    let (status, answer) = w.post("/api/proxies", "manager", bad).await;
    assert_eq!(status, 422, "{answer}");
    let mut bad = body.clone();
    bad["proxy"]["register"]["birth_date"] = json!("1960-02-30");
    let (status, answer) = w.post("/api/proxies", "manager", bad).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("1960-02-30"),
        "{answer}"
    );
    let mut bad = body.clone();
    bad["proxy"] = json!({ "patient_id": jane, "register": { "family": "X" } });
    let (status, _) = w.post("/api/proxies", "manager", bad).await;
    assert_eq!(status, 422);
    // Only a proxy is registered: the principal is a synced patient.
    let mut bad = body.clone();
    bad["principal"] = body["proxy"].clone();
    bad["proxy"] = json!({ "patient_id": jane });
    let (status, answer) = w.post("/api/proxies", "manager", bad).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("only a proxy"),
        "{answer}"
    );

    // A member flagged inactive cannot take part.
    let sam = w.patient(1, "SMITH").await;
    w.enroll(&sam).await;
    let token = token_in(&nth(&w.email, 5).await);
    let (status, body) = w.activate(&token, "sam").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = w
        .post(
            &format!("/api/members/{sam}/deactivate"),
            "manager",
            json!({ "reason": "moved away" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = w
        .post(
            "/api/proxies",
            "manager",
            json!({ "principal": { "patient_id": jane }, "proxy": { "patient_id": sam },
                "relationship": "SPS", "expires_on": "2099-01-01", "reason": "spouse" }),
        )
        .await;
    assert_eq!((status, code(&answer)), (409, "member-inactive"), "{answer}");
    // Nothing of a refused creation is kept.
    let (_, of_sam) = w.get(&format!("/api/members/{sam}/proxies"), "manager").await;
    assert_eq!(of_sam["as_proxy"].as_array().unwrap().len(), 0, "{of_sam}");
}

#[tokio::test]
async fn past_its_expiry_a_relationship_grants_nothing_and_the_job_marks_it_and_tells_both() {
    let w = start(
        "[credentials]\nmode = \"portal\"\ntwo_factor = false\n\n[[schedule]]\njob = \"proxy-expiry\"\ncron = \"* * * * * *\"\n",
    )
    .await;
    let jane = active_jane(&w).await;
    let sam = w.active_member(1, "SMITH", "sam", 2).await;

    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = w.relate(&jane, &sam, ("expires_at", &expires_at)).await;

    // Sam signs in and may open Jane's account; Jane may not open Sam's.
    let (status, signed) = w
        .post(
            "/api/sign-in",
            "portal",
            json!({ "username": "sam", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    let sam_session = signed["session"].as_str().unwrap().to_string();
    let (status, acting) = as_member(&w, "GET", &format!("/api/me/principals/{jane}"), &sam_session).await;
    assert_eq!(status, 200, "{acting}");
    assert_eq!(acting["principal"]["name"], "DOE, JANE QUINN");
    assert_eq!(acting["relationship"]["id"], id.as_str());
    let (status, mine) = as_member(&w, "GET", "/api/me/proxies", &sam_session).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["as_proxy"][0]["status"], "active");
    let (_, jane_signed) = w
        .post(
            "/api/sign-in",
            "portal",
            json!({ "username": "jane", "password": PASSWORD }),
        )
        .await;
    let jane_session = jane_signed["session"].as_str().unwrap().to_string();
    let (status, answer) = as_member(&w, "GET", &format!("/api/me/principals/{sam}"), &jane_session).await;
    assert_eq!((status, code(&answer)), (403, "no-proxy-access"), "{answer}");
    let (_, jane_mine) = as_member(&w, "GET", "/api/me/proxies", &jane_session).await;
    assert_eq!(jane_mine["as_principal"][0]["id"], id.as_str());

    // As Jane's proxy, Sam (his own session beside the portal's key) may update her profile;
    // Jane may not update Sam's.
    let profile =
        |who: &str, mobile: &str| (format!("/api/members/{who}/profile"), json!({ "mobile": mobile }));
    let (path, change) = profile(&sam, "+1 617 555 0143");
    let (status, answer) = w
        .call_as("PUT", &path, Some("portal"), Some(&jane_session), Some(change))
        .await;
    assert_eq!((status, code(&answer)), (403, "proxy-not-permitted"), "{answer}");
    let (path, change) = profile(&jane, "+1 617 555 0142");
    let (status, answer) = w
        .call_as("PUT", &path, Some("portal"), Some(&sam_session), Some(change))
        .await;
    assert_eq!(status, 200, "{answer}");
    // Her new number ended Jane's own sessions; Sam's goes on.
    let (status, _) = as_member(&w, "GET", "/api/me", &jane_session).await;
    assert_eq!(status, 401);
    let actions = audit_actions(&w, &format!("member/{jane}")).await;
    let update = actions
        .iter()
        .find(|(a, _)| a == "member.profile.update")
        .unwrap();
    assert_eq!(update.1["proxy"], sam.as_str(), "{update:?}");

    // Past the expiry: no access, whether or not the job has run yet.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let (status, answer) = as_member(&w, "GET", &format!("/api/me/principals/{jane}"), &sam_session).await;
    assert_eq!((status, code(&answer)), (403, "no-proxy-access"), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("expired"), "{answer}");
    let (path, change) = profile(&jane, "+1 617 555 0144");
    let (status, answer) = w
        .call_as("PUT", &path, Some("portal"), Some(&sam_session), Some(change))
        .await;
    assert_eq!((status, code(&answer)), (403, "proxy-not-permitted"), "{answer}");

    // The job marks it and both parties are told, once.
    let told = wait_containing(&w.email, "ended on", 2).await;
    assert!(
        told.iter().any(|m| m.contains("Hello DOE, JANE QUINN,")),
        "{told:?}"
    );
    let (_, rel) = w.get(&format!("/api/proxies/{id}"), "manager").await;
    assert_eq!(rel["status"], "expired");
    assert_eq!(rel["ended_by"], "schedule:proxy-expiry");
    let (_, person) = fhir(&w, "GET", &format!("RelatedPerson/{id}"), None).await;
    assert_eq!(person["active"], false);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(containing(&w.email.received(), "ended on").len(), 2);
    let actions = audit_actions(&w, &format!("member/{jane}")).await;
    assert_eq!(
        actions.iter().filter(|(a, _)| a == "proxy.expire").count(),
        1,
        "{actions:?}"
    );
    // An expired relationship cannot be revoked.
    let (status, answer) = w
        .post(
            &format!("/api/proxies/{id}/revoke"),
            "manager",
            json!({ "reason": "x" }),
        )
        .await;
    assert_eq!((status, code(&answer)), (409, "not-active"), "{answer}");
}

#[tokio::test]
async fn with_external_credentials_only_both_parties_must_already_be_active_members() {
    let idp = Idp::start("national").await;
    let w = start(&format!(
        "[credentials]\nmode = \"external\"\n{}",
        idp.config("national", "")
    ))
    .await;
    let jane = active_jane(&w).await;
    let sam = w.patient(1, "SMITH").await;
    let body = |proxy: Value| {
        json!({ "principal": { "patient_id": jane }, "proxy": proxy, "relationship": "PRN",
            "expires_on": "2099-01-01", "reason": "parent" })
    };
    // No account: not created here.
    let (status, answer) = w
        .post("/api/proxies", "manager", body(json!({ "patient_id": sam })))
        .await;
    assert_eq!((status, code(&answer)), (409, "not-active-member"), "{answer}");
    // Nobody is registered here.
    let (status, answer) = w
        .post(
            "/api/proxies",
            "manager",
            body(json!({ "register": { "family": "ROE" },
                "contact": { "email": "r@example.org", "preference": "email" } })),
        )
        .await;
    assert_eq!(
        (status, code(&answer)),
        (409, "registration-not-allowed"),
        "{answer}"
    );
    // A pending member is not active yet.
    w.enroll(&sam).await;
    let (status, answer) = w
        .post("/api/proxies", "manager", body(json!({ "patient_id": sam })))
        .await;
    assert_eq!((status, code(&answer)), (409, "not-active-member"), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("pending"), "{answer}");
    // Once active, the relationship is made.
    let token = token_in(&nth(&w.email, 3).await);
    let (status, activated) = w.activate(&token, "sam").await;
    assert_eq!(status, 200, "{activated}");
    let (status, created) = w
        .post("/api/proxies", "manager", body(json!({ "patient_id": sam })))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("proxy_enrolled").is_none());

    // A patient makes their account by signing in with their external credential; then they
    // can take part.
    let lee = w.patient(2, "LEE").await;
    idp.user("lee-sub", "2000000002", "1984-03-12");
    let token = idp.sign(&idp.claims("lee-sub"));
    let (status, signed) = w
        .post("/api/sign-in/external", "portal", json!({ "token": token }))
        .await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["patient_id"], lee.as_str());
    let (status, created) = w
        .post("/api/proxies", "manager", body(json!({ "patient_id": lee })))
        .await;
    assert_eq!(status, 201, "{created}");
}
