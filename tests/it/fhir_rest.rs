//! The FHIR R4 endpoint over HTTP: create, read, update, vread, history, delete, search with
//! paging, conditional create, Prefer, If-Match, JSON and XML, validation errors, transactions,
//! batches, PMIR patient feeds, PIXm and the CapabilityStatement.

use crate::common::{ANALYST_KEY, EngineProcess, FHIR_KEY, fixture, msa, temp_store};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

struct Http {
    base: String,
    client: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

impl Http {
    fn new(engine: &EngineProcess) -> Http {
        Http {
            base: format!("{}/fhir", engine.http),
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(FHIR_KEY);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_str(value).unwrap());
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    async fn raw(&self, method: &str, path: &str, content_type: &str, body: String) -> Answer {
        let response = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(FHIR_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, &[]).await
    }
}

fn start() -> (tempfile::TempDir, EngineProcess) {
    let (dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    (dir, engine)
}

fn task(patient: &str, status: &str) -> Value {
    json!({
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "for": { "reference": format!("Patient/{patient}") },
        "description": "Complete the intake questionnaire",
    })
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_task_is_created_read_updated_versioned_searched_and_deleted() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);

    let created = fhir.send("POST", "/Task", Some(&task("p1", "ready")), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let task_v1 = created.json();
    let id = task_v1["id"].as_str().unwrap().to_string();
    assert_eq!(task_v1["meta"]["versionId"], "1");
    assert_eq!(created.header("etag"), "W/\"1\"");
    assert!(
        created
            .header("location")
            .ends_with(&format!("/fhir/Task/{id}/_history/1"))
    );
    assert!(
        created
            .header("content-type")
            .starts_with("application/fhir+json")
    );

    let read = fhir.get(&format!("/Task/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), task_v1, "read back unchanged");
    assert!(!read.header("last-modified").is_empty());

    // If-Match: the wrong version is refused, the right one updates.
    let mut changed = task_v1.clone();
    changed["status"] = json!("completed");
    let stale = fhir
        .send(
            "PUT",
            &format!("/Task/{id}"),
            Some(&changed),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(stale.json()["resourceType"], "OperationOutcome");
    let updated = fhir
        .send(
            "PUT",
            &format!("/Task/{id}"),
            Some(&changed),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json()["meta"]["versionId"], "2");

    let v1 = fhir.get(&format!("/Task/{id}/_history/1")).await;
    assert_eq!(v1.status, 200);
    assert_eq!(v1.json()["status"], "ready");
    let v2 = fhir.get(&format!("/Task/{id}/_history/2")).await;
    assert_eq!(
        v2.status, 200,
        "the current version is a version too: {}",
        v2.text
    );
    assert_eq!(v2.json()["meta"]["versionId"], "2");
    assert_eq!(fhir.get(&format!("/Task/{id}/_history/3")).await.status, 404);
    let history = fhir.get(&format!("/Task/{id}/_history")).await.json();
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 2);
    assert_eq!(
        history["entry"][0]["resource"]["meta"]["versionId"], "2",
        "newest first"
    );

    let other = fhir
        .send("POST", "/Task", Some(&task("p2", "ready")), &[])
        .await
        .json();
    let search = fhir.get("/Task?patient=p1").await.json();
    assert_eq!(ids(&search), vec![id.clone()]);
    let search = fhir.get("/Task?status=ready").await.json();
    assert_eq!(ids(&search), vec![other["id"].as_str().unwrap().to_string()]);
    let search = fhir.get("/Task?patient=Patient/p1&status=completed").await.json();
    assert_eq!(search["total"], 1);

    assert_eq!(
        fhir.send("DELETE", &format!("/Task/{id}"), None, &[])
            .await
            .status,
        204
    );
    assert_eq!(fhir.get(&format!("/Task/{id}")).await.status, 410);
    assert_eq!(fhir.get("/Task?patient=p1").await.json()["total"], 0);
    assert_eq!(fhir.get(&format!("/Task/{id}/_history")).await.json()["total"], 3);
    assert_eq!(fhir.get("/Task/nothing-here").await.status, 404);
}

#[tokio::test]
async fn a_history_past_a_thousand_versions_has_its_true_total_and_pages_to_the_first() {
    let (_dir, engine) = start();
    let fhir = std::sync::Arc::new(Http::new(&engine));
    let created = fhir.send("POST", "/Task", Some(&task("p1", "ready")), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_string();
    // 1,049 updates, 50 at a time (the committer orders them; each is a version).
    for batch in 0..21 {
        let mut puts = tokio::task::JoinSet::new();
        for n in 0..50.min(1049 - batch * 50) {
            let (fhir, id) = (fhir.clone(), id.clone());
            let mut body = task("p1", "ready");
            body["description"] = json!(format!("update {}", batch * 50 + n));
            puts.spawn(async move {
                fhir.send("PUT", &format!("/Task/{id}"), Some(&body), &[])
                    .await
                    .status
            });
        }
        while let Some(status) = puts.join_next().await {
            assert_eq!(status.unwrap(), 200);
        }
    }

    let first = fhir.get(&format!("/Task/{id}/_history")).await.json();
    assert_eq!(
        first["total"], 1050,
        "every version counts, not only a page of them"
    );
    let entries = first["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 50, "the default page");
    assert_eq!(
        entries[0]["resource"]["meta"]["versionId"], "1050",
        "newest first"
    );
    let link = |bundle: &Value, relation: &str| {
        bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == relation)
            .map(|l| l["url"].as_str().unwrap().to_string())
    };
    let next = link(&first, "next").expect("a next page");
    assert!(
        next.ends_with(&format!("/fhir/Task/{id}/_history?_count=50&_offset=50")),
        "{next}"
    );
    let last = link(&first, "last").expect("a last page");
    assert!(last.ends_with("_offset=1000"), "{last}");

    let tail = fhir
        .get(&format!("/Task/{id}/_history?_count=1000&_offset=1000"))
        .await
        .json();
    assert_eq!(tail["total"], 1050);
    let entries = tail["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 50);
    assert_eq!(entries[49]["resource"]["meta"]["versionId"], "1");
    assert_eq!(entries[49]["request"]["method"], "POST");
    assert!(link(&tail, "next").is_none(), "nothing after the first version");
    let bad = fhir.get(&format!("/Task/{id}/_history?_offset=minus")).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
}

#[tokio::test]
async fn patients_are_searched_by_every_parameter_with_paging_and_sorting() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let people = [
        ("pa", "Nguyen", "Linh", "1992-09-05", "female"),
        ("pb", "Okafor", "Chidi", "1976-01-30", "male"),
        ("pc", "Nguyen", "Bao", "2001-03-17", "male"),
    ];
    for (id, family, given, birth, gender) in people {
        let patient = json!({
            "resourceType": "Patient",
            "id": id,
            "identifier": [{ "system": "urn:oid:1.2.3", "value": format!("MRN-{id}") }],
            "name": [{ "family": family, "given": [given] }],
            "birthDate": birth,
            "gender": gender,
            "telecom": [{ "system": "email", "value": format!("{id}@example.com") }],
        });
        let answer = fhir
            .send("PUT", &format!("/Patient/{id}"), Some(&patient), &[])
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
    let found = |query: &'static str| {
        let fhir = &fhir;
        async move {
            let answer = fhir.get(&format!("/Patient?{query}")).await;
            assert_eq!(answer.status, 200, "{query}: {}", answer.text);
            let mut ids = ids(&answer.json());
            ids.sort();
            ids
        }
    };
    assert_eq!(found("family=nguyen").await, ["pa", "pc"]);
    // One trailing slash is ignored, as FHIR clients build `[base]/[type]/?...`.
    let slashed = fhir.get("/Patient/?family=nguyen").await;
    assert_eq!(slashed.status, 200, "{}", slashed.text);
    assert_eq!(ids(&slashed.json()), ["pa", "pc"]);
    assert_eq!(fhir.get("/Patient/pa/").await.json()["id"], "pa");
    assert_eq!(found("name=ngu").await, ["pa", "pc"]);
    assert_eq!(found("given=Linh").await, ["pa"]);
    assert_eq!(found("gender=male").await, ["pb", "pc"]);
    assert_eq!(found("birthdate=1992-09-05").await, ["pa"]);
    assert_eq!(found("birthdate=ge2000-01-01").await, ["pc"]);
    assert_eq!(found("birthdate=lt1990").await, ["pb"]);
    assert_eq!(found("birthdate=1976").await, ["pb"]);
    assert_eq!(found("identifier=urn:oid:1.2.3|MRN-pb").await, ["pb"]);
    assert_eq!(found("identifier=MRN-pc").await, ["pc"]);
    assert_eq!(found("email=PA@example.com").await, ["pa"]);
    assert_eq!(found("_id=pb").await, ["pb"]);
    assert_eq!(found("family=nguyen&gender=male").await, ["pc"]);
    assert_eq!(found("gender=female,male&family=okafor").await, ["pb"]);
    assert_eq!(found("_lastUpdated=gt2020-01-01").await, ["pa", "pb", "pc"]);
    assert_eq!(found("_lastUpdated=lt2020-01-01").await, Vec::<String>::new());

    // Paging: two pages of two, linked.
    let page = fhir.get("/Patient?_count=2&_sort=_lastUpdated").await.json();
    assert_eq!(page["total"], 3);
    assert_eq!(ids(&page), ["pa", "pb"]);
    let next = page["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next link")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let next_path = next.split("/fhir").nth(1).unwrap();
    assert_eq!(ids(&fhir.get(next_path).await.json()), ["pc"]);
    let newest_first = fhir.get("/Patient?_sort=-_lastUpdated").await.json();
    assert_eq!(ids(&newest_first), ["pc", "pb", "pa"]);

    // An unknown parameter is ignored (FHIR R4 search 3.1.1.5.6, lenient by default), and the
    // searchset says so in an OperationOutcome entry; the self link leaves it out.
    let lenient = fhir
        .get("/Patient?family=Nguyen&colour=blue&_totalMethod=count")
        .await;
    assert_eq!(lenient.status, 200, "{}", lenient.text);
    let bundle = lenient.json();
    let entries = bundle["entry"].as_array().unwrap();
    let matched: Vec<&Value> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .collect();
    assert_eq!(matched.len(), bundle["total"].as_u64().unwrap() as usize);
    assert!(!matched.is_empty());
    let outcome = entries
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry");
    assert_eq!(outcome["resource"]["resourceType"], "OperationOutcome");
    let said = outcome["resource"]["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(said.contains("colour") && said.contains("_totalMethod"), "{said}");
    assert_eq!(outcome["resource"]["issue"][0]["severity"], "warning");
    let self_link = bundle["link"][0]["url"].as_str().unwrap();
    assert!(
        !self_link.contains("colour") && self_link.contains("family=Nguyen"),
        "{self_link}"
    );
    // A count the way fhirpy asks for one.
    let count = fhir.get("/Patient?_count=0&_totalMethod=count").await;
    assert_eq!(count.status, 200);
    assert_eq!(count.json()["total"], 3);
    // Strict handling, when asked for, refuses it and says why.
    let strict = fhir
        .send(
            "GET",
            "/Patient?colour=blue",
            None,
            &[("prefer", "handling=strict")],
        )
        .await;
    assert_eq!(strict.status, 400);
    assert!(
        strict.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    let lenient_asked = fhir
        .send(
            "GET",
            "/Patient?colour=blue",
            None,
            &[("prefer", "handling=lenient")],
        )
        .await;
    assert_eq!(lenient_asked.status, 200);
    // Bad values of known parameters are still 400s that say why.
    assert_eq!(fhir.get("/Patient?birthdate=yesterday").await.status, 400);
    assert_eq!(fhir.get("/Patient?_count=lots").await.status, 400);
    assert_eq!(fhir.get("/Patient?_sort=colour").await.status, 400);
}

#[tokio::test]
async fn a_fhir_patient_from_the_ucr_updates_the_record_an_adt_made() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a04_register.hl7")).await).0,
        "AA"
    );
    let by_adt = engine
        .search("identifier=urn:oid:2.16.840.1.113883.3.9999.1|1000551903")
        .await;
    let id = by_adt[0]["id"].as_str().unwrap().to_string();

    let from_ucr = json!({
        "resourceType": "Patient",
        "identifier": [{ "system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "1000551903" }],
        "name": [{ "family": "Nguyen", "given": ["Linh"] }],
        "telecom": [{ "system": "email", "value": "linh.new@example.com" }],
    });
    let answer = fhir.send("POST", "/Patient", Some(&from_ucr), &[]).await;
    assert_eq!(
        answer.status, 200,
        "an update of the same record: {}",
        answer.text
    );
    let patient = answer.json();
    assert_eq!(patient["id"], id.as_str());
    assert_eq!(patient["meta"]["versionId"], "2");
    assert_eq!(patient["birthDate"], "1992-09-05", "kept from the ADT");
    let found = engine.search("email=linh.new@example.com").await;
    assert_eq!(found[0]["id"], id.as_str());

    // A patient nobody knows yet is created.
    let new = json!({
        "resourceType": "Patient",
        "identifier": [{ "system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "2000000001" }],
        "name": [{ "family": "Haddad", "given": ["Rana"] }],
    });
    let created = fhir.send("POST", "/Patient", Some(&new), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    // Conditional create: the same identifier matches, nothing new is made.
    let again = fhir
        .send(
            "POST",
            "/Patient",
            Some(&new),
            &[(
                "if-none-exist",
                "identifier=urn:oid:2.16.840.1.113883.3.9999.1|2000000001",
            )],
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], created.json()["id"]);
    assert_eq!(again.json()["meta"]["versionId"], "1");
    // Prefer: return=minimal answers without a body.
    let minimal = fhir
        .send(
            "POST",
            "/Task",
            Some(&task("p1", "ready")),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(minimal.status, 201);
    assert!(minimal.text.is_empty());
    assert!(!minimal.header("location").is_empty());
}

#[tokio::test]
async fn a_posted_patient_keeps_what_the_client_sent_and_an_adt_later_replaces_only_what_it_maps() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let sent = json!({
        "resourceType": "Patient",
        "meta": { "profile": ["http://example.org/StructureDefinition/portal-patient"] },
        "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Linh Nguyen</div>" },
        "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": { "city": "Hue" } }],
        "identifier": [{
            "use": "official",
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR" }] },
            "system": "urn:oid:2.16.840.1.113883.3.9999.1",
            "value": "1000551903",
            "period": { "start": "2015-01-01" }
        }],
        "name": [{ "family": "Tran", "given": ["Linh"], "period": { "start": "2015-01-01" } }],
        "telecom": [{ "system": "phone", "value": "+1-617-555-1234", "use": "home", "rank": 1 }],
        "birthDate": "1992-09-05",
        "_birthDate": { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1992-09-05T10:20:00+07:00" }] },
        "address": [{ "use": "home", "type": "both", "text": "1 Main St, Boston", "line": ["1 Main St"], "city": "Boston", "district": "Suffolk", "period": { "start": "2020" } }],
        "communication": [{ "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "vi" }] }, "preferred": true }],
        "contact": [{ "name": { "family": "Tran", "given": ["Mai"] }, "telecom": [{ "system": "phone", "value": "555-0100" }] }],
        "photo": [{ "contentType": "image/png", "url": "Binary/photo-1" }],
        "managingOrganization": { "reference": "Organization/clinic" },
        "generalPractitioner": [{ "display": "Dr. Pham" }],
    });
    let created = fhir.send("POST", "/Patient", Some(&sent), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let read = fhir.get(&format!("/Patient/{id}")).await.json();
    for element in [
        "text",
        "extension",
        "_birthDate",
        "contact",
        "photo",
        "managingOrganization",
        "generalPractitioner",
        "communication",
        "address",
        "name",
    ] {
        assert_eq!(read[element], sent[element], "{element}");
    }
    assert_eq!(read["meta"]["profile"], sent["meta"]["profile"]);
    assert_eq!(read["identifier"], sent["identifier"]);
    // The phone is kept in the form the ADT feed writes, so both find the patient alike.
    assert_eq!(read["telecom"][0]["value"], "+1 617 5551234");
    assert_eq!(read["telecom"][0]["rank"], 1);
    assert_eq!(engine.search("phone=6175551234").await[0]["id"], id.as_str());

    // The ADT feed about the same patient replaces what it maps (the name, the address ...) and
    // leaves what it has no field for.
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a04_register.hl7")).await).0,
        "AA"
    );
    let after = fhir.get(&format!("/Patient/{id}")).await.json();
    assert_eq!(after["meta"]["versionId"], "2");
    assert_eq!(after["name"][0]["family"], "NGUYEN", "{after}");
    for element in [
        "text",
        "extension",
        "_birthDate",
        "contact",
        "photo",
        "managingOrganization",
        "generalPractitioner",
    ] {
        assert_eq!(after[element], sent[element], "{element} after the ADT");
    }
    let identifier = &after["identifier"][0];
    assert_eq!(identifier["value"], "1000551903");
    assert_eq!(identifier["use"], "official");
    assert_eq!(identifier["period"], sent["identifier"][0]["period"]);

    // A Patient without any identifier is created with an id of the server's, and found by what
    // it does carry.
    let newborn = json!({
        "resourceType": "Patient",
        "name": [{ "family": "Okonkwo", "given": ["Baby"] }],
        "gender": "female",
        "birthDate": "2024-02-29",
    });
    let created = fhir.send("POST", "/Patient", Some(&newborn), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let newborn_id = created.json()["id"].as_str().unwrap().to_string();
    let twin = fhir.send("POST", "/Patient", Some(&newborn), &[]).await;
    assert_eq!(twin.status, 201, "{}", twin.text);
    assert_ne!(
        twin.json()["id"],
        newborn_id.as_str(),
        "two creates, two patients"
    );
    let found = fhir
        .get("/Patient?family=okonkwo&birthdate=2024-02-29")
        .await
        .json();
    assert_eq!(found["total"], 2);
    assert!(ids(&found).contains(&newborn_id));
}

#[tokio::test]
async fn json_and_xml_both_ways() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><id value="x1"/><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Linh <b>Nguyen</b></p></div></text><identifier><system value="urn:oid:1.2.3"/><value value="X-1"/></identifier><name><family value="Nguyen"/><given value="Linh"/><given value="Thi"/></name><birthDate value="1992-09-05"><extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime"><valueDateTime value="1992-09-05T10:20:00+07:00"/></extension></birthDate></Patient>"#;
    let put = fhir
        .raw("PUT", "/Patient/x1", "application/fhir+xml", xml.to_string())
        .await;
    assert_eq!(put.status, 201, "{}", put.text);
    let stored = fhir.get("/Patient/x1").await.json();
    assert_eq!(stored["name"][0]["given"], json!(["Linh", "Thi"]));
    assert_eq!(
        stored["_birthDate"]["extension"][0]["valueDateTime"],
        "1992-09-05T10:20:00+07:00"
    );
    assert!(stored["text"]["div"].as_str().unwrap().contains("<b>Nguyen</b>"));

    let as_xml = fhir.get("/Patient/x1?_format=xml").await;
    assert_eq!(as_xml.status, 200);
    assert!(as_xml.header("content-type").starts_with("application/fhir+xml"));
    assert!(as_xml.text.contains("<given value=\"Thi\"/>"), "{}", as_xml.text);
    assert!(as_xml.text.contains("<b>Nguyen</b>"));
    let accept = fhir
        .send("GET", "/Patient/x1", None, &[("accept", "application/fhir+xml")])
        .await;
    assert_eq!(accept.text, as_xml.text);
    // Back through XML: the same content.
    let again = fhir
        .raw("PUT", "/Patient/x1", "application/fhir+xml", as_xml.text.clone())
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let mut round_trip = again.json();
    let mut original = stored.clone();
    round_trip.as_object_mut().unwrap().remove("meta");
    original.as_object_mut().unwrap().remove("meta");
    assert_eq!(round_trip, original);
    // Errors in XML too when XML is asked for.
    let missing = fhir.get("/Patient/nobody?_format=xml").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("<OperationOutcome"));
}

#[tokio::test]
async fn bad_input_gets_an_operation_outcome_naming_what_is_wrong() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let check = |answer: &Answer, status: u16, needle: &str| {
        assert_eq!(answer.status, status, "{}", answer.text);
        let outcome = answer.json();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{}", answer.text);
        assert!(answer.text.contains(needle), "{needle} not in {}", answer.text);
    };
    let unknown_element = json!({ "resourceType": "Patient", "colour": "blue" });
    check(
        &fhir.send("POST", "/Patient", Some(&unknown_element), &[]).await,
        400,
        "colour",
    );
    let bad_date = json!({ "resourceType": "Patient", "birthDate": "05/09/1992" });
    check(
        &fhir.send("POST", "/Patient", Some(&bad_date), &[]).await,
        400,
        "birthDate",
    );
    let wrong_type = json!({ "resourceType": "Patient", "name": "Linh" });
    check(
        &fhir.send("POST", "/Patient", Some(&wrong_type), &[]).await,
        400,
        "name",
    );
    let missing_required = json!({ "resourceType": "Task", "intent": "order" });
    check(
        &fhir.send("POST", "/Task", Some(&missing_required), &[]).await,
        400,
        "status",
    );
    let other_type = json!({ "resourceType": "Task", "status": "ready", "intent": "order" });
    check(
        &fhir.send("POST", "/Patient", Some(&other_type), &[]).await,
        400,
        "Task",
    );
    check(
        &fhir
            .raw("POST", "/Patient", "application/fhir+json", "{not json".into())
            .await,
        400,
        "JSON",
    );
    check(
        &fhir
            .raw("POST", "/Patient", "application/fhir+xml", "<Patient".into())
            .await,
        400,
        "XML",
    );
    check(
        &fhir.raw("POST", "/Patient", "text/csv", "a,b".into()).await,
        415,
        "text/csv",
    );
    check(&fhir.get("/Spaceship/1").await, 404, "Spaceship");
    let id_mismatch = json!({ "resourceType": "Task", "id": "other", "status": "ready", "intent": "order" });
    check(
        &fhir.send("PUT", "/Task/mine", Some(&id_mismatch), &[]).await,
        400,
        "other",
    );
    check(&fhir.send("DELETE", "/Patient/p1", None, &[]).await, 405, "merge");
    // A body over the limit is refused from its Content-Length, before it is read.
    let status_line = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = engine.http.trim_start_matches("http://");
        let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = format!(
            "POST /fhir/Patient HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {FHIR_KEY}\r\ncontent-type: application/fhir+json\r\ncontent-length: {}\r\n\r\n",
            5 * 1024 * 1024
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut reply = vec![0; 512];
        let n = socket.read(&mut reply).await.unwrap();
        String::from_utf8_lossy(&reply[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert!(status_line.contains("413"), "{status_line}");
    // The engine is still up and nothing was written.
    assert_eq!(fhir.get("/Patient").await.json()["total"], 0);
}

#[tokio::test]
async fn a_transaction_is_all_or_nothing_and_resolves_urn_uuid_references() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let transaction = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{ "system": "urn:oid:1.2.3", "value": "T-1" }],
                    "name": [{ "family": "Silva" }]
                },
                "request": { "method": "POST", "url": "Patient" }
            },
            {
                "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
                "resource": {
                    "resourceType": "Task", "status": "ready", "intent": "order",
                    "for": { "reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0" }
                },
                "request": { "method": "POST", "url": "Task" }
            }
        ]
    });
    let answer = fhir.send("POST", "", Some(&transaction), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let response = answer.json();
    assert_eq!(response["type"], "transaction-response");
    assert!(
        response["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("201")
    );
    let patient_id = response["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let task = &response["entry"][1]["resource"];
    assert_eq!(task["for"]["reference"], format!("Patient/{patient_id}"));
    let tasks = fhir.get(&format!("/Task?patient={patient_id}")).await.json();
    assert_eq!(tasks["total"], 1);

    // One entry fails (a stale If-Match): nothing of the transaction is written.
    let task_id = task["id"].as_str().unwrap();
    let failing = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": { "resourceType": "Task", "status": "draft", "intent": "order" },
                "request": { "method": "POST", "url": "Task" }
            },
            {
                "resource": { "resourceType": "Task", "id": task_id, "status": "completed", "intent": "order" },
                "request": { "method": "PUT", "url": format!("Task/{task_id}"), "ifMatch": "W/\"9\"" }
            }
        ]
    });
    let answer = fhir.send("POST", "", Some(&failing), &[]).await;
    assert_eq!(answer.status, 412, "{}", answer.text);
    assert_eq!(fhir.get("/Task?status=draft").await.json()["total"], 0);
    assert_eq!(
        fhir.get(&format!("/Task/{task_id}")).await.json()["status"],
        "ready"
    );

    // A batch applies what it can and says what failed, entry by entry.
    let mut batch = failing.clone();
    batch["type"] = json!("batch");
    let answer = fhir.send("POST", "", Some(&batch), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let response = answer.json();
    assert_eq!(response["type"], "batch-response");
    assert!(
        response["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("201")
    );
    assert!(
        response["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("412")
    );
    assert_eq!(fhir.get("/Task?status=draft").await.json()["total"], 1);
}

fn pmir_feed(message_id: &str, patients: Vec<Value>) -> Value {
    let entries: Vec<Value> = patients
        .into_iter()
        .enumerate()
        .map(|(i, patient)| {
            json!({
                "fullUrl": format!("http://ucr.example/fhir/Patient/u{i}"),
                "resource": patient,
                "request": { "method": "PUT", "url": format!("Patient/u{i}") },
                "response": { "status": "200" }
            })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "message",
        "entry": [
            {
                "fullUrl": "urn:uuid:header",
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": message_id,
                    "eventUri": "urn:ihe:iti:pmir:2019:patient-feed",
                    "source": { "endpoint": "http://ucr.example/fhir" },
                    "focus": [{ "reference": "urn:uuid:history" }]
                }
            },
            {
                "fullUrl": "urn:uuid:history",
                "resource": { "resourceType": "Bundle", "type": "history", "entry": entries }
            }
        ]
    })
}

fn ucr_patient(value: &str, family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{ "system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": value }],
        "name": [{ "family": family, "given": ["Ana"] }]
    })
}

#[tokio::test]
async fn a_pmir_feed_applies_its_patients_and_merges_and_answers_with_a_response_message() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let feed = pmir_feed(
        "msg-1",
        vec![ucr_patient("U-1", "Costa"), ucr_patient("U-2", "Costa")],
    );
    let answer = fhir.send("POST", "", Some(&feed), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let response = answer.json();
    assert_eq!(response["type"], "message");
    let header = &response["entry"][0]["resource"];
    assert_eq!(header["resourceType"], "MessageHeader");
    assert_eq!(header["response"]["identifier"], "msg-1");
    assert_eq!(header["response"]["code"], "ok");
    // The PMIR response profile: the response event, no destination.
    assert_eq!(header["eventUri"], "urn:ihe:iti:pmir:2019:patient-feed-response");
    assert!(header.get("destination").is_none(), "{header}");
    // Every fullUrl is a urn:uuid with a UUID in it (RFC 4122 form), and the header's focus
    // names the history Bundle.
    for entry in response["entry"].as_array().unwrap() {
        let full_url = entry["fullUrl"].as_str().unwrap();
        let uuid = full_url
            .strip_prefix("urn:uuid:")
            .unwrap_or_else(|| panic!("{full_url}"));
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{full_url}");
        assert!(
            uuid.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
    assert_eq!(header["focus"][0]["reference"], response["entry"][1]["fullUrl"]);
    assert_eq!(response["identifier"]["system"], "urn:ietf:rfc:3986");
    assert_eq!(
        response["entry"][1]["resource"]["entry"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(engine.search("identifier=U-1").await.len(), 1);

    // The same message again: the same answer, nothing applied twice.
    let again = fhir.send("POST", "", Some(&feed), &[]).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["entry"][1], response["entry"][1]);
    let survivor_id = engine.search("identifier=U-1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fhir.get(&format!("/Patient/{survivor_id}")).await.json()["meta"]["versionId"],
        "1"
    );

    // A merge: U-2 is replaced by U-1; U-2's identifier now finds the survivor.
    let mut retired = ucr_patient("U-2", "Costa");
    retired["active"] = json!(false);
    retired["link"] =
        json!([{ "type": "replaced-by", "other": { "reference": format!("Patient/{survivor_id}") } }]);
    let merge = pmir_feed("msg-2", vec![retired]);
    // Posted to `[base]/`, as FHIR clients do.
    let answer = fhir.send("POST", "/", Some(&merge), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let found = engine.search("identifier=U-2").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], survivor_id.as_str());

    // Not a patient feed: refused with a reason.
    let mut other = pmir_feed("msg-3", vec![ucr_patient("U-3", "Lima")]);
    other["entry"][0]["resource"]["eventUri"] = json!("urn:example:other");
    let answer = fhir.send("POST", "", Some(&other), &[]).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
}

#[tokio::test]
async fn pixm_cross_references_identifiers_with_the_iti_83_error_rules() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a04_register.hl7")).await).0,
        "AA"
    );
    let mpi = "urn:oid:2.16.840.1.113883.3.9999.1";
    let hospital = "urn:oid:2.16.840.1.113883.3.9999.3";

    let answer = fhir
        .get(&format!("/Patient/$ihe-pix?sourceIdentifier={mpi}|1000551903"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let parameters = answer.json();
    assert_eq!(parameters["resourceType"], "Parameters");
    let targets: Vec<&Value> = parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "targetIdentifier")
        .collect();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["valueIdentifier"]["value"], "MRN00061022");
    assert!(answer.text.contains("targetId"));

    let filtered = fhir
        .get(&format!(
            "/Patient/$ihe-pix?sourceIdentifier={mpi}|1000551903&targetSystem={hospital}"
        ))
        .await;
    assert_eq!(filtered.status, 200);
    let unknown_id = fhir
        .get(&format!("/Patient/$ihe-pix?sourceIdentifier={mpi}|nobody"))
        .await;
    assert_eq!(unknown_id.status, 404);
    let unknown_domain = fhir.get("/Patient/$ihe-pix?sourceIdentifier=urn:oid:9.9|1").await;
    assert_eq!(unknown_domain.status, 400);
    let unknown_target = fhir
        .get(&format!(
            "/Patient/$ihe-pix?sourceIdentifier={mpi}|1000551903&targetSystem=urn:oid:9.9"
        ))
        .await;
    assert_eq!(unknown_target.status, 403);
    assert_eq!(fhir.get("/Patient/$ihe-pix").await.status, 400);
    assert_eq!(
        fhir.get("/Patient/$ihe-pix?sourceIdentifier=novalue")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn the_capability_statement_says_what_is_served() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let answer = fhir.get("/metadata").await;
    assert_eq!(answer.status, 200);
    let statement = answer.json();
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let types: Vec<&str> = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 26);
    for summary in [
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Binary",
        "QuestionnaireResponse",
        "AllergyIntolerance",
        "Condition",
        "Procedure",
        "Immunization",
        "MedicationRequest",
        "MedicationStatement",
        "CareTeam",
        "Encounter",
        "Invoice",
    ] {
        assert!(types.contains(&summary), "{summary} in {types:?}");
    }
    let patient = &statement["rest"][0]["resource"][0];
    let params: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "identifier",
        "name",
        "family",
        "given",
        "birthdate",
        "email",
        "phone",
        "gender",
        "_id",
        "_lastUpdated",
    ] {
        assert!(params.contains(&wanted), "{wanted} in {params:?}");
    }
    let xml = fhir.get("/metadata?_format=xml").await;
    assert!(xml.text.starts_with("<CapabilityStatement") || xml.text.contains("<CapabilityStatement"));
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_create_happen_once() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let body = task("p9", "ready");
    let key = [("idempotency-key", "crm-req-42")];
    let first = fhir.send("POST", "/Task", Some(&body), &key).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = fhir.send("POST", "/Task", Some(&body), &key).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["id"], first.json()["id"], "the first answer again");
    assert_eq!(
        fhir.get("/Task?patient=p9").await.json()["total"],
        1,
        "created once"
    );
    let other = fhir.send("POST", "/Task", Some(&task("p9", "draft")), &key).await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert!(other.text.contains("crm-req-42"));
}

