//! The audit trail (Member Account Managers and Configuration Managers), the member settings
//! (Configuration Managers), and the state of a notification's delivery (the staff roles that
//! send them).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::reply::{body, body_with_reason, command, error, ok, read};
use crate::api::AppState;
use crate::api::auth::{Authed, allow};
use crate::config::RecordSwitches;
use crate::domain::accounts::Settings;
use crate::domain::accounts::audit;
use crate::domain::accounts::roles::Role;
use crate::domain::records::site;

#[derive(Deserialize)]
pub struct AuditQuery {
    /// A member's patient id.
    member: Option<String>,
    /// Any target (`enrollment-request/er-12`, `settings/members`).
    target: Option<String>,
    /// `client:<name>`.
    actor: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/audit?member=&actor=&target=&limit=`: oldest first.
pub async fn audit_trail(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Query(query): Query<AuditQuery>,
) -> Result<Response, Response> {
    allow(&caller, &[Role::MemberAccountManager, Role::ConfigurationManager])?;
    if query.member.is_some() && query.target.is_some() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "give member or target, not both",
        ));
    }
    let q = audit::Query {
        target: query.member.as_deref().map(audit::member_target).or(query.target),
        actor: query.actor,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    let records = read(&state, move |store, _| Ok(audit::list(store, &q)?)).await?;
    Ok(ok(StatusCode::OK, json!({ "records": records })))
}

/// `GET /api/settings/members`.
pub async fn settings(State(state): State<AppState>, Authed(caller): Authed) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let s = read(&state, |store, accounts| accounts.settings(store)).await?;
    Ok(ok(StatusCode::OK, json!(s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    pending_user_expiration_hours: u32,
    max_expiration_reset_hours: u32,
    passphrase_required: bool,
    #[serde(default)]
    reason: String,
}

/// `PUT /api/settings/members`: token lifetimes and the passphrase rule, with a reason.
pub async fn put_settings(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let request: SettingsBody = body(&bytes)?;
    let settings = Settings {
        pending_user_expiration_hours: request.pending_user_expiration_hours,
        max_expiration_reset_hours: request.max_expiration_reset_hours,
        passphrase_required: request.passphrase_required,
    };
    let (s, _) = command(
        &state,
        "member settings",
        &caller,
        "update member settings".into(),
        None,
        move |op, accounts| accounts.save_settings(op, settings, &request.reason),
    )
    .await?;
    Ok(ok(StatusCode::OK, json!(s)))
}

/// `GET /api/settings/records`: the Records tab's site switches in force.
pub async fn record_switches(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let configured = state.records.switches();
    let switches = read(&state, move |store, _| Ok(site::switches(store, &configured)?)).await?;
    Ok(ok(StatusCode::OK, json!(switches)))
}

/// `PUT /api/settings/records`: new site switches (all of them), with a reason; in force at
/// once on every node.
pub async fn put_record_switches(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let (switches, reason): (RecordSwitches, String) = body_with_reason(&bytes)?;
    let configured = state.records.switches();
    let (switches, _) = command(
        &state,
        "record switches",
        &caller,
        "update record switches".into(),
        None,
        move |op, _| site::save(op, &configured, switches, &reason),
    )
    .await?;
    Ok(ok(StatusCode::OK, json!(switches)))
}

/// `GET /api/notifications/{id}`: where a notification's delivery is (never its content, which
/// may hold a token).
pub async fn notification(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow(
        &caller,
        &[
            Role::DirectEnrollmentUser,
            Role::MemberAccountManager,
            Role::RequestAgent,
            Role::ExceptionAgent,
        ],
    )?;
    let destinations: Vec<String> = [
        &state.members.config.email_destination,
        &state.members.config.sms_destination,
    ]
    .into_iter()
    .flatten()
    .map(|d| d.get_ref().clone())
    .collect();
    let wanted = id.clone();
    let found = read(&state, move |store, _| {
        Ok(crate::deliveries::queue::find(store, &wanted)?)
    })
    .await;
    // Only member notifications are shown here (the outbox API is for integration analysts).
    let Some(d) = found?.filter(|d| destinations.contains(&d.destination)) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("no notification `{id}`"),
        ));
    };
    Ok(ok(
        StatusCode::OK,
        json!({
            "id": d.id,
            "destination": d.destination,
            "state": d.state,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "created_at": d.created_at,
            "finished_at": d.finished_at,
            "to": d.headers.iter().find(|(k, _)| k == "To").map(|(_, v)| v),
        }),
    ))
}
