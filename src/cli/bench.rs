//! `tributary bench mllp`: the MLLP load generator and the null server it is measured against
//! (`bench fhir` is in `bench_fhir`, `bench outbox` in `bench_outbox`).
//!
//! It builds a varied ADT corpus, sends it over K connections (each waits for its ACK before the
//! next message, as MLLP senders do), and prints messages/s and p50/p99 ACK latency: first against
//! a null MLLP server that answers AA without parsing (this machine's ceiling), then against the
//! engine, durable, on a fresh store in a temporary folder, in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use tokio::net::TcpListener;
use tributary_adapter_core::{Inbound, InboundHandler};
use tributary_adapter_mllp::{Client, ListenerConfig};

use super::bench_process::{CpuSample, Measured};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// MLLP throughput, ACK latency and engine CPU per message, engine beside a null server.
    Mllp(MllpBenchArgs),
    /// FHIR Patient creates and reads by identifier over HTTP, engine beside a null server.
    Fhir(super::bench_fhir::FhirBenchArgs),
    /// PIX notifications: ADT in over MLLP, ADT^A31 out to an MLLP consumer; rate and latency.
    Outbox(super::bench_outbox::OutboxBenchArgs),
    /// Member search latency on 1,000,000 synced patients (by default).
    Members(super::bench_members::MembersBenchArgs),
    /// One news poll of F feeds of N items (time and engine CPU), then one that finds nothing new.
    News(super::bench_news::NewsBenchArgs),
    /// Provider message posted to its member's notice at an SMTP peer: latency and engine CPU.
    Notices(super::bench_notices::NoticesBenchArgs),
    /// Console page load times over a journal of 1,000,000 messages (by default).
    Console(super::bench_console::ConsoleBenchArgs),
    /// The null MLLP server `bench mllp` measures beside the engine (runs until SIGTERM).
    #[command(hide = true)]
    NullMllp,
}

