//! Several engine nodes on one PostgreSQL database (README "Scaling out"), over the wire, against
//! a real PostgreSQL server (`tributary_store::test_postgres`): load on two nodes, a node killed
//! mid-stream with its senders moving to the other, a resend to another node, two nodes changing
//! one patient, the database restarted under load, and the database unreachable at start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tributary_store::test_postgres::TestServer;

use crate::common::peers::{MllpPeer, free_addr};
use crate::common::{
    BIN, EngineProcess, MAPPINGS, UCR_MPI, identifier_query, msa, pix_destination, ucr_a28, write_config,
};

/// A node's config: the test channels, `extra` (a destination), and the shared database.
fn node_config(dir: &Path, url: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config = write_config(dir, "", Path::new(MAPPINGS));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    text.push_str(&format!(
        "\n[store]\nkind = \"postgres\"\nurl = \"{url}\"\npool_size = 8\n"
    ));
    std::fs::write(&config, text).unwrap();
    config
}

fn start_node(root: &Path, name: &str, url: &str, extra: &str) -> EngineProcess {
    let dir = root.join(name);
    let config = node_config(&dir, url, extra);
    EngineProcess::start_config(&config, &dir.join("data"))
}

/// Every journal entry of the cluster, read from `node`.
async fn journal(node: &EngineProcess) -> Vec<Value> {
    let mut entries = vec![];
    let mut from = 0;
    loop {
        let (status, page) = node.get(&format!("/journal?from={from}&limit=1000")).await;
        assert_eq!(status, 200, "{page}");
        let page = page["entries"].as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else {
            return entries;
        };
        from = last["seq"].as_u64().unwrap() + 1;
        entries.extend(page);
    }
}

