//! `GET /metrics` (Prometheus text exposition format) for a `metrics-reader` key, and the
//! middleware that counts and times every HTTP request by its route's pattern.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use super::auth::{Authed, allow};
use super::members::reply::error;
use crate::deliveries::delivery::{self, Delivery};
use crate::domain::accounts::roles::Role;
use crate::metrics::QueueState;
use crate::store::Keyspace;

/// The most deliveries counted per destination at a scrape: past it, the depth reads as this.
const DEPTH_COUNTED: usize = 10_000;

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, Authed(caller): Authed) -> Result<Response, Response> {
    allow(&caller, &[Role::MetricsReader])?;
    let Some(handle) = crate::metrics::install() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-metrics",
            "another metrics recorder was installed in this process",
        ));
    };
    let queues = queue_states(&state).await;
    let mut response = crate::metrics::render(handle, &queues).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// Each destination's queue now: how many wait (up to [`DEPTH_COUNTED`]) and the oldest's age.
pub(super) async fn queue_states(state: &AppState) -> Vec<QueueState> {
    let destinations = state.outbox.destinations();
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        destinations
            .into_iter()
            .map(|destination| {
                let waiting = store
                    .scan_prefix(Keyspace::Outbox, &delivery::prefix(&destination), DEPTH_COUNTED)
                    .unwrap_or_default();
                let oldest_age = waiting
                    .first()
                    .and_then(|(_, value)| Delivery::from_bytes(value))
                    .and_then(|d| chrono::DateTime::parse_from_rfc3339(&d.created_at).ok())
                    .and_then(|created| (chrono::Utc::now() - created.to_utc()).to_std().ok())
                    .unwrap_or(Duration::ZERO);
                QueueState {
                    destination,
                    depth: waiting.len(),
                    oldest_age,
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default()
}

/// Counts and times the request under its route's pattern (`/fhir/{type}/{id}`, never the ids).
pub async fn measured(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_owned());
    // The route's pattern, not the path: no id or identifier of a patient goes in a trace.
    let span = tracing::info_span!(
        target: crate::traces::TARGET,
        "http request",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", i64::from(response.status().as_u16()));
    crate::metrics::http_request(&route, &method, response.status().as_u16(), started.elapsed());
    response
}
