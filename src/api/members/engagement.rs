//! The engagement APIs (issue #7) over HTTP: Update Profile (the portal for a member, scope
//! `self-service`), Invitation to Enroll (scope `invite`) and Patient Tasks (scope `tasks` for
//! the systems that create and follow them; `self-service` for the portal that shows them to
//! the member, moves them along and posts the completed questionnaires). Each write is one
//! committer command: journaled, committed with its audit record and its deliveries.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::Operation;
use super::reply::{body, command, error, ok, read, refused, settled};
use super::signin::portal_session;
use crate::api::AppState;
use crate::api::auth::{Authed, allow_scope};
use crate::core::Finished;
use crate::domain::accounts::members::{self, Criteria};
use crate::domain::accounts::roles::{Caller, Scope};
use crate::domain::engagement::{invitations, profile, tasks};
use crate::domain::mpi::patients;
use crate::domain::refusal::Refusal;

/// 403 unless the caller is an external system with one of `scopes`.
fn allow_scopes(caller: &Caller, scopes: &[Scope]) -> Result<(), Response> {
    if scopes.iter().any(|s| caller.has_scope(*s)) {
        return Ok(());
    }
    let names: Vec<String> = scopes.iter().map(|s| format!("`{}`", s.name())).collect();
    Err(error(
        StatusCode::FORBIDDEN,
        "forbidden",
        &format!(
            "this action needs an external-system client with the scope {}",
            names.join(" or ")
        ),
    ))
}

/// `PUT /api/members/{id}/profile`: the portal's key (scope `self-service`) as the bearer and
/// the member's session as `X-Member-Session`; the session's member is the one in the path or
/// a proxy granted access to them.
pub async fn update_profile(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let me = portal_session(&state, &headers).await?;
    let update: profile::ProfileUpdate = body(&bytes)?;
    let acting = profile::Acting {
        token: me.token,
        session: me.session,
    };
    let accounts = state.members.clone();
    let push_to: Vec<String> = state
        .engagement
        .profile_destinations
        .iter()
        .map(|d| d.get_ref().clone())
        .collect();
    let actor = caller.actor();
    let journal = format!("profile update of member {id}");
    let patient = id.clone();
    let outcome = state
        .committer
        .run(
            "member profile update",
            actor.clone(),
            move |ctx| match profile::update(ctx, &accounts, &push_to, &actor, &acting, &patient, &update) {
                Ok(done) => Finished::applied(journal, vec![patient], Ok(done)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            },
        )
        .await;
    let done = settled(outcome)?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "member": done.member,
            "patient": done.patient,
            "changed": done.changed,
            "pushed": done.pushed,
            "notification": done.notification,
            "old_contact_notification": done.old_contact_notification,
        }),
    ))
}

/// `POST /api/invitations`.
pub async fn invite(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::Invite)?;
    let request: invitations::Request = body(&bytes)?;
    let contact = match request.check(&state.members) {
        Ok(c) => c,
        Err(r) => return Err(refused(&r)),
    };
    // Is the person a member already? By email, mobile or identifier, over the member index.
    let lookup = (request.clone(), contact.clone());
    let member = read(&state, move |store, _| {
        let (request, contact) = lookup;
        let mut tries = vec![];
        if let Some(email) = &contact.email {
            tries.push(Criteria {
                email: Some(email.clone()),
                ..Criteria::default()
            });
        }
        if let Some(mobile) = &contact.mobile {
            tries.push(Criteria {
                phone: Some(mobile.clone()),
                ..Criteria::default()
            });
        }
        if let Some(identifier) = &request.identifier {
            let ids =
                patients::ids_by_identifier(store, identifier.system.as_deref(), identifier.value.trim(), 5)?;
            for id in ids {
                if members::load(store, &id)?.is_some() {
                    return Ok(Some(id));
                }
            }
        }
        for criteria in tries {
            if let Some(found) = members::search(store, &criteria, 1)?.first() {
                return Ok(Some(found.patient_id.clone()));
            }
        }
        Ok(None)
    })
    .await?;
    let window = i64::from(*state.engagement.invitation_window_hours.get_ref())
        * i64::from(state.members.config.hour_seconds);
    let journal = format!("invitation to enroll `{}`", request.content_key.trim());
    let (invitation, _) = command(
        &state,
        "invitation",
        &caller,
        journal,
        None,
        move |op, accounts| invitations::invite(op, accounts, window, &request, &contact, member),
    )
    .await?;
    let status = match invitation.status {
        invitations::Status::Queued => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let message = match invitation.status {
        invitations::Status::AlreadyMember => "the person is already a member: no invitation was sent",
        invitations::Status::Suppressed => {
            "the same invitation went to this address within the window: this one was not sent"
        }
        invitations::Status::Failed => "the invitation could not be queued (see failures)",
        _ => "the invitation is queued",
    };
    let store = state.store.clone();
    let mut view = invitations::view(store.as_ref(), &invitation).map_err(|r| refused(&r))?;
    view["message"] = json!(message);
    Ok(ok(status, view))
}

