//! The member's messages over HTTP, first part: the inbox and archive of the messages providers
//! send, each opened (and so marked read), marked read or unread and archived, and its
//! attachments downloaded.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::{Operation, SIGNED_IN};
use super::reply::{body, error, ok, read, settled};
use super::signin::MemberSession;
use crate::api::AppState;
use crate::core::Finished;
use crate::domain::messages::{self, MessageBox};
use crate::domain::refusal::{Kind, Refusal};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(rename = "box")]
    which: Option<String>,
}

/// `GET /api/me/messages[?box=inbox|archived]`.
pub async fn list(
    State(state): State<AppState>,
    me: MemberSession,
    Query(params): Query<ListParams>,
) -> Result<Response, Response> {
    let which = match params.which.as_deref() {
        None | Some("inbox") => MessageBox::Inbox,
        Some("archived") => MessageBox::Archived,
        Some(other) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad-box",
                &format!("`{other}` is not a box (inbox, archived)"),
            ));
        }
    };
    let patient = me.session.patient_id.clone();
    let listed = read(&state, move |store, _| {
        messages::of_patient(store, &patient, which)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({ "messages": listed })))
}

/// `GET /api/me/messages/{id}`: the message, marked read.
pub async fn open(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let patient = me.session.patient_id.clone();
    let message = change(
        &state,
        patient,
        format!("message {id} opened"),
        move |tx, patient, now| messages::open(tx, patient, &id, now),
    )
    .await?;
    Ok(ok(StatusCode::OK, message))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkBody {
    read: Option<bool>,
    archived: Option<bool>,
}

/// `PUT /api/me/messages/{id}` `{"read", "archived"}`.
pub async fn mark(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    let request: MarkBody = body(&bytes)?;
    let patient = me.session.patient_id.clone();
    let message = change(
        &state,
        patient,
        format!("message {id} marked"),
        move |tx, patient, now| messages::mark(tx, patient, &id, request.read, request.archived, now),
    )
    .await?;
    Ok(ok(StatusCode::OK, message))
}

/// Runs a change of the member's own message state on the committer.
async fn change(
    state: &AppState,
    patient: String,
    journal: String,
    action: impl FnOnce(&mut crate::store::Overlay<'_>, &str, &str) -> Result<Value, Refusal> + Send + 'static,
) -> Result<Value, Response> {
    let actor = format!("member:{patient}");
    let outcome = state
        .committer
        .run("message state", actor, move |ctx| {
            match action(ctx.tx, &patient, ctx.now) {
                Ok(message) => Finished::applied(journal, vec![], Ok(message)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    settled(outcome)
}

/// `GET /api/me/messages/{id}/attachments/{n}`.
pub async fn attachment(
    State(state): State<AppState>,
    me: MemberSession,
    Path((id, n)): Path<(String, usize)>,
) -> Result<Response, Response> {
    let patient = me.session.patient_id.clone();
    let (content_type, bytes) = read(&state, move |store, _| {
        messages::attachment(store, &patient, &id, n)
    })
    .await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, "attachment")
        .body(bytes.into())
        .expect("a valid response"))
}

/// The OpenAPI entries of these routes.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/me/messages",
        summary: "The signed-in member's messages from providers (FHIR Communications naming them as a recipient), newest first, in `box` inbox (default) or archived: id, thread, category, subject, from, sent, text, attachments (n, title, content type), read, archived. 400 bad-box.",
        roles: SIGNED_IN,
        query: &["box"],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/me/messages/{id}",
        summary: "One message, marked read (for this member). 404 not theirs.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/me/messages/{id}",
        summary: "Mark a message read or unread (`read`) and archived or back in the inbox (`archived`), for this member.",
        roles: SIGNED_IN,
        query: &[],
        body: &["read:boolean", "archived:boolean"],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/me/messages/{id}/attachments/{n}",
        summary: "Attachment n (from 0) of a message: its bytes with its content type. 404 no-attachment.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
];
