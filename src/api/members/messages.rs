//! The member's messages over HTTP: the boxes (Inbox, Sent, Archived), a message opened (and so
//! marked read), marked, its attachments downloaded; new messages and replies, as the site's
//! switches allow; the same for a proxy whose relationship grants it now; and the switches
//! for a Configuration Manager.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::{Operation, SIGNED_IN};
use super::proxies::whose;
use super::reply::{body, body_with_reason, command, error, ok, read, settled};
use super::signin::MemberSession;
use crate::api::AppState;
use crate::api::auth::{Authed, allow};
use crate::config::MessageSwitches;
use crate::core::Finished;
use crate::domain::accounts::roles::Role;
use crate::domain::messages::sending::{self, Draft, Writer};
use crate::domain::messages::{self, MessageBox, switches};
use crate::domain::refusal::{Kind, Refusal};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(rename = "box")]
    which: Option<String>,
}

/// `GET /api/me/messages[?box=inbox|sent|archived]`.
pub async fn list(
    State(state): State<AppState>,
    me: MemberSession,
    Query(params): Query<ListParams>,
) -> Result<Response, Response> {
    list_of(&state, me, None, params).await
}

/// `GET /api/me/principals/{id}/messages[?box=]`.
pub async fn principal_list(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Response, Response> {
    list_of(&state, me, Some(principal), params).await
}

async fn list_of(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    params: ListParams,
) -> Result<Response, Response> {
    let which = match params.which.as_deref() {
        None => MessageBox::Inbox,
        Some(name) => MessageBox::parse(name).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "bad-box",
                &format!("`{name}` is not a box (inbox, sent, archived)"),
            )
        })?,
    };
    let answer = read(state, move |store, _| {
        let patient = whose(store, &me, principal.as_deref())?;
        let listed = messages::of_patient(store, &patient, &me.session.patient_id, which)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))?;
        Ok(json!({ "patient_id": patient, "messages": listed }))
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

/// `GET /api/me/messages/{id}`: the message, marked read.
pub async fn open(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    open_of(&state, me, None, id).await
}

/// `GET /api/me/principals/{id}/messages/{message}`.
pub async fn principal_open(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
) -> Result<Response, Response> {
    open_of(&state, me, Some(principal), id).await
}

async fn open_of(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
) -> Result<Response, Response> {
    let journal = format!("message {id} opened");
    let message = change(state, me, principal, journal, move |tx, patient, viewer, now| {
        messages::open(tx, patient, viewer, &id, now)
    })
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
    mark_of(&state, me, None, id, &bytes).await
}