/// `GET /api/invitations/{id}`.
pub async fn invitation(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::Invite)?;
    let view = read(&state, move |store, _| {
        let invitation = invitations::load(store, &id)?
            .ok_or_else(|| Refusal::not_found(format!("no invitation `{id}`")))?;
        invitations::view(store, &invitation)
    })
    .await?;
    Ok(ok(StatusCode::OK, view))
}

/// `POST /api/tasks`.
pub async fn create_task(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::Tasks)?;
    let task: tasks::NewTask = body(&bytes)?;
    if let Err(r) = tasks::check(&task) {
        return Err(refused(&r));
    }
    let (given_id, identifier) = (task.patient_id.clone(), task.patient_identifier.clone());
    let patient = read(&state, move |store, _| {
        if let Some(id) = given_id {
            return Ok(id);
        }
        let identifier = identifier.expect("checked: one of the two");
        let ids =
            patients::ids_by_identifier(store, identifier.system.as_deref(), identifier.value.trim(), 2)?;
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Refusal::not_found(format!(
                "no patient has identifier `{}`",
                identifier.value
            ))),
            _ => Err(Refusal::conflict(
                "ambiguous-identifier",
                format!(
                    "several patients have `{}`: give its system too",
                    identifier.value
                ),
            )),
        }
    })
    .await?;
    let journal = format!("task for patient {patient}");
    let pid = patient.clone();
    let (created, _) = command(
        &state,
        "task create",
        &caller,
        journal,
        Some(patient),
        move |op, accounts| tasks::create(op, accounts, &pid, &task),
    )
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({
            "task": created.task,
            "items": created.items,
            "notified": created.notification.as_ref().is_some_and(|n| n.ok()),
            "notification": created.notification,
        }),
    ))
}

/// `GET /api/tasks/{id}`: the Task and the resources its items name.
pub async fn task(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow_scopes(&caller, &[Scope::Tasks, Scope::SelfService])?;
    let view = read(&state, move |store, _| {
        let task = tasks::require(store, &id)?;
        let mut items = vec![];
        let inputs = task["input"].as_array().cloned().unwrap_or_default();
        let outputs = task["output"].as_array().cloned().unwrap_or_default();
        for entry in inputs.iter().chain(outputs.iter()) {
            let Some((kind, rid)) = entry["valueReference"]["reference"]
                .as_str()
                .and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            if let Some(crate::domain::resources::Current::Live(resource)) =
                crate::domain::resources::read(store, kind, rid)?
            {
                items.push(resource);
            }
        }
        Ok(json!({ "task": task, "status": task["status"], "items": items }))
    })
    .await?;
    Ok(ok(StatusCode::OK, view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The member a self-service caller acts for on a task: the session sent as
/// `X-Member-Session` (issue #12). A system with the `tasks` scope acts for nobody: none.
async fn task_member(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Option<String>, Response> {
    if caller.has_scope(Scope::Tasks) {
        return Ok(None);
    }
    Ok(Some(portal_session(state, headers).await?.session.patient_id))
}

/// `POST /api/tasks/{id}/status`.
pub async fn task_status(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scopes(&caller, &[Scope::Tasks, Scope::SelfService])?;
    let me = task_member(&state, &caller, &headers).await?;
    let request: StatusBody = body(&bytes)?;
    let journal = format!("task {id} status {}", request.status);
    let (task, _) = command(&state, "task status", &caller, journal, None, move |op, _| {
        if let Some(me) = &me {
            tasks::member_may_act(op.tx, &id, me, &op.now)?;
        }
        tasks::set_status(op, &id, request.status.trim(), request.reason.as_deref())
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "task": task, "status": task["status"] }),
    ))
}

/// `POST /api/tasks/{id}/questionnaire-response`: a FHIR QuestionnaireResponse.
pub async fn questionnaire_response(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let me = portal_session(&state, &headers).await?.session.patient_id;
    let response: Value = body(&bytes)?;
    let destination = state
        .engagement
        .questionnaire_destination
        .as_ref()
        .map(|d| d.get_ref().clone());
    let journal = format!("questionnaire response to task {id}");
    let (answered, _) = command(
        &state,
        "task questionnaire response",
        &caller,
        journal,
        None,
        move |op, _| {
            tasks::member_may_act(op.tx, &id, &me, &op.now)?;
            tasks::answer(op, &id, response, destination.as_deref())
        },
    )
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({
            "questionnaire_response": answered.response,
            "task": answered.task,
            "pushed": answered.pushed,
        }),
    ))
}

