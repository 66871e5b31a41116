//! Senders nobody vouched for: a channel takes messages only from the senders it allows, and a
//! message no channel took is journaled by its head only, so a stranger cannot fill the disk.

use std::path::Path;

use crate::common::{EngineProcess, MAPPINGS, msa, segment, test_clients};

fn config(dir: &Path) -> std::path::PathBuf {
    config_with_source(dir, "")
}

fn config_with_source(dir: &Path, source: &str) -> std::path::PathBuf {
    let path = dir.join("tributary.toml");
    let text = format!(
        "[http]\nbind = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n[mappings]\ndir = {MAPPINGS:?}\n\
         [journal]\nrejected_head_bytes = 1024\n\
         [[channels]]\nname = \"ucr-adt\"\nmapping = \"ucr-adt-patient\"\nallowed_senders = [\"UCR^UCRHIE\"]\non_filtered = \"reject\"\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n{source}\n\
         [channels.filter]\nmessage_types = [\"ADT^A28\", \"ADT^A40\"]\n{}",
        test_clients()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn a28(application: &str, facility: &str, control: &str, id: &str, pad: usize) -> Vec<u8> {
    format!(
        "MSH|^~\\&|{application}|{facility}|TRIBUTARY|PORTAL|20261125101500||ADT^A28^ADT_A05|{control}|P|2.5\r\
         EVN|A28|20261125101500\r\
         PID|1||{id}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||Stranger^Sam||19700101|M\r\
         NTE|1||{}\r",
        "z".repeat(pad)
    )
    .into_bytes()
}

#[tokio::test]
async fn a_channel_takes_messages_only_from_the_senders_it_allows() {
    let dir = tempfile::tempdir().unwrap();
    let engine = EngineProcess::start_config(&config(dir.path()), &dir.path().join("data"));

    let ack = engine.send(&a28("UCR", "UCRHIE", "OK1", "7000001", 10)).await;
    assert_eq!(msa(&ack), ("AA".into(), "OK1".into()), "{ack}");

    // Another application, and the right application from another facility: AR, nothing stored.
    for (application, facility, control, id) in [
        ("ANYONE", "UCRHIE", "NO1", "7000002"),
        ("UCR", "ELSEWHERE", "NO2", "7000003"),
    ] {
        let ack = engine.send(&a28(application, facility, control, id, 10)).await;
        assert_eq!(msa(&ack), ("AR".into(), control.into()), "{ack}");
        let err = segment(&ack, "ERR").expect("an ERR segment");
        assert!(
            err.join("|").contains("is not allowed on channel `ucr-adt`"),
            "{ack}"
        );
        assert!(engine.search(&format!("identifier={id}")).await.is_empty());
    }
    assert_eq!(engine.search("identifier=7000001").await.len(), 1);
}

#[tokio::test]
async fn a_rejected_message_is_journaled_by_its_head_only() {
    let dir = tempfile::tempdir().unwrap();
    let engine = EngineProcess::start_config(&config(dir.path()), &dir.path().join("data"));
    let big = 200 * 1024;
    // A sender no channel allows, an unroutable type, unreadable bytes: each 200 KB.
    let stranger = a28("ANYONE", "X", "BIG1", "7000010", big);
    let unroutable = String::from_utf8(a28("UCR", "UCRHIE", "BIG2", "7000011", big))
        .unwrap()
        .replace("ADT^A28^ADT_A05", "ORU^R01^ORU_R01")
        .into_bytes();
    let unreadable = [b"garbage ".repeat(big / 8)].concat();
    for message in [&stranger, &unroutable, &unreadable] {
        let ack = engine.send(message).await;
        assert_eq!(msa(&ack).0, "AR", "{ack}");
    }
    // An accepted message is kept whole, however large.
    let welcome = a28("UCR", "UCRHIE", "BIG3", "7000012", big);
    assert_eq!(msa(&engine.send(&welcome).await).0, "AA");

    let (status, journal) = engine.get("/journal").await;
    assert_eq!(status, 200);
    let entries = journal["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    for entry in &entries[..3] {
        assert_eq!(entry["status"], "rejected", "{entry}");
        let kept = entry["message"].as_str().unwrap().len();
        assert!(
            kept <= 1024,
            "a rejected message keeps its head only: {kept} bytes"
        );
        assert!(entry["message_bytes"].as_u64().unwrap() >= big as u64, "{entry}");
    }
    assert!(
        entries[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("MSH|^~\\&|ANYONE|X|")
    );
    assert_eq!(entries[3]["status"], "applied");
    assert!(entries[3]["message"].as_str().unwrap().len() > big);
    assert!(entries[3].get("message_bytes").is_none());

    // The journal on disk grew by the heads, not by the rejected messages. Segments are
    // preallocated: what they hold ends at their last non-zero byte.
    let journal_bytes: u64 = std::fs::read_dir(dir.path().join("data/journal"))
        .unwrap()
        .map(|e| {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            bytes
                .iter()
                .rposition(|b| *b != 0)
                .map_or(0, |last| last as u64 + 1)
        })
        .sum();
    assert!(
        journal_bytes < 2 * big as u64 + 64 * 1024,
        "journal holds {journal_bytes} bytes"
    );
}

/// Sends one framed message from `local` (a loopback address of the test's choosing) and
/// returns the reply, or None when the connection is closed without one.
async fn send_from(local: &str, to: &str, message: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(to.parse().unwrap()).await.unwrap();
    let frame = [&[0x0b][..], message, &[0x1c, 0x0d]].concat();
    // A closed connection may refuse the write; either way no reply comes.
    let _ = stream.write_all(&frame).await;
    let mut reply = vec![];
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer or a close within 10 s");
        match read {
            Ok(0) | Err(_) => return None,
            Ok(n) => reply.extend_from_slice(&buffer[..n]),
        }
        if reply.ends_with(&[0x1c, 0x0d]) {
            return Some(String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned());
        }
    }
}

#[tokio::test]
async fn a_listener_takes_connections_only_from_its_allowed_peers() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_source(dir.path(), "allowed_peers = [\"127.0.0.2\", \"127.0.1.0/24\"]");
    let engine = EngineProcess::start_config(&config, &dir.path().join("data"));
    let message = a28("UCR", "UCRHIE", "PEER1", "7000020", 10);
    // From an address on the list, and from one inside an allowed network: AA.
    let ack = send_from("127.0.0.2", &engine.mllp, &message)
        .await
        .expect("an ACK");
    assert_eq!(msa(&ack), ("AA".into(), "PEER1".into()), "{ack}");
    let ack = send_from(
        "127.0.1.9",
        &engine.mllp,
        &a28("UCR", "UCRHIE", "PEER2", "7000021", 10),
    )
    .await
    .expect("an ACK");
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    // From anywhere else the connection is closed before anything is read: no ACK, no change.
    let refused = send_from(
        "127.0.0.1",
        &engine.mllp,
        &a28("UCR", "UCRHIE", "PEER3", "7000022", 10),
    )
    .await;
    assert_eq!(refused, None);
    assert!(engine.search("identifier=7000022").await.is_empty());
    let (_, journal) = engine.get("/journal").await;
    assert_eq!(
        journal["entries"].as_array().unwrap().len(),
        2,
        "nothing journaled from a stranger"
    );
}

#[test]
fn a_bad_allowed_peer_is_named_by_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_source(dir.path(), "allowed_peers = [\"10.0.0.0/40\"]");
    let out = std::process::Command::new(crate::common::BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tributary.toml:") && stderr.contains("channels[0].source.allowed_peers"),
        "{stderr}"
    );
    assert!(stderr.contains("10.0.0.0/40"), "{stderr}");
}