/// `PUT /api/me/principals/{id}/messages/{message}`.
pub async fn principal_mark(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, Response> {
    mark_of(&state, me, Some(principal), id, &bytes).await
}

async fn mark_of(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
    bytes: &Bytes,
) -> Result<Response, Response> {
    let request: MarkBody = body(bytes)?;
    let journal = format!("message {id} marked");
    let message = change(state, me, principal, journal, move |tx, patient, viewer, now| {
        messages::mark(tx, patient, viewer, &id, request.read, request.archived, now)
    })
    .await?;
    Ok(ok(StatusCode::OK, message))
}

/// Runs a change of what the member did with a message, on the committer: `action` gets the
/// patient whose message it is and the member looking.
async fn change(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    journal: String,
    action: impl FnOnce(&mut crate::store::Overlay<'_>, &str, &str, &str) -> Result<Value, Refusal>
    + Send
    + 'static,
) -> Result<Value, Response> {
    let viewer = me.session.patient_id.clone();
    let actor = format!("member:{viewer}");
    let outcome = state
        .committer
        .run("message state", actor, move |ctx| {
            let done = whose(ctx.tx, &me, principal.as_deref())
                .and_then(|patient| action(ctx.tx, &patient, &viewer, ctx.now));
            match done {
                Ok(message) => Finished::applied(journal, vec![], Ok(message)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    settled(outcome)
}

/// `POST /api/me/messages`: a new message.
pub async fn write(
    State(state): State<AppState>,
    me: MemberSession,
    bytes: Bytes,
) -> Result<Response, Response> {
    send(&state, me, None, None, &bytes).await
}

/// `POST /api/me/principals/{id}/messages`: a new message for a principal.
pub async fn principal_write(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    send(&state, me, Some(principal), None, &bytes).await
}

/// `POST /api/me/messages/{id}/reply`.
pub async fn reply(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    send(&state, me, None, Some(id), &bytes).await
}

/// `POST /api/me/principals/{id}/messages/{message}/reply`.
pub async fn principal_reply(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, Response> {
    send(&state, me, Some(principal), Some(id), &bytes).await
}

/// Writes a new message, or a reply to `answering`, on the committer: kept, and queued to its
/// destinations in the same commit.
async fn send(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    answering: Option<String>,
    bytes: &Bytes,
) -> Result<Response, Response> {
    let draft: Draft = body(bytes)?;
    let configured = state.messages.switches();
    let destinations = state.messages.destinations.clone();
    let member = me.session.patient_id.clone();
    let actor = format!("member:{member}");
    let journal = match &answering {
        Some(id) => format!("reply to message {id} written by {actor}"),
        None => format!("message written by {actor}"),
    };
    let outcome = state
        .committer
        .run("message", actor, move |ctx| {
            let done = switches::switches(ctx.tx, &configured)
                .map_err(Refusal::from)
                .and_then(|switches| {
                    let patient = whose(ctx.tx, &me, principal.as_deref())?;
                    let writer = Writer {
                        member_id: &member,
                        patient_id: &patient,
                    };
                    let sent = match &answering {
                        Some(id) => sending::reply(ctx, &writer, id, draft, &switches, &destinations),
                        None => sending::write_new(ctx, &writer, draft, &switches, &destinations),
                    }?;
                    Ok((patient, sent))
                });
            match done {
                Ok((patient, done)) => Finished::applied(journal, vec![patient], Ok(done)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    let (message, pushed) = settled(outcome)?;
    Ok(ok(
        StatusCode::CREATED,
        json!({ "message": message, "pushed": pushed }),
    ))
}

/// `GET /api/me/messages/{id}/attachments/{n}`.
pub async fn attachment(
    State(state): State<AppState>,
    me: MemberSession,
    Path((id, n)): Path<(String, usize)>,
) -> Result<Response, Response> {
    attachment_of(&state, me, None, id, n).await
}

/// `GET /api/me/principals/{id}/messages/{message}/attachments/{n}`.
pub async fn principal_attachment(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id, n)): Path<(String, String, usize)>,
) -> Result<Response, Response> {
    attachment_of(&state, me, Some(principal), id, n).await
}

async fn attachment_of(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
    n: usize,
) -> Result<Response, Response> {
    let (content_type, bytes) = read(state, move |store, _| {
        let patient = whose(store, &me, principal.as_deref())?;
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

/// `GET /api/settings/messages`.
pub async fn get_switches(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let configured = state.messages.switches();
    let switches = read(&state, move |store, _| {
        Ok(switches::switches(store, &configured)?)
    })
    .await?;
    Ok(ok(StatusCode::OK, json!(switches)))
}

/// `PUT /api/settings/messages`: the five switches and a reason.
pub async fn put_switches(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let (new, reason): (MessageSwitches, String) = body_with_reason(&bytes)?;
    let configured = state.messages.switches();
    let destinations = state.messages.destinations.clone();
    let (saved, _) = command(
        &state,
        "message switches",
        &caller,
        "update message switches".into(),
        None,
        move |op, _| switches::save_switches(op, &configured, &destinations, new, &reason),
    )
    .await?;
    Ok(ok(StatusCode::OK, json!(saved)))
}

const DRAFT: &[&str] = &[
    "category:string",
    "to:string",
    "subject:string",
    "text!:string",
    "attachments:array",
];

const REPLY: &[&str] = &["subject:string", "text!:string", "attachments:array"];

/// The OpenAPI entries of these routes.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/me/messages",
        summary: "The signed-in member's messages, newest first, in `box` inbox (received, the default), sent or archived: id, thread (the conversation's first message), in_reply_to, category, subject, from, to, sent, text, attachments (n, title, content type), read, archived. 400 bad-box.",
        roles: SIGNED_IN,
        query: &["box"],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/me/messages",
        summary: "The member writes a message in a category (general, medical, billing), optionally to a provider or group of the directory (`to`: Practitioner/id, PractitionerRole/id or Organization/id), with a subject, text and attachments (title, content_type, base64 data). Kept (Sent) and sent through messages.destinations of its category. 403 general-questions-off, medical-questions-off or billing-questions-off; 422 bad-category, unknown-provider or a bad attachment.",
        roles: SIGNED_IN,
        query: &[],
        body: DRAFT,
        success: 201,
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
        summary: "Mark a message read or unread (`read`) and archived or back in its box (`archived`), for this member.",
        roles: SIGNED_IN,
        query: &[],
        body: &["read:boolean", "archived:boolean"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/me/messages/{id}/reply",
        summary: "The member replies to a message: to whoever wrote it (or to whom the member wrote), in its conversation's category, sent where that category goes (else messages.destinations.replies). 403 replies-off; 404 not theirs; 409 no-destination.",
        roles: SIGNED_IN,
        query: &[],
        body: REPLY,
        success: 201,
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
    Operation {
        method: "get",
        path: "/api/me/principals/{id}/messages",
        summary: "A principal's messages (as /api/me/messages, read and archived as this proxy keeps them) for a proxy whose relationship grants it now; 403 no-proxy-access otherwise.",
        roles: SIGNED_IN,
        query: &["box"],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/me/principals/{id}/messages",
        summary: "A granted proxy writes a message about a principal (as POST /api/me/messages); the proxy is its sender.",
        roles: SIGNED_IN,
        query: &[],
        body: DRAFT,
        success: 201,
    },
    Operation {
        method: "get",
        path: "/api/me/principals/{id}/messages/{message}",
        summary: "One of a principal's messages, marked read for this proxy.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/me/principals/{id}/messages/{message}",
        summary: "Mark one of a principal's messages read or archived, for this proxy.",
        roles: SIGNED_IN,
        query: &[],
        body: &["read:boolean", "archived:boolean"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/me/principals/{id}/messages/{message}/reply",
        summary: "A granted proxy replies to one of a principal's messages (as /api/me/messages/{id}/reply).",
        roles: SIGNED_IN,
        query: &[],
        body: REPLY,
        success: 201,
    },
    Operation {
        method: "get",
        path: "/api/me/principals/{id}/messages/{message}/attachments/{n}",
        summary: "Attachment n of one of a principal's messages.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/settings/messages",
        summary: "The messaging switches in force: patient_general, patient_medical, patient_billing, patient_replies, provider_initiated.",
        roles: "configuration-manager",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/settings/messages",
        summary: "Change the messaging switches, in force at once; reason required; audited as settings.update on settings/messages. 422 no-destination when a switch that is on has no destination in messages.destinations.",
        roles: "configuration-manager",
        query: &[],
        body: &[
            "patient_general:boolean",
            "patient_medical:boolean",
            "patient_billing:boolean",
            "patient_replies:boolean",
            "provider_initiated:boolean",
            "reason!:string",
        ],
        success: 200,
    },
];
