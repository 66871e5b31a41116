//! Traces: each inbound message and HTTP request as one span tree, exported over OTLP/HTTP when
//! `[traces] otlp_endpoint` is set (README "Traces").
//!
//! A message's tree is `message` (control id, type, channel, journal sequence, status; never a
//! patient's data) with `parse`, `map`, `commit` (run, commit and sync, until durable) and `ack`
//! under it, and one `delivery` per try of each delivery it queued, under it too: a delivery
//! runs later, so its parent is found by the journal sequence of its cause (the recent ones are
//! remembered here; after a restart a delivery starts a trace of its own). An HTTP request is
//! `http request` with the `commit` of any change it made under it.
//!
//! Every span here has the target [`TARGET`], which only the OTLP layer is given: the log output
//! never takes it, so with no endpoint configured no layer wants these spans, their call sites
//! are switched off once, and creating one costs a check of that.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of every span of a trace (and only of those).
pub const TARGET: &str = "tributary::trace";

/// Causes whose span is remembered for their deliveries: the most recent ones.
const REMEMBERED: usize = 16_384;

/// How often finished spans are sent.
const EXPORT_EVERY: Duration = Duration::from_secs(1);

/// The exporter, kept to send what is left when the engine stops.
pub struct Exporter(SdkTracerProvider);

impl Exporter {
    /// Sends the spans not yet sent and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.0.force_flush() {
            tracing::warn!(error = %e, "the last spans could not be sent");
        }
        let _ = self.0.shutdown();
    }
}

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("traces: cannot export to {endpoint}: {source}")]
pub struct ExporterError {
    endpoint: String,
    #[source]
    source: opentelemetry_otlp::ExporterBuildError,
}

/// The OTLP layer sending to `endpoint` (the full URL, `http://collector:4318/v1/traces`), OTLP
/// over HTTP with JSON, spans batched and sent every second from a thread of their own.
pub fn otlp_layer<S>(
    endpoint: &str,
    service_name: &str,
) -> Result<(impl tracing_subscriber::Layer<S> + use<S>, Exporter), ExporterError>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| ExporterError {
            endpoint: endpoint.to_string(),
            source,
        })?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(EXPORT_EVERY)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_string())
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("tributary"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    Ok((layer, Exporter(provider)))
}

/// The root span of one inbound message; its fields are filled in as they become known.
pub fn message_span() -> Span {
    tracing::info_span!(
        target: TARGET,
        "message",
        channel = tracing::field::Empty,
        control_id = tracing::field::Empty,
        message_type = tracing::field::Empty,
        journal_seq = tracing::field::Empty,
        status = tracing::field::Empty,
    )
}

/// A step of the current message or request (`parse`, `map`, `ack`).
#[macro_export]
macro_rules! trace_step {
    ($name:literal $(, $($field:tt)*)?) => {
        tracing::info_span!(target: $crate::traces::TARGET, $name $(, $($field)*)?)
    };
}

/// The span of one job on the committer, under the span it was sent from (a message, a
/// request), until its change is durable.
pub fn commit_span(parent: &Span) -> Span {
    tracing::info_span!(
        target: TARGET,
        parent: parent,
        "commit",
        journal_seq = tracing::field::Empty,
        status = tracing::field::Empty,
    )
}

/// Records the job's journal sequence and status on its commit span and the span it came from,
/// and remembers that span for the deliveries the job queued.
pub fn committed(parent: &Span, commit: &Span, seq: u64, status: &str) {
    if commit.is_disabled() {
        return;
    }
    for span in [parent, commit] {
        span.record("journal_seq", seq as i64);
        span.record("status", status);
    }
    // Its context (ids), not the span: a span kept would stay open, and unsent, until dropped.
    let context = parent.context();
    if let Ok(mut remembered) = REMEMBERED_SPANS.lock() {
        remembered.remember(seq, context);
    }
}

/// The span of one try of a delivery, under the message (or request) that queued it when that
/// is still remembered.
pub fn delivery_span(destination: &str, id: &str, cause: u64, attempt: u32) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "delivery",
        destination = destination,
        delivery_id = id,
        cause_journal_seq = cause as i64,
        attempt = attempt as i64,
        result = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let cause_context = REMEMBERED_SPANS
        .lock()
        .ok()
        .and_then(|remembered| remembered.get(cause));
    if let Some(context) = cause_context {
        let _ = span.set_parent(context);
    }
    span
}

/// The span contexts of recent causes, by journal sequence, the oldest forgotten first.
struct Remembered {
    by_seq: HashMap<u64, opentelemetry::Context>,
    order: VecDeque<u64>,
}

static REMEMBERED_SPANS: std::sync::LazyLock<Mutex<Remembered>> = std::sync::LazyLock::new(|| {
    Mutex::new(Remembered {
        by_seq: HashMap::new(),
        order: VecDeque::new(),
    })
});

impl Remembered {
    fn remember(&mut self, seq: u64, context: opentelemetry::Context) {
        if self.by_seq.insert(seq, context).is_none() {
            self.order.push_back(seq);
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.by_seq.remove(&oldest);
            }
        }
    }

    fn get(&self, seq: u64) -> Option<opentelemetry::Context> {
        self.by_seq.get(&seq).cloned()
    }
}
