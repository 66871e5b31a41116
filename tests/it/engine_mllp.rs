//! The engine over the wire: MLLP in, ACKs back, Patients out over HTTP, across restarts and kills.

use crate::common::{EngineProcess, UCR_MPI, identifier_query, msa, segment, temp_store};
use serde_json::Value;

const HOSPA: &str = "urn:oid:2.16.840.1.113883.3.9999.2";

/// A UCR ADT message about patient `mpi` (MRN `mrn`) with control id `control`.
fn adt(event: &str, control: &str, mpi: &str, mrn: &str, family: &str, street: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125101500+0100||ADT^{event}^ADT_A05|{control}|P|2.5\r\
         EVN|{event}|20261125101500\r\
         PID|1||{mpi}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI~{mrn}^^^HOSPA&2.16.840.1.113883.3.9999.2&ISO^MR||{family}^Amara^Q^^Dr^^L||19840612|F|||{street}^Apt 2^Boston^MA^02118^USA^H||^PRN^PH^^1^617^5551234~^NET^Internet^amara.{mpi}@example.org|^WPN^CP^^1^617^5559876|ar^Arabic^ISO639\r\
         PV1||N\r"
    )
    .into_bytes()
}

#[tokio::test]
async fn an_a28_becomes_a_patient_readable_over_fhir() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let ack = engine
        .send(&adt("A28", "C1", "1000001", "M1", "Okafor", "12 Harbour Rd"))
        .await;
    assert_eq!(msa(&ack), ("AA".into(), "C1".into()), "{ack}");
    let msh = segment(&ack, "MSH").unwrap();
    assert_eq!(
        &msh[2..6],
        ["TRIBUTARY", "PORTAL", "UCR", "UCRHIE"],
        "sender and receiver swap"
    );
    assert_eq!(msh[8], "ACK^A28^ACK");
    assert_ne!(msh[9], "C1", "the ACK has its own control id");

    let found = engine.search(&identifier_query(UCR_MPI, "1000001")).await;
    assert_eq!(found.len(), 1);
    let patient = &found[0];
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["name"][0]["family"], "Okafor");
    assert_eq!(patient["name"][0]["given"], serde_json::json!(["Amara", "Q"]));
    assert_eq!(patient["name"][0]["prefix"], serde_json::json!(["Dr"]));
    assert_eq!(patient["name"][0]["use"], "official");
    assert_eq!(patient["birthDate"], "1984-06-12");
    assert_eq!(patient["gender"], "female");
    assert_eq!(
        patient["address"][0]["line"],
        serde_json::json!(["12 Harbour Rd", "Apt 2"])
    );
    assert_eq!(patient["address"][0]["postalCode"], "02118");
    assert_eq!(patient["address"][0]["use"], "home");
    assert_eq!(patient["communication"][0]["language"]["coding"][0]["code"], "ar");
    let telecom = patient["telecom"].as_array().unwrap();
    assert!(
        telecom.contains(&serde_json::json!({"system": "phone", "value": "+1 617 5551234", "use": "home"})),
        "{telecom:?}"
    );
    assert!(telecom.contains(&serde_json::json!({"system": "email", "value": "amara.1000001@example.org"})));
    assert!(
        telecom.contains(&serde_json::json!({"system": "phone", "value": "+1 617 5559876", "use": "mobile"}))
    );
    let identifiers = patient["identifier"].as_array().unwrap();
    assert_eq!(identifiers.len(), 2);
    assert_eq!(identifiers[1]["system"], HOSPA);
    assert_eq!(identifiers[1]["type"]["coding"][0]["code"], "MR");
    assert_eq!(patient["meta"]["versionId"], "1");
    assert!(patient["meta"]["lastUpdated"].as_str().unwrap().starts_with("20"));

    let id = patient["id"].as_str().unwrap();
    let (status, read) = engine.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(&read, patient);
    for query in [
        "identifier=M1".to_string(),
        identifier_query(HOSPA, "M1"),
        "email=AMARA.1000001%40example.org".into(),
        "phone=6175559876".into(),
        "phone=%2B1%20617%20555%201234".into(),
    ] {
        let found = engine.search(&query).await;
        assert_eq!(found.len(), 1, "{query}");
        assert_eq!(found[0]["id"], patient["id"], "{query}");
    }
    assert!(engine.search("email=nobody%40example.org").await.is_empty());
    let (status, outcome) = engine.get("/fhir/Patient/no-such-id").await;
    assert_eq!(status, 404);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let (status, outcome) = engine.get("/fhir/Patient?birthdate=yesterday").await;
    assert_eq!(status, 400);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let (status, health) = engine.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "pass");
}

