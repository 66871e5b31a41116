//! The outbox end to end: ADT arrives over MLLP, the patient changes, and an ADT^A31 reaches a
//! real MLLP listener playing a PIX consumer; with the consumer down, deliveries retry and
//! arrive once it is back, across an engine restart too; a delivery that keeps failing becomes
//! a dead letter, the queue moves on, and the dead letter can be retried or discarded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::peers::{MllpPeer, free_addr};
use crate::common::{
    ANALYST_KEY, EngineProcess, FHIR_KEY, MAPPINGS, UCR_MPI, fixture, msa, segment, temp_store, test_clients,
};
use serde_json::Value;

/// The UCR channel sending every patient it changes to the `pix` destination at `consumer`.
fn config(dir: &Path, consumer: &str, retry: &str, ack: &str) -> PathBuf {
    let path = dir.join("tributary.toml");
    let text = format!(
        r#"[http]
bind = "127.0.0.1:0"
[log]
level = "warn"
[mappings]
dir = {MAPPINGS:?}

[[channels]]
name = "ucr-adt"
mapping = "ucr-adt-patient"
destinations = ["pix"]
[channels.source]
kind = "mllp"
bind = "127.0.0.1:0"

[[destinations]]
name = "pix"
kind = "mllp"
mapping = "patient-adt-a31"
identifier_systems = ["{UCR_MPI}"]
[destinations.retry]
{retry}
[destinations.settings]
address = "{consumer}"
timeout_secs = 2
{ack}
{}
[[api_clients]]
name = "config"
key_sha256 = "{}"
roles = ["configuration-manager"]
"#,
        test_clients(),
        crate::common::sha256_hex(OTHER_KEY)
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A client whose role does not cover the journal and the outbox.
const OTHER_KEY: &str = "key-config-0001";

const FAST_RETRY: &str = "max_attempts = 1000\ninitial_backoff_ms = 50\nmax_backoff_ms = 200";

/// The message with MSH-10 replaced and `from` replaced by `to` in its text.
fn variant(fixture_path: &str, control_id: &str, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(fixture_path)).unwrap();
    let original_id = segment(&text, "MSH").unwrap()[9].clone();
    text.replace(&original_id, control_id)
        .replace(from, to)
        .into_bytes()
}

/// The journal entry of the last message.
async fn last_entry(engine: &EngineProcess) -> Value {
    let (status, journal) = engine.get("/journal?limit=1000").await;
    assert_eq!(status, 200);
    journal["entries"].as_array().unwrap().last().unwrap().clone()
}

/// Sends the UCR A04 fixture (it must be AA'd) and returns the id of the first delivery it queued.
async fn a04_delivery(engine: &EngineProcess) -> String {
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a04_register.hl7")).await).0,
        "AA"
    );
    last_entry(engine).await["deliveries"][0]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits until delivery `id` is in `state`; returns it.
async fn wait_state(engine: &EngineProcess, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, delivery) = engine.get(&format!("/outbox/deliveries/{id}")).await;
        assert_eq!(status, 200, "{delivery}");
        if delivery["state"] == state {
            return delivery;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never became {state}: {delivery}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn an_adt_update_reaches_the_pix_consumer_as_an_a31_once_per_real_change() {
    let consumer = MllpPeer::start("127.0.0.1:0", "AA").await;
    let (dir, data) = temp_store();
    let engine = EngineProcess::start_config(&config(dir.path(), &consumer.addr, FAST_RETRY, ""), &data);

    let ack = engine.send(&fixture("ucr/adt_a04_register.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let received = consumer.wait_for(1).await;
    let a31 = &received[0];
    let msh = segment(a31, "MSH").unwrap();
    assert_eq!(msh[8], "ADT^A31^ADT_A05", "{a31}");
    assert_eq!(msh[11], "2.5");
    let pid = segment(a31, "PID").unwrap();
    // Only the identifiers of the system this consumer subscribed to.
    assert!(pid[3].starts_with("1000551903^^^"), "{}", pid[3]);
    assert!(!pid[3].contains("MRN00061022"), "{}", pid[3]);
    assert!(pid[5].starts_with("NGUYEN^LINH"), "{}", pid[5]);

    let entry = last_entry(&engine).await;
    let id = entry["deliveries"][0]
        .as_str()
        .expect("the journal names the delivery")
        .to_string();
    let delivery = wait_state(&engine, &id, "delivered").await;
    assert_eq!(delivery["attempts"], 1);
    assert!(
        delivery["reply"].as_str().unwrap().contains("MSA|AA|"),
        "{delivery}"
    );

    // The same content again under a new control id: applied, but nothing a consumer sees
    // changed, so nothing is sent.
    let ack = engine
        .send(&variant("ucr/adt_a04_register.hl7", "UCR-SAME-1", "", ""))
        .await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    assert!(last_entry(&engine).await.get("deliveries").is_none());

    // A new address is a change the consumer hears of.
    let moved = variant(
        "ucr/adt_a04_register.hl7",
        "UCR-MOVED-1",
        "410 Prospect Avenue",
        "12 Elm Street",
    );
    assert_eq!(msa(&engine.send(&moved).await).0, "AA");
    let received = consumer.wait_for(2).await;
    assert!(segment(&received[1], "PID").unwrap()[11].starts_with("12 Elm Street"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(consumer.received().len(), 2, "one A31 per real change");
}

#[tokio::test]
async fn with_the_consumer_down_deliveries_retry_and_arrive_after_an_engine_restart() {
    let consumer_addr = free_addr();
    let (dir, data) = temp_store();
    let config = config(dir.path(), &consumer_addr, FAST_RETRY, "");
    let mut engine = EngineProcess::start_config(&config, &data);
    let id = a04_delivery(&engine).await;

    // It is tried again and again while the consumer is down.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, delivery) = engine.get(&format!("/outbox/deliveries/{id}")).await;
        assert_eq!(delivery["state"], "pending");
        if delivery["attempts"].as_u64().unwrap() >= 3 {
            assert!(
                delivery["last_error"].as_str().unwrap().contains("transient"),
                "{delivery}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retries: {delivery}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, pending) = engine.get("/outbox/pix/pending").await;
    assert_eq!(status, 200);
    assert_eq!(pending["deliveries"][0]["id"], id.as_str());

    // Killed while the delivery waits; it resumes after the restart.
    engine.kill();
    let engine = EngineProcess::start_config(&config, &data);
    let consumer = MllpPeer::start(&consumer_addr, "AA").await;
    let received = consumer.wait_for(1).await;
    assert_eq!(segment(&received[0], "MSH").unwrap()[8], "ADT^A31^ADT_A05");
    wait_state(&engine, &id, "delivered").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(consumer.received().len(), 1, "delivered once");
}

#[tokio::test]
async fn a_delivery_out_of_tries_becomes_a_dead_letter_and_the_queue_moves_on() {
    let consumer_addr = free_addr();
    let (dir, data) = temp_store();
    let retry = "max_attempts = 2\ninitial_backoff_ms = 20\nmax_backoff_ms = 50";
    let engine = EngineProcess::start_config(&config(dir.path(), &consumer_addr, retry, ""), &data);

    let first = a04_delivery(&engine).await;
    let dead = wait_state(&engine, &first, "dead-letter").await;
    assert_eq!(dead["attempts"], 2);
    let (status, listed) = engine.get("/outbox/dead-letters?destination=pix").await;
    assert_eq!(status, 200);
    assert_eq!(listed["deliveries"][0]["id"], first.as_str());

    // The consumer comes back: the next change goes out, the dead letter does not block it.
    let consumer = MllpPeer::start(&consumer_addr, "AA").await;
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a08_update.hl7")).await).0,
        "AA"
    );
    let received = consumer.wait_for(1).await;
    assert!(segment(&received[0], "PID").unwrap()[5].starts_with("OKAFOR"));

    // Retried by hand, the dead letter is delivered: at once, though the worker has read its
    // queue past it (it reads on from the last delivery it finished), not at its next idle poll
    // five seconds on.
    let client = reqwest::Client::new();
    let put_back = std::time::Instant::now();
    let response = client
        .post(format!("{}/outbox/dead-letters/{first}/retry", engine.http))
        .bearer_auth(ANALYST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let received = consumer.wait_for(2).await;
    assert!(
        put_back.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        put_back.elapsed()
    );
    assert!(segment(&received[1], "PID").unwrap()[5].starts_with("NGUYEN"));
    wait_state(&engine, &first, "delivered").await;
    let (_, listed) = engine.get("/outbox/dead-letters").await;
    assert_eq!(listed["deliveries"].as_array().unwrap().len(), 0);

    // Unknown ids are 404s, not errors.
    let response = client
        .delete(format!("{}/outbox/dead-letters/pix-999-0", engine.http))
        .bearer_auth(ANALYST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let (status, _) = engine.get("/outbox/deliveries/nonsense").await;
    assert_eq!(status, 404);
    let (status, _) = engine.get("/outbox/nowhere/pending").await;
    assert_eq!(status, 404);

    // They show patients and message contents: an integration analyst's key or nothing.
    for (method, path) in [
        ("GET", "/journal".to_string()),
        ("GET", "/outbox/pix/pending".to_string()),
        ("GET", "/outbox/dead-letters".to_string()),
        ("GET", format!("/outbox/deliveries/{first}")),
        ("POST", format!("/outbox/dead-letters/{first}/retry")),
        ("DELETE", format!("/outbox/dead-letters/{first}")),
    ] {
        let request = |key: Option<&str>| {
            let mut r = client.request(method.parse().unwrap(), format!("{}{path}", engine.http));
            if let Some(key) = key {
                r = r.bearer_auth(key);
            }
            r.send()
        };
        let response = request(None).await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{method} {path}");
        assert!(response.headers().contains_key("www-authenticate"));
        let response = request(Some("not-a-known-key")).await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{method} {path}");
        let response = request(Some(OTHER_KEY)).await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            403,
            "{method} {path} with another role"
        );
    }
    let (_, delivery) = engine.get(&format!("/outbox/deliveries/{first}")).await;
    assert_eq!(delivery["state"], "delivered", "nothing refused changed anything");
}

#[tokio::test]
async fn a_dead_letter_can_be_discarded() {
    let consumer_addr = free_addr();
    let (dir, data) = temp_store();
    let retry = "max_attempts = 1";
    let engine = EngineProcess::start_config(&config(dir.path(), &consumer_addr, retry, ""), &data);
    let id = a04_delivery(&engine).await;
    wait_state(&engine, &id, "dead-letter").await;
    let response = reqwest::Client::new()
        .delete(format!("{}/outbox/dead-letters/{id}", engine.http))
        .bearer_auth(ANALYST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let discarded = wait_state(&engine, &id, "discarded").await;
    assert!(discarded["finished_at"].is_string());
    let (_, listed) = engine.get("/outbox/dead-letters").await;
    assert_eq!(listed["deliveries"].as_array().unwrap().len(), 0);
}

#[test]
fn check_config_names_a_bad_destination_setting_with_its_line() {
    let (dir, _data) = temp_store();
    let path = config(dir.path(), "127.0.0.1:1", "", "adress = \"x\"");
    let output = std::process::Command::new(crate::common::BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tributary.toml:18: destinations[0]"), "{stderr}");
    assert!(stderr.contains("adress"), "{stderr}");
}

#[tokio::test]
async fn a_consumer_rejecting_with_ar_dead_letters_at_once_and_ae_is_retried() {
    let rejecting = MllpPeer::start("127.0.0.1:0", "AR").await;
    let (dir, data) = temp_store();
    let engine = EngineProcess::start_config(&config(dir.path(), &rejecting.addr, FAST_RETRY, ""), &data);
    let id = a04_delivery(&engine).await;
    let dead = wait_state(&engine, &id, "dead-letter").await;
    assert_eq!(dead["attempts"], 1, "a permanent failure is not retried: {dead}");
    assert!(dead["last_error"].as_str().unwrap().contains("AR"), "{dead}");

    let erring = MllpPeer::start("127.0.0.1:0", "AE").await;
    let (dir, data) = temp_store();
    let engine = EngineProcess::start_config(&config(dir.path(), &erring.addr, FAST_RETRY, ""), &data);
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a04_register.hl7")).await).0,
        "AA"
    );
    erring.wait_for(3).await;
    let id = last_entry(&engine).await["deliveries"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (_, delivery) = engine.get(&format!("/outbox/deliveries/{id}")).await;
    assert_eq!(delivery["state"], "pending", "AE is transient: {delivery}");
}

#[tokio::test]
async fn a_pmir_bundle_over_http_updates_a_fhir_pix_consumer() {
    // The consumer is a second engine: its FHIR endpoint takes PMIR feeds (ITI-93).
    let (consumer_dir, consumer_data) = temp_store();
    let consumer = EngineProcess::start(&consumer_data);
    let _ = consumer_dir;
    let (dir, data) = temp_store();
    let path = dir.path().join("tributary.toml");
    let text = format!(
        r#"[http]
bind = "127.0.0.1:0"
[log]
level = "warn"
[mappings]
dir = {MAPPINGS:?}

[[channels]]
name = "ucr-adt"
mapping = "ucr-adt-patient"
[channels.source]
kind = "mllp"
bind = "127.0.0.1:0"

[[destinations]]
name = "pmir"
kind = "http"
mapping = "patient-pmir-bundle"
events = ["patient-changed"]
[destinations.retry]
{FAST_RETRY}
[destinations.settings]
url = "{}/fhir"
auth = {{ type = "header", name = "Authorization", value = "Bearer {FHIR_KEY}" }}
{}"#,
        consumer.http,
        test_clients()
    );
    std::fs::write(&path, text).unwrap();
    let engine = EngineProcess::start_config(&path, &data);
    let id = a04_delivery(&engine).await;
    let delivered = wait_state(&engine, &id, "delivered").await;
    assert_eq!(delivered["content_type"], "application/fhir+json");
    assert!(
        delivered["reply"].as_str().unwrap().contains("\"code\":\"ok\""),
        "{delivered}"
    );
    let found = consumer.search(&format!("identifier={UCR_MPI}|1000551903")).await;
    assert_eq!(found.len(), 1, "the consumer has the patient");
    assert_eq!(found[0]["name"][0]["family"], "NGUYEN");
}

#[tokio::test]
async fn a_retried_dead_letter_never_overwrites_a_newer_delivery_of_its_patient() {
    // The consumer refuses version 1 of the patient (AR: a dead letter at once) ...
    let rejecting = MllpPeer::start("127.0.0.1:0", "AR").await;
    let consumer_addr = rejecting.addr.clone();
    let (dir, data) = temp_store();
    let engine = EngineProcess::start_config(&config(dir.path(), &consumer_addr, FAST_RETRY, ""), &data);
    let first = a04_delivery(&engine).await;
    wait_state(&engine, &first, "dead-letter").await;
    rejecting.stop().await;

    // ... then accepts version 2 (a new address).
    let consumer = MllpPeer::start(&consumer_addr, "AA").await;
    let moved = variant(
        "ucr/adt_a04_register.hl7",
        "UCR-MOVED-2",
        "410 Prospect Avenue",
        "12 Elm Street",
    );
    assert_eq!(msa(&engine.send(&moved).await).0, "AA");
    let second = last_entry(&engine).await["deliveries"][0]
        .as_str()
        .unwrap()
        .to_string();
    wait_state(&engine, &second, "delivered").await;
    assert!(segment(&consumer.wait_for(1).await[0], "PID").unwrap()[11].starts_with("12 Elm Street"));

    // Retrying version 1 now would put the old address back: it is superseded instead.
    let response = reqwest::Client::new()
        .post(format!("{}/outbox/dead-letters/{first}/retry", engine.http))
        .bearer_auth(ANALYST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["state"], "superseded", "{answer}");
    assert_eq!(answer["superseded_by"], second.as_str(), "{answer}");
    let shown = wait_state(&engine, &first, "superseded").await;
    assert_eq!(shown["superseded_by"], second.as_str());
    let (_, listed) = engine.get("/outbox/dead-letters").await;
    assert_eq!(listed["deliveries"].as_array().unwrap().len(), 0, "{listed}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = consumer.received();
    assert_eq!(
        received.len(),
        1,
        "version 1 was not sent after version 2: {received:?}"
    );
}
