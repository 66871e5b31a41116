//! Results over the wire (issue 16): ORU^R01 messages in over MLLP on a channel whose mapping
//! writes a DiagnosticReport per order and an Observation per result, read back over FHIR as a
//! user would check them. A result for a patient the store does not know is refused with ERR 204
//! (validated by hl7apy strict) and applied when sent again after the patient's ADT; a
//! correction replaces the result it corrects; an embedded PDF report is kept with its type.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::common::{EngineProcess, MAPPINGS, add_channel, msa, segment, temp_store, write_config};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ucr");

const A28: &str = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250311081122-0400||ADT^A28^ADT_A05|RESULTSA28|P|2.5\r\
     EVN|A28|20250311081122-0400\r\
     PID|1||1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH^THI^^^^L||19920905|F\r";

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// The engine with the test channels and the UCR's results feed on the same listener.
fn start(data: &Path) -> EngineProcess {
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    add_channel(&config, "ucr-oru", "ucr-oru-result", "ORU");
    EngineProcess::start_config(&config, data)
}

/// `POST /journal/{seq}/reprocess` with the integration analyst's key.
async fn reprocess(engine: &EngineProcess, seq: u64) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/journal/{seq}/reprocess", engine.http))
        .bearer_auth(crate::common::ANALYST_KEY)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn by_code<'a>(observations: &'a [Value], code: &str) -> &'a Value {
    observations
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == code)
        .unwrap_or_else(|| panic!("no Observation {code} in {observations:?}"))
}

