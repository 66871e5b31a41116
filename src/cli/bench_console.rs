//! `tributary bench console`: how fast the console's pages load over a large journal. N journal
//! entries (1,000,000 by default: ADT, ORU, SIU and MDM messages from ten channels over thirty
//! days, mostly applied, some errored, rejected or resent) are written into a fresh store the
//! way the committer writes them (entry and index in one commit), the store is checkpointed, and
//! the engine is started on it as a child process. An analyst signs in to the console and each
//! page is loaded `--repeat` times: the dashboard, the message browser unfiltered, by channel
//! and status, by patient identifier, control id, sender, type, a time range, a page far back,
//! and one message's detail.
//!
//! Printed for each page: wall time p50, p99 and max, from request to the last byte, and how
//! many rows it showed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::bench_process::{Measured, client_toml, engine_config};
use crate::core::journal::{JournalEntry, Status};
use crate::core::journal_index;
use crate::store::{EmbeddedStore, Keyspace, Store, WriteSet};

const ANALYST_KEY: &str = "bench-analyst-key";

/// Entries written in one commit while loading.
const LOAD_BATCH: u64 = 2_000;

const CHANNELS: [&str; 10] = [
    "ucr-adt",
    "ucr-oru",
    "trakcare-siu",
    "trakcare-mdm",
    "trakcare-adt",
    "crm-adt",
    "lab-oru",
    "radiology-oru",
    "pharmacy-adt",
    "hie-mdm",
];

#[derive(Args)]
pub struct ConsoleBenchArgs {
    /// Journal entries to load before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Loads of each page measured.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// The mappings folder the engine loads.
    #[arg(long, default_value = "mappings")]
    mappings: PathBuf,
}

pub async fn bench_console(args: ConsoleBenchArgs) -> Result<(), String> {
    let run_id = chrono::Utc::now().format("%H%M%S%3f").to_string();
    let dir = std::env::temp_dir().join(format!("tributary-bench-console-{}-{run_id}", std::process::id()));
    let data = dir.join("store");
    let n = args.messages;
    let started = Instant::now();
    let load_dir = data.clone();
    tokio::task::spawn_blocking(move || load(&load_dir, n))
        .await
        .map_err(|e| e.to_string())??;
    println!(
        "console: {n} journal entries loaded in {:.1} s ({} MB on disk)",
        started.elapsed().as_secs_f64(),
        du(&data) / 1_000_000
    );
    let config = engine_config(
        &data,
        &args.mappings,
        &client_toml("analyst", ANALYST_KEY, "integration-analyst"),
    )?;
    let engine = Measured::engine(&config, dir).await?;
    let base = format!("http://{}", engine.http.ok_or("the engine has no HTTP listener")?);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let login = http
        .post(format!("{base}/console/login"))
        .form(&[("key", ANALYST_KEY)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .ok_or("the console set no session cookie")?
        .to_string();
    let middle = n / 2;
    let day = received_at(middle)[..10].to_string();
    let pages = [
        ("dashboard", "/console".to_string()),
        ("browser, no filter", "/console/messages".to_string()),
        (
            "channel + status error",
            "/console/messages?channel=trakcare-mdm&status=error".to_string(),
        ),
        ("status rejected", "/console/messages?status=rejected".to_string()),
        (
            "patient identifier",
            format!("/console/messages?patient=MRN{}", mrn(middle)),
        ),
        ("control id", format!("/console/messages?control_id=CTL{middle}")),
        ("sender", "/console/messages?sender=TRAKCARE".to_string()),
        (
            "sender + status, none",
            "/console/messages?sender=UCR&status=error".to_string(),
        ),
        (
            "type ORU^R01 + channel",
            "/console/messages?type=ORU%5ER01&channel=radiology-oru".to_string(),
        ),
        (
            "one day",
            format!("/console/messages?since={day}T00:00&until={day}T23:59"),
        ),
        ("page far back", format!("/console/messages?before={middle}")),
        ("message detail", format!("/console/messages/{middle}")),
    ];
    println!("page                      p50 ms   p99 ms   max ms  rows");
    for (name, path) in pages {
        let mut times = vec![];
        let mut rows = 0;
        for _ in 0..args.repeat {
            let started = Instant::now();
            let response = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.text().await.map_err(|e| e.to_string())?;
            times.push(started.elapsed());
            if !status.is_success() {
                return Err(format!("{path}: {status}"));
            }
            rows = body.matches("<tr><td><a href=\"/console/messages/").count();
        }
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<24} {:>7.1}  {:>7.1}  {:>7.1}  {rows:>4}",
            ms(at(0.5)),
            ms(at(0.99)),
            ms(*times.last().expect("at least one load"))
        );
    }
    engine.stop().await;
    Ok(())
}