#[tokio::test]
async fn updates_apply_in_order_and_a_resend_changes_nothing() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let first = adt("A28", "C10", "1000002", "M2", "Haddad", "1 First St");
    let first_ack = engine.send(&first).await;
    assert_eq!(msa(&first_ack).0, "AA");
    // One connection, many updates: the last one wins.
    let mut client = engine.client().await;
    for n in 0..20 {
        let update = adt(
            "A31",
            &format!("C1{n:02}"),
            "1000002",
            "M2",
            "Haddad",
            &format!("{n} Second St"),
        );
        let ack = client.send(&update).await.unwrap();
        assert!(String::from_utf8_lossy(&ack).contains("MSA|AA|"));
    }
    // The first message again: its first ACK, byte for byte, and no change to the patient.
    let resend_ack = engine.send(&first).await;
    assert_eq!(resend_ack, first_ack);
    let found = engine.search("identifier=1000002").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["address"][0]["line"][0], "19 Second St");
    assert_eq!(found[0]["meta"]["versionId"], "21");
}

#[tokio::test]
async fn everything_acked_survives_a_restart_and_a_kill() {
    let (_dir, data) = temp_store();
    let mut engine = EngineProcess::start(&data);
    assert_eq!(
        msa(&engine
            .send(&adt("A28", "K1", "1000003", "M3", "Novak", "3 Kill Rd"))
            .await)
        .0,
        "AA"
    );
    let status = engine.terminate();
    assert!(status.success(), "a clean shutdown on SIGTERM: {status}");

    let mut engine = EngineProcess::start(&data);
    assert_eq!(
        engine.search("identifier=1000003").await.len(),
        1,
        "found after a clean restart"
    );
    // SIGKILL the moment the ACK arrives: an ACKed message must already be on disk.
    let mut client = engine.client().await;
    let ack = client
        .send(&adt("A28", "K2", "1000004", "M4", "Silva", "4 Kill Rd"))
        .await
        .unwrap();
    engine.kill();
    assert!(String::from_utf8_lossy(&ack).contains("MSA|AA|K2"));

    let engine = EngineProcess::start(&data);
    assert_eq!(
        engine.search("identifier=1000004").await.len(),
        1,
        "found after SIGKILL"
    );
    assert_eq!(engine.search("identifier=1000003").await.len(), 1);
    // And the journal still knows both: resends get their first ACK.
    let again = engine
        .send(&adt("A28", "K2", "1000004", "M4", "Silva", "4 Kill Rd"))
        .await;
    assert_eq!(again, String::from_utf8_lossy(&ack));

    // The journal kept every message, with its status and the ACK it got.
    let (status, journal) = engine.get("/journal").await;
    assert_eq!(status, 200);
    let entries = journal["entries"].as_array().unwrap();
    let summary: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["control_id"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("K1", "applied"), ("K2", "applied"), ("K2", "duplicate")]
            .map(|(c, s)| (c.to_string(), s.to_string()))
    );
    assert_eq!(entries[1]["channel"], "ucr-adt");
    assert_eq!(
        entries[1]["replies"][0].as_str().unwrap(),
        String::from_utf8_lossy(&ack)
    );
    assert_eq!(entries[2]["duplicate_of"], entries[1]["seq"]);
}

#[tokio::test]
async fn a40_retires_the_merged_record_and_its_identifiers_find_the_survivor() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    engine
        .send(&adt("A28", "G1", "2000001", "S1", "Moreau", "1 Keep St"))
        .await;
    engine
        .send(&adt("A28", "G2", "2000002", "R1", "Moreau", "1 Keep St"))
        .await;
    let survivor = engine.search("identifier=2000001").await[0].clone();
    let retired = engine.search("identifier=2000002").await[0].clone();
    assert_ne!(survivor["id"], retired["id"]);

    let merge = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125110000||ADT^A40^ADT_A39|G3|P|2.5\r\
                 EVN|A40|20261125110000\r\
                 PID|1||2000001^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||Moreau^Louis\r\
                 MRG|2000002^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI\r";
    let ack = engine.send(merge.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");

    let found = engine.search(&identifier_query(UCR_MPI, "2000002")).await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0]["id"], survivor["id"],
        "the retired identifier finds the survivor"
    );
    assert_eq!(engine.search("identifier=R1").await[0]["id"], survivor["id"]);
    let (_, old) = engine
        .get(&format!("/fhir/Patient/{}", retired["id"].as_str().unwrap()))
        .await;
    assert_eq!(old["active"], false);
    assert_eq!(old["link"][0]["type"], "replaced-by");
    assert_eq!(
        old["link"][0]["other"]["reference"],
        format!("Patient/{}", survivor["id"].as_str().unwrap())
    );
    assert_eq!(found[0]["name"][0]["given"][0], "Louis");
}

