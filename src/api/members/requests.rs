//! Self-requested enrollment over HTTP: the portal submits a request (an external system with
//! the `self-service` scope); enrollment request agents work the request queue and exception
//! agents the exception queue: list, read with history, claim, search for a match, approve,
//! decline, forward (request agents only).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::reply::{blocking, body, command, error, ok, read};
use crate::api::AppState;
use crate::api::auth::{Authed, allow, allow_scope};
use crate::domain::accounts::requests::{self, Agent, Queue, Submitted};
use crate::domain::accounts::roles::{Caller, Role, Scope};
use crate::domain::{identity::secrets, mpi::patient_search};

const AGENTS: &[Role] = &[Role::RequestAgent, Role::ExceptionAgent];

fn agent(caller: &Caller) -> Agent {
    Agent {
        request_queue: caller.has(Role::RequestAgent),
        exception_queue: caller.has(Role::ExceptionAgent),
    }
}

/// `POST /api/enrollment-requests`.
pub async fn submit(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let data: Submitted = body(&bytes)?;
    let (request, _) = command(
        &state,
        "enrollment request",
        &caller,
        "submit enrollment request".into(),
        None,
        move |op, _| requests::submit(op, data),
    )
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({ "id": request.id, "queue": request.queue, "state": request.state }),
    ))
}

#[derive(Deserialize)]
pub struct ListQuery {
    queue: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/enrollment-requests?queue=request|exception`: open tasks of a queue.
pub async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Query(query): Query<ListQuery>,
) -> Result<Response, Response> {
    allow(&caller, AGENTS)?;
    let queue = match query.queue.as_deref() {
        None => {
            if caller.has(Role::RequestAgent) {
                Queue::Request
            } else {
                Queue::Exception
            }
        }
        Some(text) => match Queue::parse(text) {
            Some(q) => q,
            None => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "queue is `request` or `exception`",
                ));
            }
        },
    };
    let needed = match queue {
        Queue::Request => Role::RequestAgent,
        Queue::Exception => Role::ExceptionAgent,
    };
    allow(&caller, &[needed])?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let list = read(&state, move |store, _| Ok(requests::list(store, queue, limit)?)).await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "requests": list.iter().map(requests::view).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/enrollment-requests/{id}`: the request with its full history.
pub async fn get(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow(&caller, AGENTS)?;
    let who = agent(&caller);
    let request = read(&state, move |store, _| requests::visible(store, who, &id)).await?;
    Ok(ok(StatusCode::OK, requests::view(&request)))
}

/// `POST /api/enrollment-requests/{id}/claim`.
pub async fn claim(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow(&caller, AGENTS)?;
    let who = agent(&caller);
    let journal = format!("claim enrollment request {id}");
    let (request, _) = command(&state, "request claim", &caller, journal, None, move |op, _| {
        requests::claim(op, who, &id)
    })
    .await?;
    Ok(ok(StatusCode::OK, requests::view(&request)))
}

#[derive(Deserialize)]
pub struct MatchQuery {
    facility: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/enrollment-requests/{id}/matches?facility=`: patients matching what was entered.
/// Name and birth date must match; an identifier, email or phone given narrows further when
/// the patient has them.
pub async fn matches(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    Query(query): Query<MatchQuery>,
) -> Result<Response, Response> {
    allow(&caller, AGENTS)?;
    let who = agent(&caller);
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let patients = read(&state, move |store, _| {
        let request = requests::visible(store, who, &id)?;
        let data = &request.data;
        let mut found: Vec<Value> = vec![];
        let mut add = |patients: Vec<Value>| {
            for p in patients {
                if !found.iter().any(|f| f["id"] == p["id"]) {
                    found.push(p);
                }
            }
        };
        let base = patient_search::Criteria {
            name: Some(format!("{} {}", data.family, data.given)),
            birth_date: Some(data.birth_date.clone()),
            facility: query.facility.clone(),
            ..Default::default()
        };
        if let Some(identifier) = &data.identifier {
            let by_id = patient_search::Criteria {
                identifier: Some(identifier.clone()),
                ..base.clone()
            };
            add(patient_search::search(store, &by_id, limit)?);
        }
        add(patient_search::search(store, &base, limit)?);
        found
            .iter()
            .map(|p| patient_search::summary(store, p).map_err(Into::into))
            .collect::<Result<Vec<Value>, _>>()
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({ "patients": patients })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    patient_id: String,
}

/// `POST /api/enrollment-requests/{id}/approve`: the patient is enrolled and sent a token.
pub async fn approve(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, AGENTS)?;
    let request: ApproveBody = body(&bytes)?;
    let who = agent(&caller);
    // When the site requires a passphrase, one is generated: hashed here, sent if configured.
    let passphrase = if state
        .members
        .settings(state.store.as_ref())
        .map(|s| s.passphrase_required)
        .unwrap_or(false)
    {
        let plain = secrets::new_passphrase();
        let copy = plain.clone();
        Some((blocking(move || secrets::hash_password(&copy)).await?, plain))
    } else {
        None
    };
    let generated = passphrase.as_ref().map(|(_, p)| p.clone());
    let journal = format!(
        "approve enrollment request {id} for patient {}",
        request.patient_id
    );
    let patient = request.patient_id.clone();
    let ((request, enrolled), _) = command(
        &state,
        "request approve",
        &caller,
        journal,
        Some(patient.clone()),
        move |op, accounts| requests::approve(op, accounts, who, &id, &patient, passphrase),
    )
    .await?;
    let mut answer = json!({ "request": requests::view(&request), "enrollment": enrolled });
    if let Some(p) = generated {
        answer["generated_passphrase"] = json!(p);
    }
    Ok(ok(StatusCode::OK, answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclineBody {
    #[serde(default)]
    message: Option<String>,
    /// Also send the message to the requester.
    #[serde(default)]
    send_message: bool,
}

/// `POST /api/enrollment-requests/{id}/decline`.
pub async fn decline(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, AGENTS)?;
    let request: DeclineBody = body(&bytes)?;
    let who = agent(&caller);
    let journal = format!("decline enrollment request {id}");
    let ((request, sent), _) = command(
        &state,
        "request decline",
        &caller,
        journal,
        None,
        move |op, accounts| {
            requests::decline(
                op,
                accounts,
                who,
                &id,
                request.message.as_deref(),
                request.send_message,
            )
        },
    )
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "request": requests::view(&request), "notification": sent }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardBody {
    #[serde(default)]
    message: String,
}

/// `POST /api/enrollment-requests/{id}/forward`: to the exception queue.
pub async fn forward(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, &[Role::RequestAgent])?;
    let request: ForwardBody = body(&bytes)?;
    let who = agent(&caller);
    let journal = format!("forward enrollment request {id}");
    let (request, _) = command(&state, "request forward", &caller, journal, None, move |op, _| {
        requests::forward(op, who, &id, &request.message)
    })
    .await?;
    Ok(ok(StatusCode::OK, requests::view(&request)))
}
