//! ACKs over the wire as senders read them: one reply frame per inbound frame, application ACKs
//! through the channel's return destination, the channel's ACK keys, filtered messages and
//! inbound ACKs, the ACK layout of 2.3/2.4 senders, and FHS/BHS batches in one frame.

use std::path::Path;
use std::time::Duration;

use crate::common::peers::MllpPeer;
use crate::common::{EngineProcess, MAPPINGS, msa, segment, temp_store, test_clients};
use tributary_adapter_mllp::Client;

/// A UCR message of type `kind` (`ADT^A28^ADT_A05` ...) with MSH-15/16 `accept`/`app`.
fn message(kind: &str, control: &str, version: &str, accept: &str, app: &str, mpi: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125101500||{kind}|{control}|P|{version}|||{accept}|{app}\r\
         EVN|A28|20261125101500\r\
         PID|1||{mpi}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||Okafor^Amara||19840612|F\r"
    )
    .into_bytes()
}

fn a28(control: &str, accept: &str, app: &str) -> Vec<u8> {
    message("ADT^A28^ADT_A05", control, "2.5", accept, app, "1000001")
}

fn oru(control: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|LAB|UCRHIE|TRIBUTARY|PORTAL|20261125101500||ORU^R01^ORU_R01|{control}|P|2.5|||AL|AL\r\
         PID|1||1000001^^^UCRMPI\rOBR|1\rOBX|1|NM|GLU||5.5\r"
    )
    .into_bytes()
}

async fn send(client: &mut Client, frame: &[u8]) -> String {
    String::from_utf8(client.send(frame).await.expect("a reply").to_vec()).unwrap()
}

/// No frame arrives within a second (the sender asked for none).
async fn no_frame(client: &mut Client) {
    let waited = tokio::time::timeout(Duration::from_secs(1), client.read_frame()).await;
    assert!(waited.is_err(), "an unexpected frame: {waited:?}");
}