#[tokio::test]
async fn a47_changes_an_identifier_and_refuses_unknown_ones() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    engine
        .send(&adt("A28", "H1", "3000001", "OLD1", "Tanaka", "5 Change St"))
        .await;
    let change = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125110000||ADT^A47^ADT_A30|H2|P|2.5\r\
                  EVN|A47|20261125110000\r\
                  PID|1||NEW1^^^HOSPA&2.16.840.1.113883.3.9999.2&ISO^MR||Tanaka^Yuki\r\
                  MRG|OLD1^^^HOSPA&2.16.840.1.113883.3.9999.2&ISO^MR\r";
    assert_eq!(msa(&engine.send(change.as_bytes()).await).0, "AA");
    let found = engine.search("identifier=NEW1").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["identifier"][0]["value"], "3000001");
    assert!(
        engine.search("identifier=OLD1").await.is_empty(),
        "the old identifier is gone"
    );

    let unknown = change.replace("H2", "H3").replace("OLD1", "NEVER");
    let ack = engine.send(unknown.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AE", "{ack}");
    let err = segment(&ack, "ERR").expect("an ERR segment");
    assert!(err[3].starts_with("204"), "{err:?}");
}

#[tokio::test]
async fn unsupported_and_unreadable_messages_get_ar_with_err() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let cases: [(&str, &str); 3] = [
        (
            "MSH|^~\\&|UCR|UCRHIE|T|P|20261125||ADT^A99^ADT_A01|U0|P|2.5\rEVN|A99\rPID|1||1^^^X\r",
            "201",
        ),
        (
            "MSH|^~\\&|UCR|UCRHIE|T|P|20261125||QBP^Q22^QBP_Q21|U1|P|2.5\rQPD|IHE PDQ Query|Q1\r",
            "201",
        ),
        (
            "MSH|^~\\&|UCR|UCRHIE|T|P|20261125||ADT^A08^ADT_A01|U3|P|3.0\rPID|1||1^^^X\r",
            "203",
        ),
    ];
    for (message, code) in cases {
        let ack = engine.send(message.as_bytes()).await;
        let (status, control) = msa(&ack);
        assert_eq!(status, "AR", "{ack}");
        assert!(control.starts_with('U'));
        let err = segment(&ack, "ERR").expect("an ERR segment");
        assert!(err[3].starts_with(code), "{code}: {err:?}");
    }
    let ack = engine.send(b"this is not HL7 at all").await;
    assert_eq!(msa(&ack).0, "AR", "{ack}");
    assert!(segment(&ack, "ERR").is_some());
    let missing_pid = "MSH|^~\\&|UCR|UCRHIE|T|P|20261125||ADT^A08^ADT_A01|U4|P|2.5\rEVN|A08\r";
    let ack = engine.send(missing_pid.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AE", "{ack}");
    // Every refusal is kept in the journal with its reason.
    let (_, journal) = engine.get("/journal").await;
    let entries = journal["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert!(
        entries[..4]
            .iter()
            .all(|e| e["status"] == "rejected" && e["error"].is_string())
    );
    assert_eq!(entries[3]["message"], "this is not HL7 at all");
    assert_eq!(entries[4]["status"], "error");
    // The engine is still up and well.
    assert_eq!(engine.get("/health").await.0, 200);
}

#[tokio::test]
async fn enhanced_mode_honours_msh_15_and_msh_16() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let enhanced = |control: &str, accept: &str, app: &str| {
        let mut message =
            String::from_utf8(adt("A28", control, "4000001", "E1", "Kowalski", "9 Hill Ln")).unwrap();
        message = message.replacen("|P|2.5\r", &format!("|P|2.5|||{accept}|{app}\r"), 1);
        message.into_bytes()
    };
    // AL / NE: only the accept ACK, CA.
    let mut client = engine.client().await;
    let ack = String::from_utf8(client.send(&enhanced("E1", "AL", "NE")).await.unwrap().to_vec()).unwrap();
    assert_eq!(msa(&ack).0, "CA", "{ack}");
    // AL / AL: the accept ACK only on the connection (the application ACK would go to a
    // return destination; tests/it/acks.rs), so the next message's reply is its own.
    let ack = String::from_utf8(client.send(&enhanced("E2", "AL", "AL")).await.unwrap().to_vec()).unwrap();
    assert_eq!(msa(&ack), ("CA".into(), "E2".into()));
    let ack = String::from_utf8(client.send(&enhanced("E3", "", "")).await.unwrap().to_vec()).unwrap();
    assert_eq!(msa(&ack), ("AA".into(), "E3".into()));
}