#[derive(Args)]
pub struct MllpBenchArgs {
    /// Concurrent connections (K); a list runs each in turn.
    #[arg(long, value_delimiter = ',', default_value = "8,1")]
    connections: Vec<usize>,
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
    /// The process id of the engine at `--target`, to report its CPU time and memory.
    #[arg(long, requires = "target")]
    target_pid: Option<u32>,
    /// Skip the null server run.
    #[arg(long)]
    skip_null: bool,
    /// Also print the engine's CPU time per message split by thread.
    #[arg(long)]
    threads: bool,
    /// In runs longer than this, print the engine's memory and CPU every this many messages.
    #[arg(long, default_value_t = 100_000)]
    report_every: usize,
    /// The mappings folder the benchmarked engine loads.
    #[arg(long, default_value = "mappings")]
    mappings: std::path::PathBuf,
    /// The kind of message the corpus holds: `adt` (varied demographics) or `oru` (ORU^R01 lab
    /// results of 10 OBX each, for patients an unmeasured ADT per patient brings in first).
    #[arg(long, value_enum, default_value = "adt")]
    kind: CorpusKind,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CorpusKind {
    Adt,
    Oru,
}

pub async fn run(command: BenchCommand) -> std::process::ExitCode {
    let result = match command {
        BenchCommand::Mllp(args) => bench_mllp(args).await,
        BenchCommand::Fhir(args) => super::bench_fhir::bench_fhir(args).await,
        BenchCommand::Outbox(args) => super::bench_outbox::bench_outbox(args).await,
        BenchCommand::Members(args) => super::bench_members::bench_members(args).await,
        BenchCommand::News(args) => super::bench_news::bench_news(args).await,
        BenchCommand::Notices(args) => super::bench_notices::bench_notices(args).await,
        BenchCommand::Console(args) => super::bench_console::bench_console(args).await,
        BenchCommand::NullMllp => serve_null_mllp().await,
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
    let corpus = Arc::new(Corpus {
        kind: args.kind,
        messages: args.messages,
        patients: args.patients.max(1),
        run_id: run_id.clone(),
    });
    let sample = args.messages.min(1000);
    let average = (0..sample).map(|n| corpus.message(n).len()).sum::<usize>() / sample.max(1);
    println!(
        "corpus: {} {}, {} patients, {average} bytes on average{}",
        corpus.messages,
        match args.kind {
            CorpusKind::Adt => "ADT messages (A01 A04 A08 A28 A31)",
            CorpusKind::Oru => "ORU^R01 messages (10 OBX each; an ADT per patient sent first, unmeasured)",
        },
        args.patients,
        args.rate
            .map(|r| format!("; offered {r} msg/s"))
            .unwrap_or_default()
    );
    println!(
        "{:<14} {:>3} {:>9} {:>10} {:>9} {:>9} {:>12}",
        "server", "K", "messages", "msg/s", "p50 ms", "p99 ms", "CPU µs/msg"
    );
    let mut not_accepted = 0;
    for (run, &connections) in args.connections.iter().enumerate() {
        let connections = connections.max(1);
        // Each run sends its own control ids, so no run is answered from another's dedupe.
        let corpus = Arc::new(Corpus {
            run_id: format!("{run_id}-{run}"),
            ..Corpus::clone(&corpus)
        });
        let null = if args.skip_null {
            None
        } else {
            let null = Measured::null_mllp().await?;
            let result = load_then_stop(null, corpus.clone(), connections, &args).await?;
            print_row("null", connections, &result);
            Some(result)
        };
        let engine = match &args.target {
            Some(target) => {
                let process = args.target_pid.map(Watched::Pid);
                measured_load(target, process, corpus.clone(), connections, &args).await?
            }
            None => {
                let dir = std::env::temp_dir()
                    .join(format!("tributary-bench-{}-{run_id}-{run}", std::process::id()));
                let config = format!(
                    "[store]\ndata_dir = {:?}\n[http]\nbind = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n[mappings]\ndir = {:?}\n\
                     [[channels]]\nname = \"bench\"\nmapping = \"ucr-adt-patient\"\n[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n\
                     [channels.filter]\nmessage_types = [\"ADT\"]\n\
                     [[channels]]\nname = \"bench-oru\"\nmapping = \"ucr-oru-result\"\n[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n\
                     [channels.filter]\nmessage_types = [\"ORU\"]\n",
                    dir.join("store").display().to_string(),
                    std::path::absolute(&args.mappings)
                        .map_err(|e| e.to_string())?
                        .display()
                        .to_string()
                );
                let engine = Measured::engine(&config, dir).await?;
                load_then_stop(engine, corpus.clone(), connections, &args).await?
            }
        };
        print_row("engine", connections, &engine);
        if args.threads {
            print_threads(&engine);
        }
        if let Some(null) = null {
            println!(
                "engine/null: {:.0}% of the null server's msg/s, {:.1}x its CPU per message",
                100.0 * engine.per_second / null.per_second,
                engine.cpu_per_message().as_secs_f64() / null.cpu_per_message().as_secs_f64().max(1e-9)
            );
        }
        not_accepted += engine.not_accepted;
    }
    if not_accepted > 0 {
        return Err(format!("{not_accepted} messages were not answered AA"));
    }
    Ok(())
}

/// The corpus a run sends, made message by message as it goes (a million messages need not sit
/// in memory).
#[derive(Clone)]
struct Corpus {
    kind: CorpusKind,
    messages: usize,
    patients: usize,
    run_id: String,
}

impl Corpus {
    fn message(&self, n: usize) -> Vec<u8> {
        match self.kind {
            CorpusKind::Adt => adt_message(n, self.patients, &self.run_id),
            CorpusKind::Oru => oru_message(n, self.patients, &self.run_id),
        }
    }

    /// What must be sent before the measured run: for results, one ADT per patient (the first
    /// `patients` messages of the ADT corpus name each patient once), so no result is refused
    /// for an unknown patient.
    fn setup(&self) -> Option<Corpus> {
        (self.kind == CorpusKind::Oru).then(|| Corpus {
            kind: CorpusKind::Adt,
            messages: self.patients,
            patients: self.patients,
            run_id: format!("{}-setup", self.run_id),
        })
    }
}

/// The process whose CPU time a run reports: one the benchmark started, or one given by pid.
enum Watched<'a> {
    Started(&'a Measured),
    Pid(u32),
}

impl Watched<'_> {
    fn cpu(&self) -> CpuSample {
        match self {
            Watched::Started(process) => process.cpu(),
            Watched::Pid(pid) => super::bench_process::cpu_of(*pid),
        }
    }

    async fn cpu_when_idle(&self) -> CpuSample {
        match self {
            Watched::Started(process) => process.cpu_when_idle().await,
            Watched::Pid(pid) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                super::bench_process::cpu_of(*pid)
            }
        }
    }

    fn rss_bytes(&self) -> u64 {
        match self {
            Watched::Started(process) => process.rss_bytes(),
            Watched::Pid(pid) => super::bench_process::rss_of(*pid),
        }
    }
}

/// One load run against a process this bench started (the null server or the engine): at its
/// first MLLP listener, measured, then the process stopped whatever the run came to.
async fn load_then_stop(
    process: Measured,
    corpus: Arc<Corpus>,
    connections: usize,
    args: &MllpBenchArgs,
) -> Result<LoadResult, String> {
    let Some(&(_, addr)) = process.mllp.first() else {
        process.stop().await;
        return Err("the process has no MLLP listener".into());
    };
    let result = measured_load(
        &addr.to_string(),
        Some(Watched::Started(&process)),
        corpus,
        connections,
        args,
    )
    .await;
    process.stop().await;
    result
}