#[tokio::test]
async fn a_transaction_with_an_idempotency_key_and_a_pmir_message_by_its_id_are_applied_once() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let transaction = |status: &str| {
        json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{ "resource": task("p7", status), "request": { "method": "POST", "url": "Task" } }]
        })
    };
    let key = [("idempotency-key", "crm-batch-7")];
    let first = fhir.send("POST", "", Some(&transaction("ready")), &key).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = fhir.send("POST", "", Some(&transaction("ready")), &key).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.json()["entry"][0]["response"]["location"],
        first.json()["entry"][0]["response"]["location"],
        "the first answer again"
    );
    assert_eq!(
        fhir.get("/Task?patient=p7").await.json()["total"],
        1,
        "created once"
    );
    let other = fhir.send("POST", "", Some(&transaction("draft")), &key).await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert!(other.text.contains("crm-batch-7"), "{}", other.text);

    // A PMIR message: its id again with the same Patients is a resend; with others, refused.
    let feed = pmir_feed("msg-idem-1", vec![ucr_patient("7700", "Silva")]);
    let first = fhir.send("POST", "", Some(&feed), &[]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = fhir.send("POST", "", Some(&feed), &[]).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["id"], first.json()["id"], "the first response again");
    let changed = pmir_feed("msg-idem-1", vec![ucr_patient("7700", "Souza")]);
    let refused = fhir.send("POST", "", Some(&changed), &[]).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        fhir.get("/Patient?identifier=7700").await.json()["entry"][0]["resource"]["name"][0]["family"],
        "Silva",
        "the reused id changed nothing"
    );
}

