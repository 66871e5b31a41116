//! Every message in the public corpus (../shared/corpus/hl7v2), sent to the engine over MLLP:
//! each gets a well-formed ACK (a PIX query its RSP^K23; when its MSH-15/MSH-16 ask for none,
//! none) and the engine stays up. Skipped with a message when the corpus is absent (a clone of the project alone).

use std::time::Duration;

use crate::common::corpus::{corpus_files, frames};
use crate::common::{EngineProcess, temp_store};
use tributary::hl7::Message;

/// Whether MSH-15 says no reply is wanted on the connection (enhanced mode: the application
/// ACK, if any, goes to a return destination, and the test config names none). An inbound ACK
/// is never answered.
fn wants_no_ack(message: &Message) -> bool {
    message.accept_ack_type() == "NE" || message.message_type() == "ACK"
}

#[tokio::test]
async fn every_corpus_message_gets_a_well_formed_ack() {
    let Some(files) = corpus_files() else {
        eprintln!("skipped: corpus absent");
        return;
    };
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let mut sent = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for frame in frames(&bytes) {
            if frame.is_empty() {
                continue;
            }
            let parsed = Message::parse(&frame).ok();
            // MSH-15 ER or SU: whether a reply comes depends on the outcome
            // (tests/it/ack_validation.rs reads those replies).
            if parsed
                .as_ref()
                .is_some_and(|m| matches!(m.accept_ack_type().trim(), "ER" | "SU"))
            {
                continue;
            }
            let no_ack_wanted = parsed.as_ref().is_some_and(wants_no_ack);
            let mut client = engine.client().await;
            client.write_frame(&frame).await.unwrap();
            let wait = Duration::from_secs(if no_ack_wanted { 1 } else { 5 });
            let reply = tokio::time::timeout(wait, client.read_frame()).await;
            sent += 1;
            if no_ack_wanted {
                assert!(
                    reply.is_err(),
                    "{}: an ACK although MSH-15/16 asked for none",
                    file.display()
                );
                continue;
            }
            let ack = reply
                .unwrap_or_else(|_| panic!("{}: no ACK within 5 s", file.display()))
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let ack = Message::parse(&ack)
                .unwrap_or_else(|e| panic!("{}: the ACK does not parse: {e}", file.display()));
            // A PIX query (QBP^Q23) is answered with its response (RSP^K23), everything else ACK.
            let is_pix_query = parsed
                .as_ref()
                .is_some_and(|m| m.message_type() == "QBP" && m.trigger_event() == "Q23");
            let expected = if is_pix_query { "RSP" } else { "ACK" };
            assert_eq!(ack.message_type(), expected, "{}", file.display());
            let code = ack.get("MSA-1").unwrap_or_default();
            assert!(
                ["AA", "AE", "AR", "CA", "CE", "CR"].contains(&code.as_str()),
                "{}: MSA-1 {code}",
                file.display()
            );
            if code != "AA" && code != "CA" {
                assert!(
                    ack.segment("ERR").is_some(),
                    "{}: {code} without ERR",
                    file.display()
                );
            }
            if let Some(original) = &parsed {
                assert_eq!(
                    ack.get("MSA-2").unwrap_or_default().trim(),
                    original.control_id().trim(),
                    "{}",
                    file.display()
                );
            }
        }
    }
    assert!(sent > 150, "only {sent} messages sent");
    let (status, _) = engine.get("/health").await;
    assert_eq!(status, 200, "the engine is still up");
}
