//! `GET /health`: is the engine up, can it read its store, and do its writes succeed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::StoreRef;
use crate::store::Keyspace;

pub async fn health(State(store): State<StoreRef>) -> (StatusCode, Json<Value>) {
    if let Some(failure) = store.write_failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "fail", "store": "failing", "error": failure })),
        );
    }
    match store.get(Keyspace::Meta, b"health") {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({ "status": "pass", "journal_last_seq": store.journal_last_seq() })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "fail", "error": e.to_string() })),
        ),
    }
}
