//! `GET /journal?from=N&limit=M`: the journal, oldest first: every inbound message with its
//! channel, arrival time, status, error and the replies it got. For integration analysts.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::StoreRef;
use super::auth::Analyst;
use crate::core::journal::JournalEntry;

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
