//! Prometheus metrics (issue 18): every metric the engine records, named and labelled here once;
//! the process-wide recorder (the `metrics` facade's, rendered by `metrics-exporter-prometheus`);
//! and the gauges read only when `/metrics` is scraped (outbox depth and age, memory, sockets).
//!
//! Measuring points call the functions below; a process without the recorder installed (a unit
//! test, a CLI command) records into nothing.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const MESSAGES: &str = "tributary_messages_total";
const ACK_LATENCY: &str = "tributary_ack_latency_seconds";
const COMMIT_BATCH: &str = "tributary_commit_batch_jobs";
const FSYNC: &str = "tributary_fsync_seconds";
const DELIVERIES: &str = "tributary_deliveries_total";
const DELIVERY_LATENCY: &str = "tributary_delivery_seconds";
const OUTBOX_DEPTH: &str = "tributary_outbox_depth";
const OUTBOX_OLDEST: &str = "tributary_outbox_oldest_age_seconds";
const JOB_RUNS: &str = "tributary_job_runs_total";
const JOB_FAILURES: &str = "tributary_job_failures_total";
const HTTP_REQUESTS: &str = "tributary_http_requests_total";
const HTTP_LATENCY: &str = "tributary_http_request_seconds";
const RESIDENT_MEMORY: &str = "tributary_process_resident_memory_bytes";
const OPEN_SOCKETS: &str = "tributary_process_open_sockets";

/// Latency buckets (seconds): from half a millisecond, where a durable ACK lands on a quiet
/// machine, to ten seconds, where a peer times out.
const LATENCY_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Jobs per commit: one, and powers of two up to the largest batch worth configuring.
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls give the same handle). None when another
/// recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(COMMIT_BATCH.into()), &BATCH_BUCKETS))
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    describe_counter!(
        MESSAGES,
        "Inbound HL7 v2 messages by channel, message type and journal status (applied, rejected, filtered, duplicate)."
    );
    describe_histogram!(
        ACK_LATENCY,
        Unit::Seconds,
        "From a message's frame read to its ACK ready to write (after the durable commit), by channel."
    );
    describe_histogram!(
        COMMIT_BATCH,
        "Jobs (messages, API and FHIR changes) committed together."
    );
    describe_histogram!(
        FSYNC,
        Unit::Seconds,
        "One sync of the store's log (fdatasync), covering every batch waiting for it."
    );
    describe_counter!(
        DELIVERIES,
        "Outbox delivery attempts by destination and result (delivered, retry, dead, superseded)."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "One delivery attempt: the adapter's send and its answer, by destination."
    );
    describe_gauge!(
        OUTBOX_DEPTH,
        "Deliveries waiting, by destination (counted up to 10,000)."
    );
    describe_gauge!(
        OUTBOX_OLDEST,
        Unit::Seconds,
        "Age of the oldest delivery waiting, by destination (0 when none)."
    );
    describe_counter!(JOB_RUNS, "Scheduled job runs, by job.");
    describe_counter!(JOB_FAILURES, "Scheduled job runs that failed, by job.");
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by route (its pattern), method and status."
    );
    describe_histogram!(
        HTTP_LATENCY,
        Unit::Seconds,
        "HTTP request handling time, by route."
    );
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory of the engine process."
    );
    describe_gauge!(
        OPEN_SOCKETS,
        "Sockets the engine holds open: listeners and connections, in and out."
    );
}

/// Messages by channel and status since the engine started, for the console's dashboard.
static BY_CHANNEL: Mutex<BTreeMap<(String, &'static str), u64>> = Mutex::new(BTreeMap::new());

/// An inbound message journaled with `status`.
pub fn message(channel: &str, message_type: &str, status: &'static str) {
    if let Ok(mut counts) = BY_CHANNEL.lock() {
        *counts.entry((channel.to_string(), status)).or_default() += 1;
    }
    count_rate(channel);
    counter!(
        MESSAGES,
        "channel" => channel.to_string(),
        "type" => message_type.to_string(),
        "status" => status
    )
    .increment(1);
}

/// Messages by channel and status since the engine started.
pub fn messages_by_channel() -> BTreeMap<(String, &'static str), u64> {
    BY_CHANNEL.lock().map(|c| c.clone()).unwrap_or_default()
}

/// Seconds in one step of the console's msg/s chart.
pub const RATE_STEP_SECS: u64 = 10;

/// Steps the chart keeps: the last ten minutes.
pub const RATE_STEPS: usize = 60;

/// Messages by channel in each recent step: `(step number since the epoch, count)`, oldest
/// first, steps without messages left out.
static RATES: Mutex<BTreeMap<String, std::collections::VecDeque<(u64, u64)>>> = Mutex::new(BTreeMap::new());

fn step_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / RATE_STEP_SECS)
}