/// The OpenAPI operations of these endpoints.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "put",
        path: "/api/members/{id}/profile",
        summary: "Update Profile: the member changes address, email, mobile, preferred language or communication preference; stored at once, pushed to the UCR (and TrakCare), PIX consumers notified, the member told. The portal's key as the bearer and the member's session in the X-Member-Session header: the session's member is the one in the path or a proxy whose relationship grants access now (proxy-not-permitted, 403); a new email or mobile needs a session younger than credentials.reauth_seconds (reauthentication-required, 403), is told to the old address too (old_contact_notification) and ends the member's other sessions.",
        roles: super::openapi::PORTAL_SESSION,
        query: &[],
        body: &[
            "address:object",
            "email:string",
            "mobile:string",
            "carrier:string",
            "preference:string",
            "preferred_language:string",
            "proxy_id:string",
            "reason:string",
        ],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/invitations",
        summary: "Invitation to Enroll: sent by email or text in the person's language (template invitation-<content_key>); nothing is sent to a member (`already-member`) or again to the same address within the window (`suppressed`).",
        roles: "external-system with scope invite",
        query: &[],
        body: &[
            "name!:string",
            "email:string",
            "mobile:string",
            "preferred_language:string",
            "content_key!:string",
            "preference:string",
            "identifier:object",
        ],
        success: 201,
    },
    Operation {
        method: "get",
        path: "/api/invitations/{id}",
        summary: "An invitation and its status: queued, sent, failed, suppressed or already-member.",
        roles: "external-system with scope invite",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/tasks",
        summary: "Create a patient task with items (documents: a link or a base64 file; questionnaires: a FHIR Questionnaire or its URL), stored as FHIR Task, DocumentReference and Questionnaire; the member is notified.",
        roles: "external-system with scope tasks",
        query: &[],
        body: &[
            "patient_id:string",
            "patient_identifier:object",
            "title!:string",
            "description:string",
            "identifier:object",
            "due:string",
            "items!:array",
        ],
        success: 201,
    },
    Operation {
        method: "get",
        path: "/api/tasks/{id}",
        summary: "A task, its status, and the resources its items and answers name.",
        roles: "external-system with scope tasks or self-service",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/tasks/{id}/status",
        summary: "Move a task along: requested -> ready | in-progress | cancelled; ready -> in-progress | cancelled; in-progress -> on-hold | completed | cancelled; on-hold -> in-progress | cancelled. Through the portal (scope self-service) the member's session goes in X-Member-Session and the task must be theirs or a principal's who granted them access (proxy-not-permitted, 403); a system with scope tasks needs no session.",
        roles: "external-system with scope tasks; or scope self-service with a member's session (X-Member-Session)",
        query: &[],
        body: &["status!:string", "reason:string"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/tasks/{id}/questionnaire-response",
        summary: "A completed questionnaire (a FHIR QuestionnaireResponse): stored, named in the Task's output, pushed to TrakCare. The task must be the session's member's or a principal's who granted them access (proxy-not-permitted, 403).",
        roles: super::openapi::PORTAL_SESSION,
        query: &[],
        body: &[
            "resourceType!:string",
            "questionnaire:string",
            "status:string",
            "item:array",
        ],
        success: 201,
    },
];