#[tokio::test]
async fn an_oversized_frame_is_answered_and_the_connection_goes_on() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start_with(&data, "max_frame_bytes = 2048\n");
    let mut client = engine.client().await;
    let big = String::from_utf8(adt("A28", "BIG1", "5000001", "B1", &"X".repeat(4000), "1 Big St")).unwrap();
    let ack = String::from_utf8(client.send(big.as_bytes()).await.unwrap().to_vec()).unwrap();
    assert_eq!(msa(&ack), ("AR".into(), "BIG1".into()), "{ack}");
    let ack = String::from_utf8(
        client
            .send(&adt("A28", "BIG2", "5000002", "B2", "Small", "1 Small St"))
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(msa(&ack).0, "AA");
    assert!(engine.search("identifier=5000001").await.is_empty());
}

#[tokio::test]
async fn many_connections_at_once_each_get_their_acks() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..16 {
        let mut client = engine.client().await;
        tasks.spawn(async move {
            for n in 0..25 {
                let control = format!("P{c}-{n}");
                let message = adt(
                    "A28",
                    &control,
                    &format!("6{c:03}{n:03}"),
                    &format!("PM{c}-{n}"),
                    "Nguyen",
                    "1 Busy St",
                );
                let ack = String::from_utf8(client.send(&message).await.unwrap().to_vec()).unwrap();
                assert_eq!(msa(&ack), ("AA".to_string(), control));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let (_, health) = engine.get("/health").await;
    assert_eq!(health["journal_last_seq"], Value::from(400));
}

#[tokio::test]
async fn the_store_on_disk_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let ack = engine
        .send(&adt("A28", "P1", "1000090", "M90", "Private", "9 Owner Rd"))
        .await;
    assert_eq!(msa(&ack).0, "AA");
    // Journal segments hold whole messages (patient data): no one but the owner may read them.
    fn walk(path: &std::path::Path, found: &mut Vec<(std::path::PathBuf, u32)>) {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        found.push((path.to_path_buf(), mode));
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), found);
            }
        }
    }
    let mut found = vec![];
    walk(&data, &mut found);
    assert!(
        found
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "wal"))
    );
    let open: Vec<_> = found.iter().filter(|(_, mode)| mode & 0o077 != 0).collect();
    assert!(open.is_empty(), "readable by others: {open:?}");
}

/// Updates of one patient racing in on eight connections: each is applied on top of the one
/// before it (none computed from a version another update has since replaced), as if they had
/// come one by one. Each carries an MRN of its own, and identifiers accumulate: a lost update
/// would lose its MRN, and a version.
#[tokio::test]
async fn concurrent_updates_of_one_patient_lose_nothing() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let first = engine
        .send(&adt("A28", "R0", "3000001", "R-0", "Mensah", "1 Quay St"))
        .await;
    assert_eq!(msa(&first).0, "AA", "{first}");
    let (connections, each) = (8, 25);
    let mut senders = vec![];
    for connection in 0..connections {
        let mut client = engine.client().await;
        senders.push(tokio::spawn(async move {
            for i in 0..each {
                let mrn = format!("R-{connection}-{i}");
                let control = format!("R{connection}-{i}");
                let message = adt("A08", &control, "3000001", &mrn, "Mensah", "1 Quay St");
                let ack = client.send(&message).await.expect("an ACK");
                let ack = String::from_utf8(ack.to_vec()).unwrap();
                assert_eq!(msa(&ack).0, "AA", "{ack}");
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let found = engine.search(&identifier_query(UCR_MPI, "3000001")).await;
    assert_eq!(found.len(), 1);
    let patient = &found[0];
    let mrns: std::collections::BTreeSet<&str> = patient["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["system"] == HOSPA)
        .filter_map(|i| i["value"].as_str())
        .collect();
    assert_eq!(mrns.len(), 1 + connections * each, "every update's MRN is kept");
    let id = patient["id"].as_str().unwrap();
    let (status, history) = engine.get(&format!("/fhir/Patient/{id}/_history")).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(
        history["total"],
        1 + connections * each,
        "one version per message"
    );
}