fn count_rate(channel: &str) {
    let now = step_now();
    let Ok(mut rates) = RATES.lock() else { return };
    if !rates.contains_key(channel) {
        rates.insert(channel.to_string(), Default::default());
    }
    let steps = rates.get_mut(channel).expect("just inserted");
    match steps.back_mut() {
        Some((step, count)) if *step == now => *count += 1,
        _ => steps.push_back((now, 1)),
    }
    while steps
        .front()
        .is_some_and(|(step, _)| step + (RATE_STEPS as u64) <= now)
    {
        steps.pop_front();
    }
}

/// Each channel's messages per second in each of the last `RATE_STEPS` steps, oldest first;
/// the last step is the one under way (its rate so far over the whole step).
pub fn message_rates() -> BTreeMap<String, Vec<f64>> {
    let now = step_now();
    let first = now + 1 - RATE_STEPS as u64;
    let Ok(rates) = RATES.lock() else {
        return BTreeMap::new();
    };
    rates
        .iter()
        .map(|(channel, steps)| {
            let mut per_second = vec![0.0; RATE_STEPS];
            for (step, count) in steps.iter().filter(|(step, _)| *step >= first && *step <= now) {
                per_second[(step - first) as usize] = *count as f64 / RATE_STEP_SECS as f64;
            }
            (channel.clone(), per_second)
        })
        .collect()
}

/// A message answered `took` after its frame was read.
pub fn ack_latency(channel: &str, took: Duration) {
    histogram!(ACK_LATENCY, "channel" => channel.to_string()).record(took.as_secs_f64());
}

/// A batch of `jobs` committed together.
pub fn commit_batch(jobs: usize) {
    histogram!(COMMIT_BATCH).record(jobs as f64);
}

/// One sync of the store that took `took`.
pub fn fsync(took: Duration) {
    histogram!(FSYNC).record(took.as_secs_f64());
}

/// A delivery attempt to `destination` that came to `result` in `took`.
pub fn delivery(destination: &str, result: &'static str, took: Duration) {
    counter!(DELIVERIES, "destination" => destination.to_string(), "result" => result).increment(1);
    histogram!(DELIVERY_LATENCY, "destination" => destination.to_string()).record(took.as_secs_f64());
}

/// A delivery settled without an attempt (superseded, or dead before it went).
pub fn delivery_settled(destination: &str, result: &'static str) {
    counter!(DELIVERIES, "destination" => destination.to_string(), "result" => result).increment(1);
}

/// A run of scheduled job `job`.
pub fn job_run(job: &str, failed: bool) {
    counter!(JOB_RUNS, "job" => job.to_string()).increment(1);
    if failed {
        counter!(JOB_FAILURES, "job" => job.to_string()).increment(1);
    }
}

/// An HTTP request to `route` (its pattern, never the path with ids in it).
pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    counter!(
        HTTP_REQUESTS,
        "route" => route.to_string(),
        "method" => method.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    histogram!(HTTP_LATENCY, "route" => route.to_string()).record(took.as_secs_f64());
}

/// What one destination's queue looks like now.
pub struct QueueState {
    pub destination: String,
    pub depth: usize,
    pub oldest_age: Duration,
}

/// The text of `/metrics`: the gauges read now, then every metric in Prometheus's text format.
pub fn render(handle: &PrometheusHandle, queues: &[QueueState]) -> String {
    for queue in queues {
        gauge!(OUTBOX_DEPTH, "destination" => queue.destination.clone()).set(queue.depth as f64);
        gauge!(OUTBOX_OLDEST, "destination" => queue.destination.clone()).set(queue.oldest_age.as_secs_f64());
    }
    if let Some(bytes) = resident_memory() {
        gauge!(RESIDENT_MEMORY).set(bytes as f64);
    }
    if let Some(sockets) = open_sockets() {
        gauge!(OPEN_SOCKETS).set(sockets as f64);
    }
    handle.render()
}

/// VmRSS of this process, from `/proc/self/status`.
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// File descriptors of this process that are sockets, from `/proc/self/fd`.
fn open_sockets() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count(),
    )
}