#[tokio::test]
async fn only_known_clients_use_the_endpoint_and_only_writers_write() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let created = fhir.send("POST", "/Task", Some(&task("p1", "ready")), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let location = created.header("location");
    let id = location
        .split("/Task/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let client = reqwest::Client::new();
    let call = |method: &str, path: &str, key: Option<&str>| {
        let mut request = client.request(method.parse().unwrap(), format!("{}/fhir{path}", engine.http));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if method != "GET" {
            request = request
                .header("content-type", "application/fhir+json")
                .body(task("p1", "cancelled").to_string());
        }
        request.send()
    };
    // The CapabilityStatement is public, and says what it takes.
    let metadata = call("GET", "/metadata", None).await.unwrap();
    assert_eq!(metadata.status(), 200);
    let statement: Value = metadata.json().await.unwrap();
    let security = statement["rest"][0]["security"]["description"].as_str().unwrap();
    assert!(security.contains("fhir-write"), "{security}");
    for (method, path) in [
        ("GET", format!("/Task/{id}")),
        ("GET", "/Task?status=ready".to_string()),
        ("GET", format!("/Task/{id}/_history")),
        ("POST", "/Task".to_string()),
        ("PUT", format!("/Task/{id}")),
        ("DELETE", format!("/Task/{id}")),
    ] {
        for key in [None, Some("not-a-known-key")] {
            let response = call(method, &path, key).await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} {key:?}");
            assert!(response.headers().contains_key("www-authenticate"));
            let outcome: Value = response.json().await.unwrap();
            assert_eq!(outcome["resourceType"], "OperationOutcome");
            assert_eq!(outcome["issue"][0]["code"], "login");
        }
        // An integration analyst reads and does not write.
        let response = call(method, &path, Some(ANALYST_KEY)).await.unwrap();
        if method == "GET" {
            assert_eq!(response.status(), 200, "{method} {path}");
        } else {
            assert_eq!(response.status(), 403, "{method} {path}");
            let outcome: Value = response.json().await.unwrap();
            assert_eq!(outcome["issue"][0]["code"], "forbidden");
        }
    }
    // A refusal is in the format asked for, as every FHIR answer.
    let xml = client
        .get(format!("{}/fhir/Task/{id}", engine.http))
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), 401);
    assert!(
        xml.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+xml")
    );
    let text = xml.text().await.unwrap();
    assert!(
        text.starts_with("<OperationOutcome") && text.contains("login"),
        "{text}"
    );
    let xml = client
        .post(format!("{}/fhir/Task?_format=xml", engine.http))
        .bearer_auth(ANALYST_KEY)
        .header("content-type", "application/fhir+json")
        .body(task("p1", "cancelled").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), 403);
    let text = xml.text().await.unwrap();
    assert!(
        text.starts_with("<OperationOutcome") && text.contains("forbidden"),
        "{text}"
    );
    let xml = client
        .get(format!("{}/fhir/Task/{id}/nothing/here?_format=xml", engine.http))
        .bearer_auth(FHIR_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), 404);
    assert!(xml.text().await.unwrap().starts_with("<OperationOutcome"));
    // The CapabilityStatement with a trailing slash.
    let metadata = call("GET", "/metadata/", None).await.unwrap();
    assert_eq!(metadata.status(), 200);
    // Nothing refused changed anything.
    let read = fhir.get(&format!("/Task/{id}")).await;
    assert_eq!(read.json()["status"], "ready");
    assert_eq!(read.json()["meta"]["versionId"], "1");
}