/// How many entries applied each control id.
fn applied_by_control_id(entries: &[Value]) -> HashMap<String, usize> {
    let mut applied = HashMap::new();
    for entry in entries.iter().filter(|e| e["status"] == "applied") {
        *applied
            .entry(entry["control_id"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    applied
}

/// The patient numbers in the A31s a PIX consumer received.
fn patients_told(received: &[String]) -> BTreeSet<String> {
    received
        .iter()
        .filter_map(|a31| crate::common::segment(a31, "PID"))
        .filter_map(|pid| pid.get(3).cloned())
        .flat_map(|field| {
            field
                .split('~')
                .filter_map(|cx| cx.split('^').next().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sends `messages` in order over one connection to `first`; when that node stops answering,
/// the message without an ACK and every later one go to `second` (an upstream sender resending
/// to another node). Returns the control ids answered AA, and whether it moved to `second`.
async fn send_with_failover(
    first: String,
    second: String,
    messages: Vec<(String, Vec<u8>)>,
) -> (Vec<String>, bool) {
    let mut acked = vec![];
    let mut target = first.clone();
    let mut client = tributary_adapter_mllp::Client::connect(&target, Duration::from_secs(10))
        .await
        .ok();
    for (control, message) in messages {
        loop {
            let answer = match client.as_mut() {
                Some(client) => tokio::time::timeout(Duration::from_secs(20), client.send(&message))
                    .await
                    .ok()
                    .and_then(Result::ok),
                None => None,
            };
            match answer {
                Some(ack) => {
                    let (code, _) = msa(&String::from_utf8_lossy(&ack));
                    if code == "AA" {
                        acked.push(control.clone());
                        // An upstream system's pace: the stream outlasts the kill below.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        break;
                    }
                    // AE: not stored; the sender tries again.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None => {
                    target = second.clone();
                    client = tributary_adapter_mllp::Client::connect(&target, Duration::from_secs(10))
                        .await
                        .ok();
                }
            }
        }
    }
    (acked, target != first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_under_load_lose_nothing_when_one_is_killed() {
    let url = TestServer::shared().new_database();
    let root = tempfile::tempdir().unwrap();
    let pix = MllpPeer::start(&free_addr(), "AA").await;
    let destination = pix_destination(&pix.addr);
    let mut a = start_node(root.path(), "a", &url, &destination);
    let b = start_node(root.path(), "b", &url, &destination);

    // Four connections per node; each message brings a new patient (its control id is the
    // patient's number), so the PIX consumer must hear of every one.
    const PER_CONNECTION: usize = 120;
    let mut senders = vec![];
    for (node, (first, second)) in [("a", (&a.mllp, &b.mllp)), ("b", (&b.mllp, &a.mllp))] {
        for connection in 0..4 {
            let messages = (0..PER_CONNECTION)
                .map(|i| {
                    let control = format!("{node}{connection}x{i:03}");
                    let message = ucr_a28(&control);
                    (control, message)
                })
                .collect();
            senders.push(tokio::spawn(send_with_failover(
                first.clone(),
                second.clone(),
                messages,
            )));
        }
    }
    // Node a dies mid-stream: its senders resend what it did not answer to b.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    a.kill();
    let mut acked = vec![];
    let mut moved = 0;
    for sender in senders {
        let (answered, failed_over) = sender.await.unwrap();
        acked.extend(answered);
        moved += usize::from(failed_over);
    }
    assert_eq!(
        moved, 4,
        "a died while each of its senders still had messages to send"
    );
    assert_eq!(
        acked.len(),
        8 * PER_CONNECTION,
        "every message answered AA in the end"
    );

    let entries = journal(&b).await;
    let applied = applied_by_control_id(&entries);
    for control in &acked {
        assert_eq!(applied.get(control), Some(&1), "{control} applied exactly once");
    }
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "one rising journal across the nodes"
    );
    for control in acked.iter().step_by(37) {
        let found = b.search(&identifier_query(UCR_MPI, control)).await;
        assert_eq!(found.len(), 1, "patient {control} once");
    }
    // Every queued A31 arrives, a's too: b takes over a's queue once a's lease is gone.
    let wanted: BTreeSet<String> = acked.iter().cloned().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let told = patients_told(&pix.received());
        let missing: Vec<_> = wanted.difference(&told).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} A31s never arrived, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_to_another_node_gets_the_first_answer_and_one_patient_changes_in_one_order() {
    let url = TestServer::shared().new_database();
    let root = tempfile::tempdir().unwrap();
    let a = start_node(root.path(), "a", &url, "");
    let b = start_node(root.path(), "b", &url, "");

    let first = a.send(&ucr_a28("MPI5001")).await;
    assert_eq!(msa(&first).0, "AA", "{first}");
    let resent = b.send(&ucr_a28("MPI5001")).await;
    assert_eq!(
        msa(&resent),
        msa(&first),
        "the other node answers as the first did"
    );
    let entries = journal(&b).await;
    assert_eq!(applied_by_control_id(&entries).get("MPI5001"), Some(&1));
    assert!(
        entries
            .iter()
            .any(|e| e["control_id"] == "MPI5001" && e["status"] == "duplicate"),
        "the resend is journaled as a duplicate"
    );

    // Both nodes change one patient at once: every change is a version of its own, and the
    // last version is the last change in journal order.
    const CHANGES: usize = 25;
    let change = |node: &str, i: usize| {
        let message = String::from_utf8(ucr_a28("MPI5001")).unwrap();
        message
            .replacen("|MPI5001|", &format!("|{node}-change-{i}|"), 1)
            .replacen("ADT^A28^ADT_A05", "ADT^A31^ADT_A05", 1)
            .replace("^Amara|", &format!("^Amara{node}{i}|"))
            .into_bytes()
    };
    let mut writers = vec![];
    for (node, addr) in [("a", a.mllp.clone()), ("b", b.mllp.clone())] {
        let messages: Vec<Vec<u8>> = (0..CHANGES).map(|i| change(node, i)).collect();
        writers.push(tokio::spawn(async move {
            let mut client = tributary_adapter_mllp::Client::connect(&addr, Duration::from_secs(10))
                .await
                .unwrap();
            for message in messages {
                let ack = client.send(&message).await.unwrap();
                assert_eq!(msa(&String::from_utf8_lossy(&ack)).0, "AA");
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let found = a.search(&identifier_query(UCR_MPI, "MPI5001")).await;
    assert_eq!(found.len(), 1);
    // A lost update would have two changes write the same version over each other.
    assert_eq!(
        found[0]["meta"]["versionId"],
        (1 + 2 * CHANGES).to_string(),
        "every change is a version of its own"
    );
    let last_change = journal(&a)
        .await
        .into_iter()
        .filter(|e| e["status"] == "applied")
        .filter_map(|e| e["control_id"].as_str().map(str::to_owned))
        .rfind(|c| c.contains("-change-"))
        .unwrap();
    let (node, i) = last_change.split_once("-change-").unwrap();
    let given = found[0]["name"][0]["given"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        given,
        format!("Amara{node}{i}"),
        "the stored patient is the last change's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_restarted_under_load_loses_no_acked_message() {
    let server = TestServer::start().unwrap();
    let url = server.new_database();
    let root = tempfile::tempdir().unwrap();
    let node = start_node(root.path(), "a", &url, "");
    let addr = node.mllp.clone();
    let sender = tokio::spawn(async move {
        // Sends for a while, one message at a time, recording how each was answered.
        let mut answers: BTreeMap<String, String> = BTreeMap::new();
        let mut client = None;
        for i in 0..400 {
            let control = format!("R{i:04}");
            if client.is_none() {
                client = tributary_adapter_mllp::Client::connect(&addr, Duration::from_secs(10))
                    .await
                    .ok();
            }
            let Some(connection) = client.as_mut() else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(30), connection.send(&ucr_a28(&control))).await {
                Ok(Ok(ack)) => {
                    answers.insert(control, msa(&String::from_utf8_lossy(&ack)).0);
                }
                _ => client = None,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answers
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.stop();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.resume().unwrap();
    let answers = sender.await.unwrap();
    let acked: Vec<&String> = answers
        .iter()
        .filter(|(_, code)| *code == "AA")
        .map(|(c, _)| c)
        .collect();
    let refused = answers.values().filter(|code| *code != "AA").count();
    assert!(refused > 0, "some messages met the database down: {answers:?}");
    assert!(
        answers.keys().last().is_some_and(|last| answers[last] == "AA"),
        "the node reconnected and went on"
    );
    let applied = applied_by_control_id(&journal(&node).await);
    for control in acked {
        assert_eq!(
            applied.get(control.as_str()),
            Some(&1),
            "{control} was ACKed, so it is stored"
        );
    }
    let (status, health) = node.get("/health").await;
    assert_eq!(status, 200, "{health}");
}

#[test]
fn the_database_unreachable_at_start_is_a_clear_error_and_exit_code_2() {
    let root = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = node_config(
        root.path(),
        &format!("postgres://tributary@127.0.0.1:{port}/tributary"),
        "",
    );
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("store: PostgreSQL: connect: "), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
}

/// Runs of `retry-sweep` a node's `/metrics` counts.
async fn sweeps(node: &EngineProcess) -> u64 {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", node.http))
        .bearer_auth(crate::common::METRICS_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("tributary_job_runs_total{job=\"retry-sweep\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_runs_once_per_cluster() {
    let url = TestServer::shared().new_database();
    let root = tempfile::tempdir().unwrap();
    let every_second = "\n[[schedule]]\njob = \"retry-sweep\"\ncron = \"* * * * * *\"\n";
    let a = start_node(root.path(), "a", &url, every_second);
    let b = start_node(root.path(), "b", &url, every_second);
    let started = std::time::Instant::now();
    let before = sweeps(&a).await + sweeps(&b).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let runs = sweeps(&a).await + sweeps(&b).await - before;
    let seconds = started.elapsed().as_secs();
    // Each node alone would run it every second: together they would count twice that.
    assert!(
        (seconds - 2..=seconds + 1).contains(&runs),
        "{runs} runs in {seconds} s across two nodes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_asked_of_one_node_applies_on_every_node() {
    let url = TestServer::shared().new_database();
    let root = tempfile::tempdir().unwrap();
    let a = start_node(root.path(), "a", &url, "");
    let b = start_node(root.path(), "b", &url, "");
    let status = |node: &EngineProcess, key: &'static str| {
        let url = format!("{}/journal?limit=1", node.http);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    const NEW_KEY: &str = "key-newcomer-0001";
    assert_eq!(status(&b, NEW_KEY).await, 401, "not a client yet");
    // Each node's own config file gains a client; only a is told to reload.
    let newcomer = crate::common::clients_toml(&[("newcomer", NEW_KEY, &["integration-analyst"], &[])]);
    for node in ["a", "b"] {
        let path = root.path().join(node).join("tributary.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // The API clients go before [store], which the node's config ends with.
        let (head, store) = text.split_at(text.rfind("\n[store]").unwrap());
        std::fs::write(&path, format!("{head}{newcomer}{store}")).unwrap();
    }
    a.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while status(&b, NEW_KEY).await != 200 {
        assert!(std::time::Instant::now() < deadline, "b never took a's reload");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status(&a, NEW_KEY).await, 200);
}
