//! `tributary bench mllp`: the MLLP load generator and the null server it is measured against
//! (`bench fhir` is in `bench_fhir`, `bench outbox` in `bench_outbox`).
//!
//! It builds a varied ADT corpus, sends it over K connections (each waits for its ACK before the
//! next message, as MLLP senders do), and prints messages/s and p50/p99 ACK latency: first against
//! a null MLLP server that answers AA without parsing (this machine's ceiling), then against the
//! engine, durable, on a fresh store in a temporary folder, in the same run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use tokio::net::TcpListener;
use tributary_adapter_core::{Inbound, InboundHandler};
use tributary_adapter_mllp::{Client, ListenerConfig};

use crate::app::Engine;
use crate::config::Config;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// MLLP throughput and ACK latency, engine beside a null server.
    Mllp(MllpBenchArgs),
    /// FHIR Patient creates and reads by identifier over HTTP, engine beside a null server.
    Fhir(super::bench_fhir::FhirBenchArgs),
    /// PIX notifications: ADT in over MLLP, ADT^A31 out to an MLLP consumer; rate and latency.
    Outbox(super::bench_outbox::OutboxBenchArgs),
    /// Member search latency on 1,000,000 synced patients (by default).
    Members(super::bench_members::MembersBenchArgs),
}

#[derive(Args)]
pub struct MllpBenchArgs {
    /// Concurrent connections (K).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Messages to send in each measured run.
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Distinct patients the corpus is about.
    #[arg(long, default_value_t = 10_000)]
    patients: usize,
    /// Offer this many messages per second in all instead of as fast as ACKs come back.
    #[arg(long)]
    rate: Option<u64>,
    /// Measure an engine already running at HOST:PORT instead of starting one.
    #[arg(long)]
    target: Option<String>,
    /// Skip the null server run.
    #[arg(long)]
    skip_null: bool,
    /// The mappings folder the benchmarked engine loads.
    #[arg(long, default_value = "mappings")]
    mappings: std::path::PathBuf,
}

pub async fn run(command: BenchCommand) -> std::process::ExitCode {
    let result = match command {
        BenchCommand::Mllp(args) => bench_mllp(args).await,
        BenchCommand::Fhir(args) => super::bench_fhir::bench_fhir(args).await,
        BenchCommand::Outbox(args) => super::bench_outbox::bench_outbox(args).await,
        BenchCommand::Members(args) => super::bench_members::bench_members(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench_mllp(args: MllpBenchArgs) -> Result<(), String> {
    let run_id = chrono::Utc::now().format("%H%M%S%3f").to_string();
    let corpus = Arc::new(adt_corpus(args.messages, args.patients.max(1), &run_id));
    let average = corpus.iter().map(Vec::len).sum::<usize>() / corpus.len().max(1);
    println!(
        "corpus: {} ADT messages (A01 A04 A08 A28 A31), {} patients, {average} bytes on average; K={}{}",
        corpus.len(),
        args.patients,
        args.connections,
        args.rate
            .map(|r| format!(", offered {r} msg/s"))
            .unwrap_or_default()
    );
    println!(
        "{:<14} {:>3} {:>9} {:>10} {:>9} {:>9}",
        "server", "K", "messages", "msg/s", "p50 ms", "p99 ms"
    );
    let null = if args.skip_null {
        None
    } else {
        let (addr, stop) = start_null_server().await?;
        let result = load(&addr.to_string(), corpus.clone(), args.connections, args.rate).await?;
        let _ = stop.send(true);
        print_row("null", args.connections, &result);
        Some(result)
    };
    let engine_result = match &args.target {
        Some(target) => load(target, corpus.clone(), args.connections, args.rate).await?,
        None => {
            let dir = std::env::temp_dir().join(format!("tributary-bench-{}-{run_id}", std::process::id()));
            let config = Config::parse(
                &format!(
                    "[store]\ndata_dir = {:?}\n[http]\nbind = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n[mappings]\ndir = {:?}\n\
                     [[channels]]\nname = \"bench\"\nmapping = \"ucr-adt-patient\"\n[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n",
                    dir.display().to_string(),
                    args.mappings.display().to_string()
                ),
                "bench.toml",
            )
            .map_err(|e| e.to_string())?;
            let engine = Engine::start(&config).await.map_err(|e| e.to_string())?;
            let addr = engine.mllp[0].1.to_string();
            let result = load(&addr, corpus.clone(), args.connections, args.rate).await;
            engine.shutdown().await;
            let _ = std::fs::remove_dir_all(&dir);
            result?
        }
    };
    print_row("engine", args.connections, &engine_result);
    if let Some(null) = null {
        println!(
            "engine/null: {:.0}% of the null server's msg/s",
            100.0 * engine_result.per_second / null.per_second
        );
    }
    if engine_result.not_accepted > 0 {
        return Err(format!(
            "{} messages were not answered AA",
            engine_result.not_accepted
        ));
    }
    Ok(())
}

pub(super) struct LoadResult {
    pub messages: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub not_accepted: usize,
}

impl LoadResult {
    /// Throughput and percentiles of a run that took `elapsed`.
    pub fn from_latencies(
        mut latencies: Vec<Duration>,
        elapsed: Duration,
        not_accepted: usize,
    ) -> LoadResult {
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        LoadResult {
            messages: latencies.len(),
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
            not_accepted,
        }
    }
}

pub(super) fn print_row(server: &str, k: usize, r: &LoadResult) {
    println!(
        "{server:<14} {k:>3} {:>9} {:>10.0} {:>9.3} {:>9.3}",
        r.messages,
        r.per_second,
        r.p50.as_secs_f64() * 1000.0,
        r.p99.as_secs_f64() * 1000.0
    );
}

/// Sends the corpus over `connections` connections, each message waiting for its ACK.
async fn load(
    addr: &str,
    corpus: Arc<Vec<Vec<u8>>>,
    connections: usize,
    rate: Option<u64>,
) -> Result<LoadResult, String> {
    let connections = connections.max(1);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let corpus = corpus.clone();
        let addr = addr.to_string();
        // Each connection paces itself at its share of the offered rate.
        let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r.max(1) as f64));
        tasks.spawn(async move {
            let mut client = Client::connect(&addr, Duration::from_secs(10))
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            let mut latencies = Vec::with_capacity(corpus.len() / connections + 1);
            let mut not_accepted = 0;
            // Connections are staggered so the offered messages arrive evenly spread, not in bursts.
            let mut next_send = Instant::now() + interval.unwrap_or_default() * c as u32 / connections as u32;
            for message in corpus.iter().skip(c).step_by(connections) {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next_send.into()).await;
                    next_send += interval;
                }
                let sent = Instant::now();
                let ack = client.send(message).await.map_err(|e| format!("no ACK: {e}"))?;
                latencies.push(sent.elapsed());
                if !ack.windows(7).any(|w| w == b"\rMSA|AA" || w == b"\rMSA|CA") {
                    not_accepted += 1;
                }
            }
            Ok::<_, String>((latencies, not_accepted))
        });
    }
    let mut latencies = Vec::with_capacity(corpus.len());
    let mut not_accepted = 0;
    while let Some(done) = tasks.join_next().await {
        let (l, n) = done.map_err(|e| e.to_string())??;
        latencies.extend(l);
        not_accepted += n;
    }
    Ok(LoadResult::from_latencies(
        latencies,
        started.elapsed(),
        not_accepted,
    ))
}

