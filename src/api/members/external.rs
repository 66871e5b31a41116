//! What external systems call: automated enrollment (scope `enroll`), and the portal acting for
//! a (prospective) member (scope `self-service`): activation, forgotten password and username,
//! setting a new password from a reset link.
//!
//! Tokens, passphrases and passwords arrive in request bodies only (never in a URL, which logs
//! keep) and are hashed or checked off the committer thread.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::reply::{blocking, body, command, error, ok, read};
use crate::api::AppState;
use crate::api::auth::{Authed, allow_scope};
use crate::domain::accounts::enrollment::{self, Method};
use crate::domain::accounts::members::{self, Contact, Preference, Status};
use crate::domain::accounts::notify::{self, Channels};
use crate::domain::accounts::roles::Scope;
use crate::domain::accounts::tokens::{self, Purpose};
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::{identity::secrets, mpi::patients};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomatedBody {
    /// `system|value` (or a value alone) naming the patient.
    identifier: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    mobile: Option<String>,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    preference: Option<Preference>,
    #[serde(default)]
    locales: Option<Vec<String>>,
    #[serde(default)]
    proxy_only: bool,
}

/// `POST /api/automated-enrollments`: contact details default to the patient record's.
pub async fn automated(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::Enroll)?;
    let request: AutomatedBody = body(&bytes)?;
    let identifier = request.identifier.clone();
    let patient = read(&state, move |store, _| {
        let (system, value) = match identifier.split_once('|') {
            Some((s, v)) if !s.is_empty() => (Some(s.to_string()), v.to_string()),
            Some((_, v)) => (None, v.to_string()),
            None => (None, identifier.clone()),
        };
        let found = patients::search_identifier(store, system.as_deref(), &value, 2)?;
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Refusal::not_found(format!(
                "no patient has identifier `{identifier}`"
            ))),
            _ => Err(Refusal::conflict(
                "ambiguous-identifier",
                format!("several patients have `{identifier}`: give its system too"),
            )),
        }
    })
    .await?;
    let from_record = enrollment::contact_from_patient(&patient);
    let contact = Contact {
        email: request.email.or(from_record.email),
        mobile: request.mobile.or(from_record.mobile),
        carrier: request.carrier,
        preference: request.preference.unwrap_or(from_record.preference),
        locales: request.locales.unwrap_or(from_record.locales),
    };
    let settings = state
        .members
        .settings(state.store.as_ref())
        .map_err(|r| super::reply::refused(&r))?;
    let passphrase = settings.passphrase_required.then(secrets::new_passphrase);
    let hashed = match passphrase.clone() {
        Some(p) => Some(blocking(move || secrets::hash_password(&p)).await?),
        None => None,
    };
    let patient_id = patient["id"].as_str().unwrap_or_default().to_string();
    let journal = format!("enroll patient {patient_id} (automated)");
    let id = patient_id.clone();
    let ((_, enrolled), _) = command(
        &state,
        "member enroll",
        &caller,
        journal,
        Some(patient_id),
        move |op, accounts| {
            enrollment::enroll(
                op,
                accounts,
                enrollment::Request {
                    patient_id: id,
                    contact,
                    proxy_only: request.proxy_only,
                    method: Method::Automated,
                    passphrase_hash: hashed,
                    passphrase,
                },
            )
        },
    )
    .await?;
    // The external system is not shown the token: it went to the member. Instructions are for
    // staff at the point of care only.
    Ok(ok(
        StatusCode::CREATED,
        json!({
            "member": enrolled.member,
            "notification": enrolled.notification,
            "sent": enrolled.sent,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    token: String,
    #[serde(default)]
    passphrase: Option<String>,
    username: String,
    password: String,
}

/// `POST /api/activation`: token (+ passphrase) + username + password -> active.
pub async fn activate(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let request: ActivateBody = body(&bytes)?;
    if request.token.len() > 256 {
        return Err(super::reply::refused(&Refusal::conflict(
            "token-unknown",
            "this token is not known",
        )));
    }
    // Checked here first for a clear answer before any slow hashing; checked again in the commit.
    let token = request.token.clone();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let member = read(&state, move |store, accounts| {
        tokens::check(store, accounts, &token, Purpose::Activation, &now)
    })
    .await?;
    if let Err(r) =
        tokens::check_username(&request.username).and_then(|u| tokens::check_password(&request.password, &u))
    {
        return Err(super::reply::refused(&r));
    }
    let required = state
        .members
        .settings(state.store.as_ref())
        .map(|s| s.passphrase_required)
        .unwrap_or(true);
    if let Some(stored) = member.passphrase_hash.clone() {
        let Some(given) = request.passphrase.clone() else {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "passphrase-required",
                "this account needs the one-time passphrase given at enrollment",
            ));
        };
        let ok = blocking(move || secrets::verify_password(&given, &stored)).await;
        match ok {
            Ok(true) => {}
            Ok(false) => {
                return Err(error(
                    StatusCode::CONFLICT,
                    "passphrase-wrong",
                    "the passphrase is not right",
                ));
            }
            Err(r) => return Err(r),
        }
    } else if required {
        return Err(error(
            StatusCode::CONFLICT,
            "passphrase-missing",
            "this site requires a passphrase, and none was set at enrollment: ask for a new token",
        ));
    }
    let password = request.password;
    let hash = blocking(move || secrets::hash_password(&password)).await?;
    let patient = member.patient_id.clone();
    let journal = format!("activate member {patient}");
    let token = request.token;
    let username = request.username;
    let ((member, sent), _) = command(
        &state,
        "member activate",
        &caller,
        journal,
        Some(patient),
        move |op, accounts| tokens::activate(op, accounts, &token, &username, hash),
    )
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "member": { "patient_id": member.patient_id, "status": member.status.name(), "username": member.username }, "notification": sent }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordBody {
    username: String,
}

/// The same answer whether or not the account exists, so nobody learns who is a member.
fn accepted() -> Response {
    ok(
        StatusCode::ACCEPTED,
        json!({ "accepted": true, "message": "if an active account matches, a message is on its way" }),
    )
}

/// `POST /api/password/forgot`: a reset link to the member's email (or phone).
pub async fn forgot_password(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let request: ForgotPasswordBody = body(&bytes)?;
    let key = request.username.trim().to_lowercase();
    let found = read(&state, move |store, _| {
        let Some(id) = store.get(crate::store::Keyspace::UsernameIndex, key.as_bytes())? else {
            return Ok(None);
        };
        Ok(members::load(store, &String::from_utf8_lossy(&id))?.filter(|m| m.status == Status::Active))
    })
    .await?;
    let Some(member) = found else {
        return Ok(accepted());
    };
    let token = secrets::new_token();
    let patient = member.patient_id.clone();
    let journal = format!("forgotten password of member {patient}");
    let done = command(
        &state,
        "password forgot",
        &caller,
        journal,
        Some(patient.clone()),
        move |op, accounts| {
            tokens::start_reset(op, accounts, &patient, &token, "member.password.forgot", None)
        },
    )
    .await;
    match done {
        Ok(_) => Ok(accepted()),
        // A refusal here (the member was just deactivated) is not told either.
        Err(r)
            if r.status() != StatusCode::INTERNAL_SERVER_ERROR
                && r.status() != StatusCode::SERVICE_UNAVAILABLE =>
        {
            Ok(accepted())
        }
        Err(r) => Err(r),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordBody {
    token: String,
    password: String,
}

/// `POST /api/password/reset`: a new password with the reset link's token.
pub async fn reset_password(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let request: ResetPasswordBody = body(&bytes)?;
    let token = request.token.clone();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let member = read(&state, move |store, accounts| {
        tokens::check(store, accounts, &token, Purpose::Reset, &now)
    })
    .await?;
    if let Err(r) = tokens::check_password(&request.password, member.username.as_deref().unwrap_or("")) {
        return Err(super::reply::refused(&r));
    }
    let password = request.password;
    let hash = blocking(move || secrets::hash_password(&password)).await?;
    let journal = format!("new password for member {}", member.patient_id);
    let token = request.token;
    let _ = command(
        &state,
        "password reset",
        &caller,
        journal,
        Some(member.patient_id.clone()),
        move |op, accounts| tokens::finish_reset(op, accounts, &token, hash),
    )
    .await?;
    Ok(ok(StatusCode::OK, json!({ "reset": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotUsernameBody {
    email: String,
    birth_date: String,
}

/// `POST /api/username/forgot`: the username goes to the member's email address on file.
pub async fn forgot_username(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow_scope(&caller, Scope::SelfService)?;
    let request: ForgotUsernameBody = body(&bytes)?;
    let criteria = members::Criteria {
        email: Some(request.email.clone()),
        birth_date: Some(request.birth_date.clone()),
        status: Some("activated".into()),
        ..Default::default()
    };
    let found = read(&state, move |store, _| {
        match members::search(store, &criteria, 10) {
            Ok(found) => Ok(found),
            Err(r) if r.kind == Kind::Invalid => Ok(vec![]),
            Err(r) => Err(r),
        }
    })
    .await?;
    let ids: Vec<String> = found.into_iter().map(|s| s.patient_id).collect();
    let found = read(&state, move |store, _| {
        let mut members = vec![];
        for id in &ids {
            members.extend(members::load(store, id)?);
        }
        Ok(members)
    })
    .await?;
    let matched: Vec<members::Member> = found
        .into_iter()
        .filter(|m| m.status == Status::Active && m.username.is_some())
        .filter(|m| {
            m.contact
                .email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(request.email.trim()))
        })
        .collect();
    for member in matched {
        let journal = format!("forgotten username of member {}", member.patient_id);
        let patient = member.patient_id.clone();
        let done = command(
            &state,
            "username forgot",
            &caller,
            journal,
            Some(patient),
            move |op, accounts| {
                let contact = Contact {
                    preference: Preference::Email,
                    ..member.contact.clone()
                };
                let vars = [
                    ("name", member.greeting()),
                    ("username", member.username.clone().unwrap_or_default()),
                    ("portal_url", accounts.config.portal_url.clone()),
                ];
                let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let sent = notify::send(
                    op,
                    accounts,
                    Some(&member.patient_id),
                    &contact,
                    Channels::Preferred,
                    "forgot-username",
                    &vars,
                );
                crate::domain::accounts::audit::record(
                    op,
                    "member.username.forgot",
                    &crate::domain::accounts::audit::member_target(&member.patient_id),
                    None,
                    json!({ "deliveries": sent.deliveries }),
                );
                Ok(())
            },
        )
        .await;
        if let Err(r) = done
            && r.status() == StatusCode::INTERNAL_SERVER_ERROR
        {
            return Err(r);
        }
    }
    Ok(accepted())
}
