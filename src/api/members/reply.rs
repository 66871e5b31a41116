//! Answers of the member-account API: JSON bodies, errors as `{"error", "code"}` with the status
//! each refusal kind stands for, request bodies parsed with a clear message, and running a
//! domain action as a committer command.

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::core::Finished;
use crate::domain::accounts::Accounts;
use crate::domain::accounts::roles::Caller;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};

pub fn ok(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": message, "code": code }))).into_response()
}

pub fn refused(refusal: &Refusal) -> Response {
    let status = match refusal.kind {
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::Store => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, refusal.code, &refusal.message)
}

/// A JSON request body, or a 400 saying what is wrong with it.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        // serde's message names the field, never echoes a value.
        error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            &format!("request body: {e}"),
        )
    })
}

/// A JSON body of settings with a `reason` beside them: the settings read strictly (an unknown
/// field is a 400, which serde cannot say through a flattened struct, hence the reason is taken
/// off first) and the reason (empty when absent).
pub fn body_with_reason<T: DeserializeOwned>(bytes: &Bytes) -> Result<(T, String), Response> {
    let mut request: serde_json::Map<String, serde_json::Value> = body(bytes)?;
    let reason = match request.remove("reason") {
        Some(serde_json::Value::String(reason)) => reason,
        _ => String::new(),
    };
    let settings = serde_json::from_value(serde_json::Value::Object(request)).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            &format!("request body: {e}"),
        )
    })?;
    Ok((settings, reason))
}

/// Runs `action` as a committer command: its writes, audit records and notifications commit
/// together, and the answer comes once they are durable. Returns the action's value and the
/// deliveries it queued.
pub async fn command<T: Send + 'static>(
    state: &AppState,
    kind: &'static str,
    caller: &Caller,
    journal: String,
    patient: Option<String>,
    action: impl FnOnce(&mut Op<'_, '_>, &Accounts) -> Result<T, Refusal> + Send + 'static,
) -> Result<(T, Vec<String>), Response> {
    let accounts = state.members.clone();
    let actor = caller.actor();
    let peer = actor.clone();
    let outcome = state
        .committer
        .run(kind, peer, move |ctx| {
            let mut op = Op::from_ctx(ctx, &actor);
            match action(&mut op, &accounts) {
                Ok(value) => {
                    let deliveries = op.deliveries().to_vec();
                    Finished::applied(journal, patient.into_iter().collect(), Ok((value, deliveries)))
                }
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    settled(outcome)
}

/// What a member-account command run on the committer came to, as the API answers it: its
/// value, or 503 while the engine stops, 500 when the commit failed, the refusal's status.
pub fn settled<T, E: std::fmt::Display>(
    outcome: Option<Result<Result<T, Refusal>, E>>,
) -> Result<T, Response> {
    match outcome {
        None => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "the engine is shutting down",
        )),
        Some(Err(reason)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "commit-failed",
            &reason.to_string(),
        )),
        Some(Ok(Err(refusal))) => Err(refused(&refusal)),
        Some(Ok(Ok(done))) => Ok(done),
    }
}

/// Runs slow work (argon2) off the async threads.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &e.to_string()))
}

/// Reads the store off the async threads; refusals and store errors become answers.
pub async fn read<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&dyn crate::store::Store, &Accounts) -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Response> {
    let store = state.store.clone();
    let accounts = state.members.clone();
    blocking(move || work(store.as_ref(), &accounts))
        .await?
        .map_err(|r| refused(&r))
}