/// Answers every frame with the same AA, parsing nothing.
struct NullHandler {
    ack: Bytes,
}

impl InboundHandler for NullHandler {
    fn handle<'a>(
        &'a self,
        _: Inbound,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Bytes>> + Send + 'a>> {
        Box::pin(async move { vec![self.ack.clone()] })
    }
}

async fn start_null_server() -> Result<(SocketAddr, tokio::sync::watch::Sender<bool>), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let config = ListenerConfig {
        bind: addr,
        max_frame: 1024 * 1024,
        idle_timeout: Duration::from_secs(60),
        // The benchmark's own connections only: no cap worth measuring.
        max_connections: tokio::sync::Semaphore::MAX_PERMITS,
        ..ListenerConfig::new(addr)
    };
    let handler = Arc::new(NullHandler {
        ack: Bytes::from_static(
            b"MSH|^~\\&|NULL|NULL|BENCH|BENCH|20260101000000||ACK^A01^ACK|1|P|2.5\rMSA|AA|1\r",
        ),
    });
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(tributary_adapter_mllp::serve(
        listener,
        config,
        handler,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    Ok((addr, stop))
}

const FAMILIES: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Haddad",
    "Moreau",
    "Tanaka",
    "O'Brien",
    "Novak",
    "Silva",
    "Kowalski",
    "Nguyen",
];
const GIVENS: &[&str] = &[
    "Amara", "Johan", "Layla", "Louis", "Yuki", "Siobhan", "Petr", "Ana", "Marta", "Minh",
];
const STREETS: &[&str] = &[
    "12 Harbour Rd",
    "4 Elm St\\T\\Main",
    "77 Riverside Ave",
    "9 Hill Ln",
    "310 Station Sq",
];
const EVENTS: &[&str] = &["A28", "A01", "A04", "A08", "A31"];

/// A varied ADT corpus: events, names, addresses, phones, emails and escapes differ per message.
pub(super) fn adt_corpus(messages: usize, patients: usize, run_id: &str) -> Vec<Vec<u8>> {
    (0..messages)
        .map(|n| {
            let p = (n * 7919) % patients;
            let event = EVENTS[n % EVENTS.len()];
            let family = FAMILIES[p % FAMILIES.len()];
            let given = GIVENS[(p / 10) % GIVENS.len()];
            let street = STREETS[(n + p) % STREETS.len()];
            let structure = if event == "A28" || event == "A31" { "ADT_A05" } else { "ADT_A01" };
            let pv1 = if structure == "ADT_A05" { "PV1||N".to_string() } else { format!("PV1||O|CLINIC^{}^1", n % 40) };
            format!(
                "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125{:02}{:02}{:02}+0000||ADT^{event}^{structure}|B{run_id}-{n}|P|2.5\r\
                 EVN|{event}|20261125120000\r\
                 PID|1||{p:07}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI~M{p:06}^^^HOSPA&2.16.840.1.113883.3.9999.2&ISO^MR||{family}^{given}^Q^^^^L||19{:02}{:02}{:02}|{}|||{street}^Apt {}^Boston^MA^02{:03}^USA^H||^PRN^PH^^1^617^555{:04}~^NET^Internet^{}.{}{p}@example.org|^WPN^PH^^1^617^777{:04}||{}\r\
                 {pv1}\r",
                n / 3600 % 24,
                n / 60 % 60,
                n % 60,
                40 + p % 60,
                1 + p % 12,
                1 + p % 28,
                if p.is_multiple_of(2) { "F" } else { "M" },
                n % 30,
                p % 1000,
                p % 10_000,
                given.to_lowercase(),
                family.to_lowercase().replace('\'', ""),
                (p + 1) % 10_000,
                if p.is_multiple_of(5) { "ar^Arabic^ISO639" } else { "en^English^ISO639" },
            )
            .into_bytes()
        })
        .collect()
}
