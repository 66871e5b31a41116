//! Documents over the wire (issue 16): MDM messages in over MLLP on a channel whose mapping
//! writes DocumentReferences, read back over FHIR: an original with its text, an addendum that
//! appends it (a PDF), a replacement that supersedes it, and a cancel that marks the addendum
//! entered-in-error while keeping its content; an unknown patient gets ERR 204.

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::common::{EngineProcess, MAPPINGS, add_channel, msa, segment, temp_store, write_config};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ucr");

const A28: &str = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250311081122-0400||ADT^A28^ADT_A05|DOCSA28|P|2.5\r\
     EVN|A28|20250311081122-0400\r\
     PID|1||1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH^THI^^^^L||19920905|F\r";

fn read(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

fn start(data: &Path) -> EngineProcess {
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    add_channel(&config, "ucr-mdm", "ucr-mdm-document", "MDM");
    EngineProcess::start_config(&config, data)
}

async fn document(engine: &EngineProcess, number: &str) -> Value {
    let found = engine
        .found(&format!("DocumentReference?identifier={number}"))
        .await;
    assert_eq!(found.len(), 1, "one document {number}: {found:?}");
    found[0].clone()
}

fn content(document: &Value) -> (String, Vec<u8>) {
    let attachment = &document["content"][0]["attachment"];
    let data = base64::engine::general_purpose::STANDARD
        .decode(attachment["data"].as_str().unwrap())
        .unwrap();
    (attachment["contentType"].as_str().unwrap().to_string(), data)
}

#[tokio::test]
async fn originals_addenda_replacements_and_cancels_land_on_their_documents() {
    let (dir, data) = temp_store();
    let engine = start(&data);
    let original = read("mdm_t02_discharge_summary.hl7");

    let ack = engine.send(&original).await;
    assert_eq!(msa(&ack).0, "AE", "unknown patient: {ack}");
    assert!(segment(&ack, "ERR").unwrap()[3].starts_with("204"), "{ack}");

    assert_eq!(msa(&engine.send(A28.as_bytes()).await).0, "AA");
    let patient = engine.search("identifier=1000551903").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ack = engine.send(&original).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let summary = document(&engine, "DOC5001").await;
    assert_eq!(summary["status"], "current");
    assert_eq!(summary["docStatus"], "final");
    assert_eq!(summary["subject"]["reference"], format!("Patient/{patient}"));
    let (content_type, text) = content(&summary);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "Admitted with community-acquired pneumonia.\n\
         Treated with oral antibiotics & discharged home.\n\
         Follow up with the family doctor in 1 week."
    );

    // The addendum is a document of its own, appending the original.
    assert_eq!(msa(&engine.send(&read("mdm_t06_addendum_pdf.hl7")).await).0, "AA");
    let addendum = document(&engine, "DOC5002").await;
    assert_eq!(addendum["relatesTo"][0]["code"], "appends");
    assert_eq!(
        addendum["relatesTo"][0]["target"]["reference"],
        format!("DocumentReference/{}", summary["id"].as_str().unwrap())
    );
    let (content_type, pdf) = content(&addendum);
    assert_eq!(content_type, "application/pdf");
    assert!(pdf.starts_with(b"%PDF-"));

    // The replacement supersedes the original.
    assert_eq!(msa(&engine.send(&read("mdm_t10_replacement.hl7")).await).0, "AA");
    let replacement = document(&engine, "DOC5003").await;
    assert_eq!(replacement["status"], "current");
    assert_eq!(replacement["relatesTo"][0]["code"], "replaces");
    let summary = document(&engine, "DOC5001").await;
    assert_eq!(summary["status"], "superseded");
    assert_eq!(summary["meta"]["versionId"], "2");

    // The cancel of the addendum: entered-in-error, its content and relation kept.
    assert_eq!(
        msa(&engine.send(&read("mdm_t11_cancel_addendum.hl7")).await).0,
        "AA"
    );
    let addendum = document(&engine, "DOC5002").await;
    assert_eq!(addendum["status"], "entered-in-error");
    assert_eq!(content(&addendum).0, "application/pdf", "{addendum}");
    assert_eq!(addendum["relatesTo"][0]["code"], "appends");

    let current = engine
        .found(&format!("DocumentReference?patient={patient}&status=current"))
        .await;
    assert_eq!(current.len(), 1, "{current:?}");
    // Searchable by category (TXA-2, table 0270) and date, as a user filters documents.
    let summaries = engine
        .found(&format!(
            "DocumentReference?patient={patient}&category=DS&date=ge2025-03-01"
        ))
        .await;
    assert!(!summaries.is_empty(), "by category and date");
    assert!(
        engine
            .found(&format!("DocumentReference?patient={patient}&category=XX"))
            .await
            .is_empty()
    );

    // An event HL7 does not define for MDM is refused before any channel.
    let unknown = String::from_utf8(original)
        .unwrap()
        .replace("MDM^T02^MDM_T02|UCR250321000401", "MDM^T99|UCR250321000499");
    let ack = engine.send(unknown.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AR", "{ack}");
    assert!(ack.contains("T01 to T11"), "{ack}");
    drop(dir);
}