/// One load run with the process's CPU time over it (until it goes idle after) and, in long runs,
/// its memory and CPU every `report_every` messages.
async fn measured_load(
    addr: &str,
    process: Option<Watched<'_>>,
    corpus: Arc<Corpus>,
    connections: usize,
    args: &MllpBenchArgs,
) -> Result<LoadResult, String> {
    if let Some(setup) = corpus.setup() {
        let setup = load(
            addr,
            Arc::new(setup),
            connections,
            None,
            Arc::new(AtomicUsize::new(0)),
        )
        .await?;
        if setup.not_accepted > 0 {
            return Err(format!("{} setup ADTs were not answered AA", setup.not_accepted));
        }
    }
    let acked = Arc::new(AtomicUsize::new(0));
    let before = process.as_ref().map(Watched::cpu);
    let every = args.report_every.max(1);
    let messages = corpus.messages;
    let progress = async {
        let (Some(process), Some(before)) = (&process, &before) else {
            return std::future::pending().await;
        };
        if messages <= every {
            return std::future::pending().await;
        }
        let mut next = every;
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let done = acked.load(Ordering::Relaxed);
            if done >= next {
                let used = process.cpu().since(before).total;
                println!(
                    "  {done:>9} messages: engine RSS {:.1} MiB, CPU {:.1} µs/msg so far",
                    process.rss_bytes() as f64 / (1024.0 * 1024.0),
                    used.as_secs_f64() * 1e6 / done as f64
                );
                next += every;
            }
        }
    };
    let result = tokio::select! {
        result = load(addr, corpus, connections, args.rate, acked.clone()) => result?,
        () = progress => unreachable!("the progress report runs until the load ends"),
    };
    let cpu = match (&process, &before) {
        (Some(process), Some(before)) => Some(process.cpu_when_idle().await.since(before)),
        _ => None,
    };
    Ok(LoadResult { cpu, ..result })
}

fn print_threads(result: &LoadResult) {
    let Some(cpu) = &result.cpu else { return };
    let mut threads: Vec<_> = cpu.by_thread.iter().collect();
    threads.sort_by(|a, b| b.1.cmp(a.1));
    let per_message = |used: &Duration| used.as_secs_f64() * 1e6 / result.messages.max(1) as f64;
    let split: Vec<String> = threads
        .iter()
        .map(|(name, used)| format!("{name} {:.1}", per_message(used)))
        .collect();
    println!("  CPU µs/msg by thread: {}", split.join(", "));
}

pub(super) struct LoadResult {
    pub messages: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub not_accepted: usize,
    /// The measured process's CPU time over the run, when it is known.
    pub cpu: Option<CpuSample>,
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
            cpu: None,
        }
    }

    /// CPU time per message (zero when not measured).
    pub fn cpu_per_message(&self) -> Duration {
        self.cpu
            .as_ref()
            .map(|cpu| cpu.total / self.messages.max(1) as u32)
            .unwrap_or_default()
    }
}

pub(super) fn print_row(server: &str, k: usize, r: &LoadResult) {
    let cpu = match &r.cpu {
        Some(_) => format!("{:.1}", r.cpu_per_message().as_secs_f64() * 1e6),
        None => "-".to_string(),
    };
    println!(
        "{server:<14} {k:>3} {:>9} {:>10.0} {:>9.3} {:>9.3} {cpu:>12}",
        r.messages,
        r.per_second,
        r.p50.as_secs_f64() * 1000.0,
        r.p99.as_secs_f64() * 1000.0
    );
}

/// Sends the corpus over `connections` connections, each message waiting for its ACK; counts
/// the ACKs in `acked` as they come.
async fn load(
    addr: &str,
    corpus: Arc<Corpus>,
    connections: usize,
    rate: Option<u64>,
    acked: Arc<AtomicUsize>,
) -> Result<LoadResult, String> {
    let connections = connections.max(1);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let corpus = corpus.clone();
        let addr = addr.to_string();
        let acked = acked.clone();
        // Each connection paces itself at its share of the offered rate.
        let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r.max(1) as f64));
        tasks.spawn(async move {
            let mut client = Client::connect(&addr, Duration::from_secs(10))
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            let mut latencies = Vec::with_capacity(corpus.messages / connections + 1);
            let mut not_accepted = 0;
            // Connections are staggered so the offered messages arrive evenly spread, not in bursts.
            let mut next_send = Instant::now() + interval.unwrap_or_default() * c as u32 / connections as u32;
            for n in (c..corpus.messages).step_by(connections) {
                let message = corpus.message(n);
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next_send.into()).await;
                    next_send += interval;
                }
                let sent = Instant::now();
                let ack = client.send(&message).await.map_err(|e| format!("no ACK: {e}"))?;
                latencies.push(sent.elapsed());
                acked.fetch_add(1, Ordering::Relaxed);
                if !ack.windows(7).any(|w| w == b"\rMSA|AA" || w == b"\rMSA|CA") {
                    not_accepted += 1;
                }
            }
            Ok::<_, String>((latencies, not_accepted))
        });
    }
    let mut latencies = Vec::with_capacity(corpus.messages);
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