/// The test config's channel `ucr-adt`, with extra channel keys, and destinations.
fn config(dir: &Path, channel_keys: &str, destinations: &str) -> std::path::PathBuf {
    let path = dir.join("tributary.toml");
    let text = format!(
        "[http]\nbind = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n[mappings]\ndir = {MAPPINGS:?}\n\
         [[channels]]\nname = \"ucr-adt\"\nmapping = \"ucr-adt-patient\"\n{channel_keys}\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n\
         [channels.filter]\nmessage_types = [\"ADT\"]\n{destinations}\n{}",
        test_clients()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn one_reply_frame_per_message_keeps_a_connection_in_step() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let mut client = engine.client().await;
    // The issue's repro: an ORU asking AL/AL, then an A28, on one connection.
    let reply = send(&mut client, &oru("ORU1")).await;
    assert_eq!(msa(&reply), ("CA".into(), "ORU1".into()), "{reply}");
    let reply = send(&mut client, &a28("A28-1", "", "")).await;
    assert_eq!(
        msa(&reply),
        ("AA".into(), "A28-1".into()),
        "the A28's reply is its own: {reply}"
    );
    // Enhanced mode without a return destination: the accept ACK only.
    let reply = send(&mut client, &a28("A28-2", "AL", "AL")).await;
    assert_eq!(msa(&reply), ("CA".into(), "A28-2".into()), "{reply}");
    // NE/NE: no reply (standard); the next message is answered in step.
    client.write_frame(&a28("A28-3", "NE", "NE")).await.unwrap();
    no_frame(&mut client).await;
    let reply = send(&mut client, &a28("A28-4", "", "")).await;
    assert_eq!(msa(&reply), ("AA".into(), "A28-4".into()), "{reply}");
    // The ORU no channel takes is journaled as filtered; the A28s applied.
    let (_, journal) = engine.get("/journal").await;
    let entries = journal["entries"].as_array().unwrap();
    assert_eq!(entries[0]["status"], "filtered", "{}", entries[0]);
    assert!(
        entries[0]["error"].as_str().unwrap().contains("ORU"),
        "{}",
        entries[0]
    );
    assert!(
        entries[1..].iter().all(|e| e["status"] == "applied"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn application_acks_go_to_the_return_destination_as_messages_of_their_own() {
    let peer = MllpPeer::start("127.0.0.1:0", "CA").await;
    let dir = tempfile::tempdir().unwrap();
    let destination = format!(
        "[[destinations]]\nname = \"ucr-return\"\nkind = \"mllp\"\n[destinations.settings]\naddress = \"{}\"\n",
        peer.addr
    );
    let keys =
        "application_ack_destination = \"ucr-return\"\nsenders_use_enhanced_mode = true\nanswer_ne_ne = true";
    let config = config(dir.path(), keys, &destination);
    let engine = EngineProcess::start_config(&config, &dir.path().join("data"));
    let mut client = engine.client().await;
    let reply = send(&mut client, &a28("E1", "AL", "AL")).await;
    assert_eq!(msa(&reply), ("CA".into(), "E1".into()), "{reply}");
    // answer_ne_ne: the sender that asked for nothing gets the accept ACK anyway.
    let reply = send(&mut client, &a28("E2", "NE", "AL")).await;
    assert_eq!(msa(&reply), ("CA".into(), "E2".into()), "{reply}");
    let received = peer.wait_for(2).await;
    let controls: Vec<(String, String)> = received.iter().map(|m| msa(m)).collect();
    assert_eq!(controls, [("AA".into(), "E1".into()), ("AA".into(), "E2".into())]);
    let msh = segment(&received[0], "MSH").unwrap();
    assert_eq!(
        (msh[8].as_str(), msh[14].as_str(), msh[15].as_str()),
        ("ACK^A28^ACK", "AL", "NE")
    );
    no_frame(&mut client).await;
}

#[tokio::test]
async fn original_mode_and_reject_filtered_are_channel_choices() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "ack_mode = \"original\"\non_filtered = \"reject\"",
        "",
    );
    let engine = EngineProcess::start_config(&config, &dir.path().join("data"));
    let mut client = engine.client().await;
    let reply = send(&mut client, &a28("O1", "AL", "AL")).await;
    assert_eq!(msa(&reply), ("AA".into(), "O1".into()), "{reply}");
    let reply = send(&mut client, &oru("O2")).await;
    assert_eq!(msa(&reply).0, "AR", "{reply}");
    assert!(segment(&reply, "ERR").unwrap()[3].starts_with("200"), "{reply}");
}

#[tokio::test]
async fn every_adt_event_with_a_pid_updates_the_patient_and_acks_are_not_answered() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    for (i, event) in ["A02", "A03", "A05", "A13", "A29", "A41", "A45", "A60"]
        .iter()
        .enumerate()
    {
        let kind = format!("ADT^{event}^ADT_A01");
        let mpi = format!("90000{i}");
        let ack = engine
            .send(&message(&kind, &format!("EV{i}"), "2.5", "", "", &mpi))
            .await;
        assert_eq!(msa(&ack).0, "AA", "{event}: {ack}");
        let found = engine.search(&format!("identifier={mpi}")).await;
        assert_eq!(found.len(), 1, "{event}");
    }
    // An inbound ACK is journaled and not answered.
    let mut client = engine.client().await;
    let ack = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125||ACK^A31^ACK|K1|P|2.5\rMSA|AA|TRB9\r";
    client.write_frame(ack.as_bytes()).await.unwrap();
    no_frame(&mut client).await;
    let (_, journal) = engine.get("/journal").await;
    let last = journal["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["message_type"].as_str(), last["status"].as_str()),
        (Some("ACK^A31"), Some("filtered"))
    );
}

#[tokio::test]
async fn acks_follow_the_senders_version() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    // A 2.4 sender: ERR-1, not ERR-2/3. A missing PID is an AE.
    let no_pid = |control: &str, version: &str| {
        format!("MSH|^~\\&|UCR|UCRHIE|T|P|20261125||ADT^A08^ADT_A01|{control}|P|{version}\rEVN|A08\r")
            .into_bytes()
    };
    let ack = engine.send(&no_pid("V24", "2.4")).await;
    assert_eq!(msa(&ack).0, "AE", "{ack}");
    let err = segment(&ack, "ERR").unwrap();
    assert!(err[1].starts_with("PID^1^3^101&"), "{ack}");
    assert_eq!(err.len(), 2, "ERR-1 only: {ack}");
    assert_eq!(segment(&ack, "MSH").unwrap()[8], "ACK^A08^ACK");
    // A 2.3 sender: MSH-9 in two components.
    let ack = engine.send(&no_pid("V23", "2.3")).await;
    assert_eq!(segment(&ack, "MSH").unwrap()[8], "ACK^A08", "{ack}");
    // An unreadable message: MSA-2 from its MSH-10, the default version for a garbage MSH-12.
    let ack = engine
        .send(b"MSH|^~\\&|UCR|UCRHIE|T|P|20261125||ADT^A08|CTRL9|P|two point five\rP@D|1\r")
        .await;
    assert_eq!(msa(&ack), ("AR".into(), "CTRL9".into()), "{ack}");
    let msh = segment(&ack, "MSH").unwrap();
    assert_eq!(
        (msh[8].as_str(), msh[11].as_str()),
        ("ACK^A08^ACK", "2.5"),
        "{ack}"
    );
    let ack = engine.send(b"not HL7").await;
    assert_eq!(segment(&ack, "MSH").unwrap()[8], "ACK", "never ACK^^ACK: {ack}");
}

#[tokio::test]
async fn a_batch_in_one_frame_gets_one_batch_ack() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let messages: Vec<String> = (1..=3)
        .map(|i| {
            String::from_utf8(message(
                "ADT^A08^ADT_A01",
                &format!("B{i}"),
                "2.5",
                "",
                "",
                &format!("80000{i}"),
            ))
            .unwrap()
        })
        .collect();
    let batch = format!(
        "FHS|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125||||F1\rBHS|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125||||BT1\r{}BTS|3\rFTS|1\r",
        messages.concat()
    );
    let mut client = engine.client().await;
    let reply = send(&mut client, batch.as_bytes()).await;
    let lines: Vec<&str> = reply.split('\r').filter(|l| !l.is_empty()).collect();
    assert!(
        lines[0].starts_with("FHS|^~\\&|TRIBUTARY|PORTAL|UCR|UCRHIE|"),
        "{reply}"
    );
    assert!(
        lines[0].ends_with("|F1") && lines[1].starts_with("BHS|") && lines[1].ends_with("|BT1"),
        "{reply}"
    );
    let msas: Vec<&str> = lines.iter().filter(|l| l.starts_with("MSA")).copied().collect();
    assert_eq!(msas, ["MSA|AA|B1", "MSA|AA|B2", "MSA|AA|B3"], "{reply}");
    assert_eq!(&lines[lines.len() - 2..], ["BTS|3", "FTS|1"], "{reply}");
    for i in 1..=3 {
        assert_eq!(engine.search(&format!("identifier=80000{i}")).await.len(), 1);
    }
    // One frame answered one frame: the connection is in step.
    let reply = send(&mut client, &a28("after", "", "")).await;
    assert_eq!(msa(&reply).1, "after");
}
