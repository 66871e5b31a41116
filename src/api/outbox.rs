//! The outbox API: what is waiting, what failed for good, and putting a dead letter back or
//! discarding it.
//!
//! - `GET /outbox/{destination}/pending?limit=N`: a destination's queue, next first.
//! - `GET /outbox/dead-letters?destination=D&limit=N`: dead letters, oldest cause first.
//! - `GET /outbox/deliveries/{id}`: one delivery wherever it is (pending, dead, delivered).
//! - `POST /outbox/dead-letters/{id}/retry`: back into its queue, tries counted afresh; or, when a
//!   newer delivery of the same resource to the same destination has already gone out, marked
//!   `superseded` (not sent: it would overwrite newer data); 409 for a notification whose
//!   secrets were dropped when it died.
//! - `DELETE /outbox/dead-letters/{id}`: dropped for good (its record is kept as discarded).
//!
//! Every endpoint takes an integration analyst's API key. A notification's content (an e-mail or
//! text may carry an activation token) is never shown.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Analyst;
use crate::deliveries::Delivery;
use crate::deliveries::queue::{self, DeadLetterError};
use crate::store::{Overlay, StoreError};

const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
pub struct ListParams {
    destination: Option<String>,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

type Answer = (StatusCode, Json<Value>);

fn error(status: StatusCode, message: impl ToString) -> Answer {
    (status, Json(json!({ "error": message.to_string() })))
}

pub async fn pending(
    _: Analyst,
    State(state): State<AppState>,
    Path(destination): Path<String>,
    Query(params): Query<ListParams>,
) -> Answer {
    if !state.outbox.destinations().contains(&destination) {
        return error(StatusCode::NOT_FOUND, format!("no destination `{destination}`"));
    }
    let limit = params.limit.min(MAX_LIMIT);
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || queue::pending(store.as_ref(), &destination, limit)).await {
        Ok(Ok(deliveries)) => (StatusCode::OK, Json(json!({ "deliveries": shown(&deliveries) }))),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

pub async fn dead_letters(
    _: Analyst,
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Answer {
    let limit = params.limit.min(MAX_LIMIT);
    let store = state.store.clone();
    let listed = tokio::task::spawn_blocking(move || {
        queue::dead_letters(store.as_ref(), params.destination.as_deref(), limit)
    })
    .await;
    match listed {
        Ok(Ok(deliveries)) => (StatusCode::OK, Json(json!({ "deliveries": shown(&deliveries) }))),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

pub async fn delivery(_: Analyst, State(state): State<AppState>, Path(id): Path<String>) -> Answer {
    match queue::find(state.store.as_ref(), &id) {
        Ok(Some(delivery)) => (StatusCode::OK, Json(json!(delivery.redacted()))),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no delivery `{id}`")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

pub async fn retry(
    Analyst(caller): Analyst,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    match dead_letter_move(&state, id, queue::retry_dead_letter).await {
        Ok(delivery) if delivery.state == crate::deliveries::State::Superseded => {
            tracing::info!(id = %delivery.id, by = %caller.actor(), "retried dead letter superseded");
            (StatusCode::OK, Json(json!(delivery.redacted())))
        }
        Ok(delivery) => {
            state.outbox.wake(&delivery.destination);
            tracing::info!(id = %delivery.id, by = %caller.actor(), "dead letter put back in its queue");
            (StatusCode::OK, Json(json!(delivery.redacted())))
        }
        Err(e) => dead_letter_error(e),
    }
}

pub async fn discard(
    Analyst(caller): Analyst,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer {
    match dead_letter_move(&state, id, queue::discard_dead_letter).await {
        Ok(delivery) => {
            tracing::info!(id = %delivery.id, by = %caller.actor(), "dead letter discarded");
            (StatusCode::OK, Json(json!(delivery.redacted())))
        }
        Err(e) => dead_letter_error(e),
    }
}

/// Runs a dead letter's move through the core, as every write goes.
pub(super) async fn dead_letter_move(
    state: &AppState,
    id: String,
    change: fn(&mut Overlay<'_>, &str, &str) -> Result<Delivery, DeadLetterError>,
) -> Result<Delivery, DeadLetterError> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let moved = state
        .committer
        .write(move |ctx| match change(ctx.tx, &id, &now) {
            Err(DeadLetterError::Store(e)) => Err(e),
            other => Ok(other),
        })
        .await;
    match moved {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(DeadLetterError::Store(StoreError::other(e))),
        None => Err(DeadLetterError::Store(StoreError::other(
            "the engine is stopping",
        ))),
    }
}

/// Deliveries as the API shows them (notifications' content left out).
fn shown(deliveries: &[crate::deliveries::Delivery]) -> Vec<crate::deliveries::Delivery> {
    deliveries
        .iter()
        .map(crate::deliveries::Delivery::redacted)
        .collect()
}

fn dead_letter_error(e: DeadLetterError) -> Answer {
    match e {
        DeadLetterError::NotFound(_) => error(StatusCode::NOT_FOUND, e),
        DeadLetterError::SecretsDropped(_) => error(StatusCode::CONFLICT, e),
        DeadLetterError::Store(_) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
