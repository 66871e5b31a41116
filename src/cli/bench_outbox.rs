//! `tributary bench outbox`: PIX notifications end to end. ADT messages about distinct patients
//! go to the engine over MLLP; each patient change queues an ADT^A31 (ITI-10) for a PIX consumer,
//! which is an MLLP listener in this process that ACKs each one and notes when it arrived.
//!
//! Printed: A31s delivered per second (all N, from the first ADT sent to the last A31 received)
//! and the latency from sending an ADT to its A31 arriving at the consumer (p50, p99). With
//! `--rate` the ADTs are offered at that pace, which measures latency under a steady load rather
//! than behind a queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use tributary_adapter_core::{Inbound, handler_fn};
use tributary_adapter_mllp::{Client, ListenerConfig};

use super::bench::adt_corpus;
use crate::app::Engine;
use crate::config::Config;

#[derive(Args)]
pub struct OutboxBenchArgs {
    /// ADT messages to send, each about another patient (so each causes one A31).
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Concurrent MLLP connections sending the ADTs.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Offer this many ADTs per second in all instead of as fast as ACKs come back.
    #[arg(long)]
    rate: Option<u64>,
    /// The mappings folder the benchmarked engine loads.
    #[arg(long, default_value = "mappings")]
    mappings: std::path::PathBuf,
}

/// When each patient's ADT was sent and its A31 arrived, by MPI identifier.
#[derive(Default)]
struct Times {
    sent: HashMap<String, Instant>,
    arrived: HashMap<String, Instant>,
}

pub async fn bench_outbox(args: OutboxBenchArgs) -> Result<(), String> {
    let run_id = chrono::Utc::now().format("%H%M%S%3f").to_string();
    let corpus = Arc::new(adt_corpus(args.messages, args.messages, &run_id));
    let times = Arc::new(Mutex::new(Times::default()));
    let (consumer, stop_consumer) = start_consumer(times.clone()).await?;
    let dir = std::env::temp_dir().join(format!("tributary-bench-outbox-{}-{run_id}", std::process::id()));
    let config = Config::parse(
        &format!(
            "[store]\ndata_dir = {:?}\n[http]\nbind = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n[mappings]\ndir = {:?}\n\
             [[channels]]\nname = \"bench\"\nmapping = \"ucr-adt-patient\"\n[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n\
             [[destinations]]\nname = \"pix\"\nkind = \"mllp\"\nmapping = \"patient-adt-a31\"\nevents = [\"patient-changed\"]\n\
             identifier_systems = [\"urn:oid:2.16.840.1.113883.3.9999.1\"]\n[destinations.settings]\naddress = \"{consumer}\"\n",
            dir.display().to_string(),
            args.mappings.display().to_string()
        ),
        "bench.toml",
    )
    .map_err(|e| e.to_string())?;
    let engine = Engine::start(&config).await.map_err(|e| e.to_string())?;
    let addr = engine.mllp[0].1.to_string();
    println!(
        "outbox: {} ADT messages about {} patients over {} connections{}; each change -> ADT^A31 to an MLLP PIX consumer",
        args.messages,
        args.messages,
        args.connections,
        args.rate
            .map(|r| format!(", offered {r} msg/s"))
            .unwrap_or_default()
    );
    let started = Instant::now();
    let sent = send_all(&addr, corpus, args.connections, args.rate, times.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let finished = loop {
        let arrived = times.lock().map(|t| t.arrived.len()).unwrap_or(0);
        if arrived >= args.messages || Instant::now() > deadline || sent.is_err() {
            break arrived;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let pending =
        crate::deliveries::queue::pending(engine.store.as_ref(), "pix", usize::MAX).map(|p| p.len());
    let dead = crate::deliveries::queue::dead_letters(engine.store.as_ref(), Some("pix"), usize::MAX);
    if let (Ok(pending), Ok(dead)) = (&pending, &dead)
        && (*pending > 0 || !dead.is_empty())
    {
        println!(
            "still pending: {pending}; dead letters: {} (first error: {})",
            dead.len(),
            dead.first()
                .and_then(|d| d.last_error.clone())
                .unwrap_or_default()
        );
    }
    engine.shutdown().await;
    let _ = stop_consumer.send(true);
    let _ = std::fs::remove_dir_all(&dir);
    sent?;
    let times = times.lock().map_err(|_| "lock poisoned".to_string())?;
    let last = times.arrived.values().max().copied().unwrap_or(started);
    let mut latencies: Vec<Duration> = times
        .arrived
        .iter()
        .filter_map(|(id, arrived)| Some(arrived.duration_since(*times.sent.get(id)?)))
        .collect();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "A31 delivered: {finished} of {} in {:.2} s = {:.0} per second; ADT sent -> A31 at the consumer: p50 {:.2} ms, p99 {:.2} ms",
        args.messages,
        last.duration_since(started).as_secs_f64(),
        finished as f64 / last.duration_since(started).as_secs_f64(),
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
    );
    if finished < args.messages {
        return Err(format!("only {finished} of {} A31s arrived", args.messages));
    }
    Ok(())
}

/// The MPI identifier (PID-3.1 of the first repetition) of a message.
fn patient_of(text: &str) -> Option<String> {
    let pid = text.split(['\r', '\n']).find(|s| s.starts_with("PID|"))?;
    let field = pid.split('|').nth(3)?;
    Some(field.split(['~', '^']).next()?.to_string())
}

async fn send_all(
    addr: &str,
    corpus: Arc<Vec<Vec<u8>>>,
    connections: usize,
    rate: Option<u64>,
    times: Arc<Mutex<Times>>,
) -> Result<(), String> {
    let connections = connections.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let corpus = corpus.clone();
        let addr = addr.to_string();
        let times = times.clone();
        let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r.max(1) as f64));
        tasks.spawn(async move {
            let mut client = Client::connect(&addr, Duration::from_secs(10))
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            let mut next_send = Instant::now() + interval.unwrap_or_default() * c as u32 / connections as u32;
            for message in corpus.iter().skip(c).step_by(connections) {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next_send.into()).await;
                    next_send += interval;
                }
                let patient = patient_of(&String::from_utf8_lossy(message)).unwrap_or_default();
                if let Ok(mut times) = times.lock() {
                    times.sent.insert(patient, Instant::now());
                }
                client.send(message).await.map_err(|e| format!("no ACK: {e}"))?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The PIX consumer: ACKs every message AA and notes when each patient's A31 arrived.
async fn start_consumer(
    times: Arc<Mutex<Times>>,
) -> Result<(String, tokio::sync::watch::Sender<bool>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let handler = Arc::new(handler_fn(move |message: Inbound| {
        let times = times.clone();
        async move {
            let arrived = Instant::now();
            let text = String::from_utf8_lossy(&message.payload);
            if let (Some(patient), Ok(mut times)) = (patient_of(&text), times.lock()) {
                times.arrived.entry(patient).or_insert(arrived);
            }
            let control_id = text
                .split(['\r', '\n'])
                .next()
                .and_then(|msh| msh.split('|').nth(9))
                .unwrap_or("")
                .to_string();
            vec![Bytes::from(format!(
                "MSH|^~\\&|PIX|PIX|TRIBUTARY|PORTAL|20261125000000||ACK^A31^ACK|R{control_id}|P|2.5\rMSA|AA|{control_id}\r"
            ))]
        }
    }));
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(tributary_adapter_mllp::serve(
        listener,
        ListenerConfig::new(addr),
        handler,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    Ok((addr.to_string(), stop))
}
