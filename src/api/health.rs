//! `GET /health`: is the engine up and can it read its store.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use crate::store::Keyspace;

pub async fn health(State(store): State<AppState>) -> (StatusCode, Json<Value>) {
    match store.last(Keyspace::Journal) {
        Ok(last) => {
            let journal = last
                .and_then(|(key, _)| key.try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            (
                StatusCode::OK,
                Json(json!({ "status": "pass", "journal_last_seq": journal })),
            )
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "fail", "error": e.to_string() })),
        ),
    }
}
