//! SIGKILL amid frequent checkpoints. With `store.log_segment_bytes` at its floor (64 KiB) the
//! engine checkpoints every few dozen messages (the log moves to a new segment, the memtable is
//! sealed, written out as tables, the `checkpoint` marker moves and the tree compacts), so a kill
//! under load from several connections lands before, in and after checkpoints. After each
//! restart on the same data folder every message that got AA is in the journal and its effect
//! is in the store, and the engine takes new messages.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tributary_adapter_mllp::Client;

use crate::common::{EngineProcess, MAPPINGS, UCR_MPI, identifier_query, msa, temp_store, write_config_http};

const CONNECTIONS: usize = 6;
const PATIENTS_PER_CONNECTION: usize = 40;
/// The AAs each cycle waits for before it kills the engine, the load still going.
const KILL_AFTER: [usize; 3] = [1000, 700, 1200];

const FAMILIES: [&str; 6] = ["Okafor", "Haddad", "Novak", "Silva", "Tanaka", "Moreau"];
const GIVEN: [&str; 5] = ["Amara", "Yuki", "Louis", "Ines", "Tomasz"];
const STREETS: [&str; 7] = [
    "Harbour Rd",
    "Mill Lane",
    "Kings Way",
    "Elm St",
    "Quay Side",
    "Station Rd",
    "Orchard Cl",
];

/// The UCR MPI number of test patient `patient`.
fn mpi(patient: usize) -> String {
    format!("7{patient:06}")
}

/// A UCR ADT about `patient` that sets its home address to `street`: the stored address says
/// which of the patient's messages was applied last.
fn adt(event: &str, control: &str, patient: usize, street: &str) -> Vec<u8> {
    let mpi = mpi(patient);
    let family = FAMILIES[patient % FAMILIES.len()];
    let given = GIVEN[patient % GIVEN.len()];
    let gender = ["F", "M"][patient % 2];
    let born = 1940 + patient % 60;
    format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125101500||ADT^{event}^ADT_A05|{control}|P|2.5\r\
         EVN|{event}|20261125101500\r\
         PID|1||{mpi}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI~MR{patient}^^^HOSPA&2.16.840.1.113883.3.9999.2&ISO^MR||{family}^{given}||{born}0612|{gender}|||{street}^^Boston^MA^02118^USA^H||^NET^Internet^p{mpi}@example.org\r\
         PV1||N\r"
    )
    .into_bytes()
}

/// One message a connection sent, and whether its AA came back (not: it was in flight at the
/// kill, and may or may not have been applied).
struct Sent {
    control: String,
    patient: usize,
    street: String,
    acked: bool,
}

/// What a patient must look like after a restart: the street of its last AA'd message, or that
/// of a message sent after it whose answer the kill cut off.
#[derive(Default)]
struct Expected {
    acked: Option<String>,
    in_flight: Option<String>,
}

/// One connection's load: updates, round the connection's own patients (so each patient's
/// messages go in order on one connection), until the connection fails at the kill.
async fn load(
    mut client: Client,
    connection: usize,
    cycle: usize,
    mut created: BTreeSet<usize>,
    acked: Arc<AtomicUsize>,
) -> Vec<Sent> {
    let mut sent = vec![];
    for n in 0.. {
        let patient = connection * PATIENTS_PER_CONNECTION + (n * 7 + cycle) % PATIENTS_PER_CONNECTION;
        let event = if created.contains(&patient) {
            ["A08", "A31"][n % 2]
        } else {
            "A28"
        };
        let control = format!("C{cycle}-{connection}-{n}");
        let street = format!("{cycle}-{n} {}", STREETS[(patient + n) % STREETS.len()]);
        let answer = client.send(&adt(event, &control, patient, &street)).await;
        let ok = answer.is_ok();
        if let Ok(ack) = answer {
            let ack = String::from_utf8_lossy(&ack).into_owned();
            assert_eq!(msa(&ack), ("AA".to_string(), control.clone()), "{ack}");
            created.insert(patient);
            acked.fetch_add(1, Ordering::SeqCst);
        }
        sent.push(Sent {
            control,
            patient,
            street,
            acked: ok,
        });
        if !ok {
            break;
        }
    }
    sent
}

/// The segment the `checkpoint` marker names (the first one not yet written out as tables):
/// 20 bytes, that segment as a big-endian u64 first (crates/store/src/embedded.rs).
fn marker_segment(data: &Path) -> u64 {
    let bytes = std::fs::read(data.join("checkpoint")).expect("a checkpoint marker");
    assert_eq!(bytes.len(), 20, "the marker's size");
    u64::from_be_bytes(bytes[..8].try_into().unwrap())
}

/// Every journal entry, oldest first, through `GET /journal` a page at a time.
async fn whole_journal(engine: &EngineProcess) -> Vec<serde_json::Value> {
    let mut entries = vec![];
    let mut from = 0;
    loop {
        let (status, page) = engine.get(&format!("/journal?from={from}&limit=1000")).await;
        assert_eq!(status, 200, "{page}");
        let page = page["entries"].as_array().unwrap().clone();
        let Some(last) = page.last() else {
            return entries;
        };
        from = last["seq"].as_u64().unwrap() + 1;
        entries.extend(page);
    }
}