/// Updates of one Patient racing in, each with `If-Match` on the version they all read: exactly
/// one applies, every other gets 412, as if they had come one by one (a write worked out before
/// the committer, while others wait for it, is checked there; a stale one is worked out again
/// and refused).
#[tokio::test]
async fn racing_updates_with_one_if_match_apply_once() {
    let (_dir, engine) = start();
    let fhir = Http::new(&engine);
    let patient = |family: &str| {
        json!({"resourceType": "Patient", "id": "race-1",
               "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.7", "value": "R1"}],
               "name": [{"family": family}]})
    };
    let created = fhir
        .send("PUT", "/Patient/race-1", Some(&patient("First")), &[])
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    // Each racer's connection is open before they all go at once.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let fhir = Http::new(&engine);
            let body = patient(&format!("Racer{i}"));
            let start = start.clone();
            tokio::spawn(async move {
                assert_eq!(fhir.get("/metadata").await.status, 200);
                start.wait().await;
                fhir.send("PUT", "/Patient/race-1", Some(&body), &[("if-match", "W/\"1\"")])
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = vec![];
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 15, "{statuses:?}");
    let read = fhir.get("/Patient/race-1").await.json();
    assert_eq!(read["meta"]["versionId"], "2");
    let history = fhir.get("/Patient/race-1/_history").await.json();
    assert_eq!(history["total"], 2);
}