fn mrn(n: u64) -> u64 {
    n * 7919 % 200_000
}

/// Thirty days of arrivals, in order: entry `n` of a million arrives about every 2.6 s.
fn received_at(n: u64) -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").expect("a valid time");
    let at = start + chrono::Duration::milliseconds((n * 2_592) as i64);
    at.with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Entry `n` as the committer would have journaled it.
fn entry(n: u64) -> JournalEntry {
    let channel = CHANNELS[(n % 10) as usize];
    let (code, event, sender) = match n % 10 {
        1 | 6 | 7 => ("ORU", "R01", "LAB|UCRHIE"),
        2 => ("SIU", "S12", "TRAKCARE|MAIN"),
        3 | 9 => ("MDM", "T02", "TRAKCARE|MAIN"),
        _ => ("ADT", "A08", "UCR|UCRHIE"),
    };
    let status = match n % 100 {
        13 => Status::Error,
        37 => Status::Rejected,
        71 => Status::Duplicate,
        _ => Status::Applied,
    };
    let patient = mrn(n);
    let identifier = format!("MRN{patient}");
    let time = received_at(n);
    let stamp: String = time.chars().filter(char::is_ascii_digit).take(14).collect();
    let (application, facility) = sender.split_once('|').expect("app|facility");
    let message = format!(
        "MSH|^~\\&|{application}|{facility}|TRIBUTARY|PORTAL|{stamp}||{code}^{event}|CTL{n}|P|2.5.1\r\
         EVN|{event}|{stamp}\r\
         PID|1||{identifier}^^^UCR^MR~{n}^^^NHS^NH||Surname{n}^Given^M||19700101|F|||1 High Street^^Leeds^^LS1 1AA||0113 496 0000\r\
         PV1|1|O|CLINIC^^^MAIN\r"
    );
    let ack = format!(
        "MSH|^~\\&|TRIBUTARY|PORTAL|{application}|{facility}|{stamp}||ACK^{event}^ACK|A{n}|P|2.5.1\rMSA|AA|CTL{n}\r"
    );
    JournalEntry {
        seq: n,
        channel: channel.into(),
        received_at: time,
        peer: "127.0.0.1:40000".into(),
        sender: sender.into(),
        control_id: format!("CTL{n}"),
        message_type: format!("{code}^{event}"),
        status,
        error: (status == Status::Error).then(|| {
            format!(
                "PID-3 has no identifier of the UCR (PID-3, mapping ucr-adt-patient line {})",
                12
            )
        }),
        duplicate_of: (status == Status::Duplicate).then(|| n - 1),
        patients: vec![format!("p{patient}")],
        identifiers: vec![identifier, n.to_string()],
        changes: vec![format!("Patient/p{patient}/_history/{}", n / 200_000 + 1)],
        deliveries: vec![],
        replies: vec![ack],
        message,
        message_bytes: None,
    }
}

/// Writes entries 1..=n with their index, `LOAD_BATCH` a commit, and checkpoints.
fn load(data: &std::path::Path, n: u64) -> Result<(), String> {
    let store = EmbeddedStore::open(data).map_err(|e| e.to_string())?;
    let mut from = 1;
    while from <= n {
        let to = (from + LOAD_BATCH - 1).min(n);
        let mut writes = WriteSet::default();
        for seq in from..=to {
            let entry = entry(seq);
            writes.ops.extend(journal_index::writes(&entry));
            writes.journal.push((seq, entry.to_bytes()));
        }
        store.commit(writes).map_err(|e| e.to_string())?;
        store.sync().map_err(|e| e.to_string())?;
        from = to + 1;
    }
    // Indexed from the first entry: the engine has nothing to catch up.
    store
        .commit(WriteSet {
            ops: vec![(Keyspace::Meta, journal_index::INDEXED.to_vec(), Some(vec![]))],
            journal: vec![],
        })
        .map_err(|e| e.to_string())?;
    store.sync().map_err(|e| e.to_string())?;
    store.checkpoint().map_err(|e| e.to_string())
}

/// Bytes under `dir`.
fn du(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => du(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