/// `tributary bench null-mllp`: serves the null handler on a loopback port until SIGTERM,
/// printing its address as `serve` does.
async fn serve_null_mllp() -> Result<(), String> {
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
    println!("listening mllp={addr}");
    println!("ready");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let _ = tributary_adapter_mllp::serve(listener, config, handler, async move {
        terminate.recv().await;
    })
    .await;
    Ok(())
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

/// The results of the ORU corpus: LOINC code, name, unit, range low and high.
const TESTS: &[(&str, &str, &str, f64, f64)] = &[
    ("2345-7", "Glucose", "mmol/L", 3.9, 5.5),
    ("2823-3", "Potassium", "mmol/L", 3.5, 5.1),
    ("2951-2", "Sodium", "mmol/L", 135.0, 145.0),
    ("2075-0", "Chloride", "mmol/L", 98.0, 107.0),
    ("2028-9", "Carbon dioxide", "mmol/L", 22.0, 29.0),
    ("3094-0", "Urea nitrogen", "mmol/L", 2.5, 7.1),
    ("2160-0", "Creatinine", "umol/L", 62.0, 106.0),
    ("17861-6", "Calcium", "mmol/L", 2.15, 2.55),
    ("2885-2", "Protein", "g/L", 64.0, 83.0),
    ("1751-7", "Albumin", "g/L", 35.0, 52.0),
];

/// Message `n` of the ORU^R01 corpus: a metabolic panel of 10 results with units, ranges and
/// flags, about one of `patients` patients (named as the ADT corpus names them).
fn oru_message(n: usize, patients: usize, run_id: &str) -> Vec<u8> {
    let p = (n * 7919) % patients;
    let mut text = format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125{:02}{:02}{:02}+0000||ORU^R01^ORU_R01|R{run_id}-{n}|P|2.5\r\
         PID|1||{p:07}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI\r\
         OBR|1|P{n}^CLINIC|L{run_id}-{n}^UCRLAB^2.16.840.1.113883.3.9999.7^ISO|24323-8^Comprehensive metabolic panel^LN|||20261125070000+0000||||||||||||||||CH|F\r",
        n / 3600 % 24,
        n / 60 % 60,
        n % 60,
    );
    for (i, (code, name, unit, low, high)) in TESTS.iter().enumerate() {
        // Spread around the range: some below, most within, some above.
        let value = low + (high - low) * (((n * 31 + i * 17) % 14) as f64 - 2.0) / 10.0;
        let flag = if value < *low {
            "L"
        } else if value > *high {
            "H"
        } else {
            "N"
        };
        text.push_str(&format!(
            "OBX|{}|NM|{code}^{name}^LN||{value:.2}|{unit}^{unit}^UCUM|{low}-{high}|{flag}|||F|||20261125070000+0000\r",
            i + 1
        ));
    }
    text.into_bytes()
}

/// A varied ADT corpus: events, names, addresses, phones, emails and escapes differ per message.
pub(super) fn adt_corpus(messages: usize, patients: usize, run_id: &str) -> Vec<Vec<u8>> {
    (0..messages).map(|n| adt_message(n, patients, run_id)).collect()
}

/// Message `n` of the corpus about `patients` patients.
fn adt_message(n: usize, patients: usize, run_id: &str) -> Vec<u8> {
    let p = (n * 7919) % patients;
    let event = EVENTS[n % EVENTS.len()];
    let family = FAMILIES[p % FAMILIES.len()];
    let given = GIVENS[(p / 10) % GIVENS.len()];
    let street = STREETS[(n + p) % STREETS.len()];
    let structure = if event == "A28" || event == "A31" {
        "ADT_A05"
    } else {
        "ADT_A01"
    };
    let pv1 = if structure == "ADT_A05" {
        "PV1||N".to_string()
    } else {
        format!("PV1||O|CLINIC^{}^1", n % 40)
    };
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
}
