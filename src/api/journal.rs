//! `GET /journal?from=N&limit=M`: the journal, oldest first: every inbound message with its
//! channel, arrival time, status, error and the replies it got. `POST /journal/{seq}/reprocess`:
//! that message through its listener again (`handlers::reprocess`). For integration analysts.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Analyst;
use super::{AppState, StoreRef};
use crate::core::journal::JournalEntry;
use crate::handlers::reprocess::ReprocessError;

const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
pub struct Params {
    #[serde(default)]
    from: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

pub async fn list(
    _: Analyst,
    State(store): State<StoreRef>,
    Query(params): Query<Params>,
) -> (StatusCode, Json<Value>) {
    let limit = params.limit.min(MAX_LIMIT);
    let found = tokio::task::spawn_blocking(move || store.journal(params.from, limit)).await;
    match found {
        Ok(Ok(entries)) => {
            let entries: Vec<Value> = entries
                .iter()
                .map(|(seq, bytes)| match JournalEntry::from_bytes(bytes) {
                    Ok(entry) => json!(entry),
                    Err(e) => json!({ "seq": seq, "unreadable": e.to_string() }),
                })
                .collect();
            (StatusCode::OK, Json(json!({ "entries": entries })))
        }
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        ),
    }
}

/// `POST /journal/{seq}/reprocess`: entry `seq`'s message through its listener again, today's
/// mappings and all. 200 with the new replies (and the new journal entry's sequence); 404 for no
/// such entry; 409 when only the message's head was kept, or no listener serves its channel now.
pub async fn reprocess(
    Analyst(caller): Analyst,
    State(state): State<AppState>,
    Path(seq): Path<u64>,
) -> (StatusCode, Json<Value>) {
    let entry = match entry_at(state.store.clone(), seq).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": format!("no journal entry {seq}"), "code": "not-found" })),
            );
        }
        Err(e) => return internal(e),
    };
    match state.listeners.reprocess(seq, &entry, &caller.actor()).await {
        Ok(replies) => (
            StatusCode::OK,
            Json(json!({ "reprocessed": seq, "replies": replies })),
        ),
        Err(e @ ReprocessError::Stopping) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": e.to_string(), "code": "stopping" })),
        ),
        Err(e) => (
            StatusCode::CONFLICT,
            Json(json!({ "error": e.to_string(), "code": "not-reprocessable" })),
        ),
    }
}

/// Journal entry `seq`, None when the journal has none; the error says what failed to read.
pub(super) async fn entry_at(store: StoreRef, seq: u64) -> Result<Option<JournalEntry>, String> {
    let found = tokio::task::spawn_blocking(move || store.journal(seq, 1))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    match found.into_iter().next() {
        Some((found, bytes)) if found == seq => JournalEntry::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| format!("journal entry {seq} is unreadable: {e}")),
        _ => Ok(None),
    }
}

fn internal(error: String) -> (StatusCode, Json<Value>) {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": error })))
}