/// Every AA'd message is in the journal as applied, and every patient is as its last AA'd
/// message (or one in flight after it) left it.
async fn check(engine: &EngineProcess, expected: &BTreeMap<usize, Expected>, acked: &[String]) {
    let journal = whole_journal(engine).await;
    let mut last_seq = 0;
    let mut applied = BTreeSet::new();
    for entry in &journal {
        let seq = entry["seq"].as_u64().unwrap();
        assert!(
            seq > last_seq,
            "journal seq {seq} after {last_seq}: a seq used twice"
        );
        last_seq = seq;
        if entry["status"] == "applied" {
            assert!(
                applied.insert(entry["control_id"].as_str().unwrap().to_string()),
                "applied twice: {entry}"
            );
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|c| !applied.contains(*c)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} AA'd messages are not in the journal, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
    let (_, health) = engine.get("/health").await;
    assert_eq!(health["journal_last_seq"], last_seq, "{health}");

    let mut wrong = vec![];
    for (patient, expect) in expected {
        let found = engine.search(&identifier_query(UCR_MPI, &mpi(*patient))).await;
        let street = found
            .first()
            .and_then(|p| p["address"][0]["line"][0].as_str())
            .map(str::to_string);
        let fits = street.is_some() && (street == expect.acked || street == expect.in_flight);
        let ok = match (&expect.acked, found.len()) {
            (Some(_), 1) => fits,
            // Only its A28 was sent, and the kill cut off its answer: there or not.
            (None, 0) => true,
            (None, 1) => fits,
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "patient {patient}: {} found, street {street:?}, last AA'd {:?}, in flight {:?}",
                found.len(),
                expect.acked,
                expect.in_flight
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} patients are not as their last AA'd message left them, e.g. {:#?}",
        wrong.len(),
        expected.len(),
        &wrong[..wrong.len().min(10)]
    );
}

#[tokio::test]
async fn every_acked_message_survives_kills_amid_frequent_checkpoints() {
    let started = Instant::now();
    let (dir, data) = temp_store();
    // Searches by every patient after each restart: no request budget in the way.
    let config = write_config_http(
        dir.path(),
        "",
        "[http.rate_limit]\nenabled = false\n",
        Path::new(MAPPINGS),
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[store]\nlog_segment_bytes = 65536\n");
    std::fs::write(&config, text).unwrap();

    let mut expected: BTreeMap<usize, Expected> = BTreeMap::new();
    let mut acked_controls: Vec<String> = vec![];
    let mut marker = 1;
    let mut engine = EngineProcess::start_config(&config, &data);
    for (cycle, &kill_after) in KILL_AFTER.iter().enumerate() {
        let acked = Arc::new(AtomicUsize::new(0));
        let created: BTreeSet<usize> = expected
            .iter()
            .filter(|(_, e)| e.acked.is_some())
            .map(|(p, _)| *p)
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for connection in 0..CONNECTIONS {
            let client = engine.client().await;
            tasks.spawn(load(client, connection, cycle, created.clone(), acked.clone()));
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while acked.load(Ordering::SeqCst) < kill_after {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: too slow to {kill_after} AAs"
            );
            tokio::select! {
                done = tasks.join_next() => match done.expect("load tasks") {
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    other => panic!("cycle {cycle}: a connection stopped before the kill: {:?}",
                        other.map(|sent| sent.last().map(|s| s.control.clone()))),
                },
                () = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
        }
        // SIGKILL with every connection mid-message.
        engine.kill();
        let mut in_flight = 0;
        while let Some(done) = tasks.join_next().await {
            let sent = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            for message in sent {
                let patient = expected.entry(message.patient).or_default();
                if message.acked {
                    patient.acked = Some(message.street);
                    patient.in_flight = None;
                    acked_controls.push(message.control);
                } else {
                    patient.in_flight = Some(message.street);
                    in_flight += 1;
                }
            }
        }
        assert_eq!(
            in_flight, CONNECTIONS,
            "each connection had one message in flight"
        );

        // The checkpoints happened, on disk, before the kill.
        let now = marker_segment(&data);
        assert!(
            now > marker,
            "cycle {cycle}: the marker went from segment {marker} to {now}"
        );
        marker = now;
        let tables = std::fs::read_dir(data.join("tree/tables"))
            .map(|dir| dir.count())
            .unwrap_or(0);
        assert!(tables > 0, "cycle {cycle}: no table files under tree/tables");

        engine = EngineProcess::start_config(&config, &data);
        check(&engine, &expected, &acked_controls).await;
    }
    assert!(acked_controls.len() >= KILL_AFTER.iter().sum::<usize>());

    // The restarted engine takes new messages, on what the kills left.
    let ack = engine.send(&adt("A31", "AFTER-1", 0, "1 Last St")).await;
    assert_eq!(msa(&ack), ("AA".into(), "AFTER-1".into()), "{ack}");
    let found = engine.search(&identifier_query(UCR_MPI, &mpi(0))).await;
    assert_eq!(found[0]["address"][0]["line"][0], "1 Last St");
    let status = engine.terminate();
    assert!(status.success(), "a clean shutdown on SIGTERM: {status}");
    eprintln!(
        "checkpoint_crash: {} AA'd messages, {} kills, checkpoint marker at segment {marker}, {:.1?}",
        acked_controls.len(),
        KILL_AFTER.len(),
        started.elapsed()
    );
}