#[tokio::test]
async fn a_lab_panel_becomes_a_report_with_its_results_and_a_correction_replaces_one() {
    let (dir, data) = temp_store();
    let engine = start(&data);
    let panel = read("oru_r01_lab_panel.hl7");

    // Before the patient's ADT: AE with ERR 204 on PID-3, nothing stored, the message journaled.
    let ack = engine.send(&panel).await;
    assert_eq!(msa(&ack), ("AE".into(), "UCR250314000301".into()), "{ack}");
    let err = segment(&ack, "ERR").expect("an ERR");
    assert!(err[2].starts_with("PID^1^3"), "ERR-2 names PID-3: {ack}");
    assert!(err[3].starts_with("204"), "ERR-3 is 204: {ack}");
    assert!(engine.found("Observation?code=2345-7").await.is_empty());
    let (_, journal) = engine.get("/journal").await;
    let entry = journal["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(entry["status"], "error", "{entry}");
    assert!(
        entry["message"].as_str().unwrap().contains("ORU^R01"),
        "kept whole: {entry}"
    );

    // The patient arrives; an analyst reprocesses the journaled message and it is applied.
    assert_eq!(msa(&engine.send(A28.as_bytes()).await).0, "AA");
    let patient = engine.search("identifier=1000551903").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let seq = entry["seq"].as_u64().unwrap();
    let (status, answer) = reprocess(&engine, seq).await;
    assert_eq!(status, 200, "{answer}");
    let ack = answer["replies"][0].as_str().unwrap();
    assert_eq!(msa(ack), ("AA".into(), "UCR250314000301".into()), "{ack}");
    // Reprocessed again, or sent again by the UCR: the first answer, nothing changed.
    let (status, again) = reprocess(&engine, seq).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(msa(again["replies"][0].as_str().unwrap()).0, "AA");
    let ack = engine.send(&panel).await;
    assert_eq!(msa(&ack), ("AA".into(), "UCR250314000301".into()), "{ack}");
    let (_, journal) = engine.get("/journal").await;
    let reprocessed: Vec<&Value> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["peer"] == format!("reprocess of journal {seq} by client:analyst"))
        .collect();
    assert_eq!(reprocessed.len(), 2, "each reprocess is journaled: {journal}");
    assert_eq!(reprocess(&engine, 999_999).await.0, 404);
    let other_role = reqwest::Client::new()
        .post(format!("{}/journal/{seq}/reprocess", engine.http))
        .bearer_auth(crate::common::FHIR_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(other_role.status().as_u16(), 403, "integration analysts only");

    let reports = engine.found(&format!("DiagnosticReport?patient={patient}")).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report["status"], "final");
    assert_eq!(report["subject"]["reference"], format!("Patient/{patient}"));
    assert_eq!(report["result"].as_array().unwrap().len(), 6, "{report}");
    let results = engine.found(&format!("Observation?patient={patient}")).await;
    assert_eq!(results.len(), 6, "one per OBX: {results:?}");
    for result in &report["result"].as_array().unwrap()[..] {
        let id = result["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Observation/");
        assert!(
            results.iter().any(|o| o["id"] == id),
            "the report's {id} is stored"
        );
    }
    let glucose = by_code(&results, "2345-7");
    assert_eq!(glucose["valueQuantity"]["value"], 5.6);
    assert_eq!(glucose["valueQuantity"]["unit"], "mmol/L");
    assert_eq!(glucose["referenceRange"][0]["low"]["value"], 3.9);
    assert_eq!(glucose["referenceRange"][0]["high"]["value"], 5.5);
    assert_eq!(glucose["interpretation"][0]["coding"][0]["code"], "H");
    assert_eq!(glucose["status"], "final");
    assert_eq!(glucose["note"][0]["text"], "Repeat in three months");
    let hepatitis = by_code(&results, "11282-1");
    assert_eq!(
        hepatitis["valueCodeableConcept"]["coding"][0]["code"],
        "260385009"
    );
    let creatinine = by_code(&results, "2160-0");
    assert_eq!(
        creatinine["valueString"], ">60",
        "a value that is no number stays text"
    );
    assert_eq!(creatinine["status"], "preliminary");
    // `_include` brings the patient along, once, marked as included.
    let (status, bundle) = engine
        .get(&format!(
            "/fhir/Observation?patient={patient}&_include=Observation:patient"
        ))
        .await;
    assert_eq!(status, 200, "{bundle}");
    let entries = bundle["entry"].as_array().unwrap();
    let included: Vec<&Value> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert_eq!(included.len(), 1, "{bundle}");
    assert_eq!(included[0]["resource"]["id"], patient.as_str());
    assert_eq!(entries.len(), 7);
    let (status, refused) = engine.get("/fhir/Observation?_include=Observation:code").await;
    assert_eq!(status, 400, "{refused}");
    // Searchable by code and status, as a user filters results.
    assert_eq!(
        engine
            .found("Observation?code=http://loinc.org%7C2951-2")
            .await
            .len(),
        1
    );
    assert_eq!(
        engine
            .found(&format!("Observation?patient={patient}&status=preliminary"))
            .await
            .len(),
        1
    );

    // The correction (OBX-11 C) replaces the glucose; the other results stay the report's.
    let ack = engine.send(&read("oru_r01_lab_correction.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let results = engine.found(&format!("Observation?patient={patient}")).await;
    assert_eq!(results.len(), 6, "corrected, not duplicated: {results:?}");
    let glucose = by_code(&results, "2345-7");
    assert_eq!(glucose["valueQuantity"]["value"], 5.2);
    assert_eq!(glucose["status"], "corrected");
    assert_eq!(glucose["interpretation"][0]["coding"][0]["code"], "N");
    assert_eq!(glucose["meta"]["versionId"], "2");
    let report = &engine.found(&format!("DiagnosticReport?patient={patient}")).await[0];
    assert_eq!(report["status"], "corrected");
    assert_eq!(report["result"].as_array().unwrap().len(), 6, "{report}");

    // A radiology report: text lines as results, the PDF as the report's presented form.
    let ack = engine.send(&read("oru_r01_radiology_report.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let reports = engine
        .found(&format!("DiagnosticReport?patient={patient}&code=36643-5"))
        .await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let form = &reports[0]["presentedForm"][0];
    assert_eq!(form["contentType"], "application/pdf");
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(form["data"].as_str().unwrap())
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "the report's bytes as sent");
    let lines = engine
        .found(&format!("Observation?patient={patient}&code=36643-5"))
        .await;
    let mut text: Vec<&str> = lines.iter().map(|o| o["valueString"].as_str().unwrap()).collect();
    text.sort();
    assert_eq!(
        text,
        [
            "FINDINGS: The lungs are clear. No effusion.",
            "IMPRESSION: No acute disease."
        ]
    );

    // An event HL7 does not define for ORU is refused before any channel.
    let unknown = String::from_utf8(panel.clone())
        .unwrap()
        .replace("ORU^R01^ORU_R01|UCR250314000301", "ORU^R99|UCR250314000309");
    let ack = engine.send(unknown.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AR", "{ack}");
    assert!(ack.contains("R01, R30 to R32"), "{ack}");
    drop(dir);
}

#[tokio::test]
async fn a_merge_moves_the_retired_patients_results_to_the_survivor() {
    let (dir, data) = temp_store();
    let engine = start(&data);
    let survivor_a28 = A28
        .replace("RESULTSA28", "RESULTSA28B")
        .replace("1000551903^", "1000559999^");
    assert_eq!(msa(&engine.send(A28.as_bytes()).await).0, "AA");
    assert_eq!(msa(&engine.send(survivor_a28.as_bytes()).await).0, "AA");
    let id_of = |patients: Vec<Value>| patients[0]["id"].as_str().unwrap().to_string();
    let retired = id_of(engine.search("identifier=1000551903").await);
    let survivor = id_of(engine.search("identifier=1000559999").await);
    assert_ne!(retired, survivor);
    assert_eq!(msa(&engine.send(&read("oru_r01_lab_panel.hl7")).await).0, "AA");
    assert_eq!(
        engine
            .found(&format!("Observation?patient={retired}"))
            .await
            .len(),
        6
    );

    // The UCR's master patient index merges the first record into the second (A40).
    let a40 = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250318101530-0400||ADT^A40^ADT_A39|RESULTSA40|P|2.5\r\
         EVN|A40|20250318101530-0400\r\
         PID|1||1000559999^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH^THI^^^^L||19920905|F\r\
         MRG|1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI\r";
    let ack = engine.send(a40.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");

    let results = engine.found(&format!("Observation?patient={survivor}")).await;
    assert_eq!(results.len(), 6, "the results followed the survivor: {results:?}");
    assert!(
        results
            .iter()
            .all(|o| o["subject"]["reference"] == format!("Patient/{survivor}"))
    );
    let reports = engine
        .found(&format!("DiagnosticReport?patient={survivor}"))
        .await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        engine
            .found(&format!("Observation?patient={retired}"))
            .await
            .is_empty()
    );
    assert!(
        engine
            .found(&format!("DiagnosticReport?patient={retired}"))
            .await
            .is_empty()
    );
    // Moved, not copied: each result has a new version; the earlier one is its history.
    assert_eq!(by_code(&results, "2345-7")["meta"]["versionId"], "2");

    // A result that still names the retired identifier lands on the survivor.
    let ack = engine.send(&read("oru_r01_radiology_report.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let reports = engine
        .found(&format!("DiagnosticReport?patient={survivor}"))
        .await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    drop(dir);
}

#[tokio::test]
async fn trakcares_results_land_on_the_patient_its_adt_feed_registered() {
    let (dir, data) = temp_store();
    let engine = start(&data);
    let trakcare = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trakcare");
    let register = std::fs::read(trakcare.join("adt_a04_register.hl7")).unwrap();
    assert_eq!(msa(&engine.send(&register).await).0, "AA");
    let patient = engine.search("identifier=TC0045821").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // TrakCare's ORU names the patient by its MRN (authority TC), as its ADT did; the results
    // mapping makes the same identifier of it.
    let results = std::fs::read(trakcare.join("oru_r01_full_blood_count.hl7")).unwrap();
    let ack = engine.send(&results).await;
    assert_eq!(msa(&ack), ("AA".into(), "TC4821000091".into()), "{ack}");
    let observations = engine.found(&format!("Observation?patient={patient}")).await;
    assert_eq!(observations.len(), 3, "{observations:?}");
    let white_cells = by_code(&observations, "WBC");
    assert_eq!(white_cells["valueQuantity"]["value"], 11.8);
    assert_eq!(white_cells["valueQuantity"]["unit"], "10*9/L");
    assert_eq!(white_cells["interpretation"][0]["coding"][0]["code"], "H");
    assert_eq!(
        white_cells["note"][0]["text"],
        "Repeat in two weeks if still raised"
    );
    let reports = engine.found(&format!("DiagnosticReport?patient={patient}")).await;
    assert_eq!(reports[0]["code"]["text"], "Full blood count");
    drop(dir);
}

#[test]
fn the_ae_for_an_unknown_patient_validates_with_hl7apy_strict() {
    let (dir, data) = temp_store();
    let engine = start(&data);
    let files = [
        fixture("oru_r01_lab_panel.hl7"),
        fixture("oru_r01_radiology_report.hl7"),
    ];
    let sent = crate::ack_validation::validate_on(&engine, &files, dir.path());
    assert_eq!(sent, 2);
}
