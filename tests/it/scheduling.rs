//! Scheduling over the wire (issue 14's demonstration handler): SIU messages in over MLLP on a
//! channel whose mapping writes Appointments, read back over FHIR as a user would check them,
//! and the destinations subscribed to `Appointment-changed` told of each change, not of a resend.

use std::path::Path;
use std::time::Duration;

use crate::common::{self, EngineProcess, MAPPINGS, msa, segment, temp_store, write_config};
use serde_json::Value;

const FILLER: &str = "urn:oid:2.16.840.1.113883.3.9999.6";

fn s12(control_id: &str, start: &str) -> String {
    format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250312090000-0400||SIU^S12^SIU_S12|{control_id}|P|2.5\r\
         SCH|PLC778812^CLINIC^2.16.840.1.113883.3.9999.5^ISO|APT20250401-0931^UCRSCHED^2.16.840.1.113883.3.9999.6^ISO|||||FOLLOWUP^Follow-up visit^HL70276|Normal^Routine schedule request^HL70277|30|MIN|||||||||||||||Booked\r\
         TQ1|1||||||{start}|20250401100000-0400\r\
         PID|1||1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH^THI^^^^L||19920905|F\r\
         AIL|1|A|FAMMED^102^1^HOSPB^^^^^Family Medicine Clinic\r"
    )
}

const A28: &str = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250311081122-0400||ADT^A28^ADT_A05|SCHEDA28|P|2.5\r\
     EVN|A28|20250311081122-0400\r\
     PID|1||1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH^THI^^^^L||19920905|F\r";

/// The engine with the test channels (the UCR's scheduling feed among them, on the same
/// listener) and a file destination subscribed to `Appointment-changed`.
fn start(data: &Path, outbox: &Path) -> EngineProcess {
    let config_dir = data.parent().unwrap();
    let config = write_config(config_dir, "", Path::new(MAPPINGS));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[destinations]]\nname = \"schedule-out\"\nkind = \"file\"\nevents = [\"Appointment-changed\"]\n\
         [destinations.settings]\ndir = {:?}\n",
        outbox.display().to_string()
    ));
    std::fs::write(&config, text).unwrap();
    EngineProcess::start_config(&config, data)
}

async fn appointments(engine: &EngineProcess, query: &str) -> Vec<Value> {
    engine.found(&format!("Appointment?{query}")).await
}

/// The files the destination has been sent, waiting up to a few seconds for `n`.
async fn delivered(dir: &Path, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let files: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if files.len() >= n {
            let mut sent: Vec<Value> = files
                .iter()
                .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
                .collect();
            sent.sort_by_key(|a| a["meta"]["versionId"].as_str().unwrap_or("").to_string());
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the destination was not sent {n} deliveries");
}

#[tokio::test]
async fn an_siu_booking_becomes_an_appointment_of_the_patient_once_and_its_subscribers_hear_of_it() {
    let (dir, data) = temp_store();
    let outbox = dir.path().join("schedule-out");
    let engine = start(&data, &outbox);

    let ack = engine.send(A28.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let patient_id = engine
        .search("identifier=1000551903")
        .await
        .first()
        .and_then(|p| p["id"].as_str().map(str::to_string))
        .expect("the patient");

    let booking = s12("SCHED1", "20250401093000-0400");
    let ack = engine.send(booking.as_bytes()).await;
    assert_eq!(msa(&ack), ("AA".into(), "SCHED1".into()), "{ack}");

    let found = appointments(&engine, &format!("identifier={FILLER}%7CAPT20250401-0931")).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let appointment = &found[0];
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["start"], "2025-04-01T09:30:00-04:00");
    assert_eq!(
        appointment["participant"][0]["actor"]["reference"],
        format!("Patient/{patient_id}"),
        "the patient named by PID-3 is the stored one: {appointment}"
    );
    let of_patient = appointments(&engine, &format!("patient={patient_id}")).await;
    assert_eq!(of_patient.len(), 1, "found by its patient: {of_patient:?}");
    let typed = appointments(
        &engine,
        &format!("patient={patient_id}&appointment-type=FOLLOWUP&date=ge2025-04-01"),
    )
    .await;
    assert_eq!(typed.len(), 1, "found by its type and date: {typed:?}");

    // A resend is answered as the first time and changes nothing.
    let again = engine.send(booking.as_bytes()).await;
    assert_eq!(msa(&again), ("AA".into(), "SCHED1".into()), "{again}");
    let found = appointments(&engine, &format!("identifier={FILLER}%7CAPT20250401-0931")).await;
    assert_eq!(found[0]["meta"]["versionId"], "1", "{found:?}");

    // The same control id for other content is refused, AR with ERR 205.
    let reused = s12("SCHED1", "20250402093000-0400");
    let ack = engine.send(reused.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AR", "{ack}");
    let err = segment(&ack, "ERR").expect("an ERR");
    assert!(err.iter().any(|f| f.starts_with("205")), "{ack}");

    // A reschedule (S13) moves it; the destination is told of both versions, not the resend.
    let moved = s12("SCHED2", "20250402093000-0400").replace("SIU^S12^SIU_S12", "SIU^S13^SIU_S12");
    let ack = engine.send(moved.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let found = appointments(&engine, &format!("identifier={FILLER}%7CAPT20250401-0931")).await;
    assert_eq!(found.len(), 1, "one appointment, moved: {found:?}");
    assert_eq!(found[0]["start"], "2025-04-02T09:30:00-04:00");
    assert_eq!(found[0]["meta"]["versionId"], "2");
    let sent = delivered(&outbox, 2).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["resourceType"], "Appointment");
    assert_eq!(sent[0]["start"], "2025-04-01T09:30:00-04:00");
    assert_eq!(sent[1]["start"], "2025-04-02T09:30:00-04:00");

    // An event HL7 does not define is refused before any channel.
    let unknown = s12("SCHED3", "20250401093000-0400").replace("SIU^S12^SIU_S12", "SIU^S99");
    let ack = engine.send(unknown.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AR", "{ack}");
    assert!(ack.contains("201"), "{ack}");
}

#[test]
fn check_config_refuses_a_channel_whose_mapping_writes_what_its_messages_do_not_change() {
    let (dir, _data) = temp_store();
    let config = write_config(dir.path(), "", Path::new(MAPPINGS));
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "mapping = \"ucr-adt-patient\"",
        "mapping = \"ucr-siu-appointment\"",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(common::BIN)
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("ucr-siu-appointment")
            && stderr.contains("Appointment")
            && stderr.contains("Patient, AllergyIntolerance (ADT)"),
        "names the mapping, what it writes and what the channel's messages change: {stderr}"
    );
}
