//! Proxy relationships over HTTP: staff (Member Account Manager) create, read, revoke and list
//! them; a signed-in member lists their own and, as a proxy, opens a principal's account only
//! while a relationship grants it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::reply::{blocking, body, command, error, ok, read};
use super::signin::MemberSession;
use super::staff::{ContactBody, chosen_passphrase};
use crate::api::AppState;
use crate::api::auth::{Authed, allow};
use crate::domain::accounts::members;
use crate::domain::accounts::roles::Role;
use crate::domain::proxies::{self, Enrollment, NewRelationship, Party, Registration, Who};
use crate::domain::refusal::Refusal;
use crate::domain::{identity::secrets, identity::sessions};

const MAM: &[Role] = &[Role::MemberAccountManager];

/// One party of a new relationship: a synced patient (`patient_id`) or, for the proxy, a person
/// to register (`register`), with the details of the account to create when they have none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyBody {
    #[serde(default)]
    patient_id: Option<String>,
    #[serde(default)]
    register: Option<Registration>,
    #[serde(default)]
    contact: Option<ContactBody>,
    #[serde(default)]
    proxy_only: Option<bool>,
    #[serde(default)]
    passphrase: Option<String>,
    #[serde(default)]
    passphrase_confirm: Option<String>,
    #[serde(default)]
    generate_passphrase: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    principal: PartyBody,
    proxy: PartyBody,
    relationship: String,
    #[serde(default)]
    expires_on: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    reason: String,
}

/// A party with its passphrase hashed (off the async threads); and the generated passphrase, to
/// show once.
async fn party(side: &str, given: PartyBody) -> Result<(Party, Option<String>), Response> {
    let who = match (given.patient_id, given.register) {
        (Some(id), None) => Who::Patient(id),
        (None, Some(registration)) => Who::Register(registration),
        _ => {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                &format!(
                    "the {side} is either `patient_id` (a synced patient) or `register` (a person to register)"
                ),
            ));
        }
    };
    let passphrase = chosen_passphrase(
        given.passphrase.as_deref(),
        given.passphrase_confirm.as_deref(),
        given.generate_passphrase,
    )?;
    let passphrase_hash = match passphrase.clone() {
        Some(p) => Some(blocking(move || secrets::hash_password(&p)).await?),
        None => None,
    };
    let generated = given.generate_passphrase.then(|| passphrase.clone()).flatten();
    let enroll = Enrollment {
        contact: given.contact.map(ContactBody::contact),
        proxy_only: given.proxy_only,
        passphrase_hash,
        passphrase,
    };
    Ok((
        Party {
            who,
            enroll: Some(enroll),
        },
        generated,
    ))
}

/// `POST /api/proxies`: creates a relationship (finding, enrolling or registering the parties).
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let request: CreateBody = body(&bytes)?;
    let expires_at = match proxies::expiry(
        request.expires_on.as_deref(),
        request.expires_at.as_deref(),
        &sessions::now(),
    ) {
        Ok(at) => at,
        Err(refusal) => return Err(super::reply::refused(&refusal)),
    };
    let (principal, principal_passphrase) = party("principal", request.principal).await?;
    let (proxy, proxy_passphrase) = party("proxy", request.proxy).await?;
    let new = NewRelationship {
        principal,
        proxy,
        relationship: request.relationship,
        expires_at,
        reason: request.reason,
    };
    let journal = format!("create proxy relationship ({})", new.relationship);
    let (created, _) = command(
        &state,
        "proxy create",
        &caller,
        journal,
        None,
        move |op, accounts| proxies::create(op, accounts, new),
    )
    .await?;
    let mut answer = serde_json::to_value(&created).expect("serializes");
    // A generated passphrase is shown to the staff user once, to hand over.
    for (side, passphrase, enrolled) in [
        (
            "principal",
            principal_passphrase,
            created.principal_enrolled.is_some(),
        ),
        ("proxy", proxy_passphrase, created.proxy_enrolled.is_some()),
    ] {
        if let Some(p) = passphrase.filter(|_| enrolled) {
            answer[format!("{side}_enrolled")]["generated_passphrase"] = json!(p);
        }
    }
    Ok(ok(StatusCode::CREATED, answer))
}

/// `GET /api/proxies/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let view = read(&state, move |store, _| {
        let relationship = proxies::require(store, &id)?;
        Ok(relationship.view(store, &sessions::now())?)
    })
    .await?;
    Ok(ok(StatusCode::OK, view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    #[serde(default)]
    reason: String,
}

/// `POST /api/proxies/{id}/revoke`: with a reason; both parties are notified.
pub async fn revoke(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let request: RevokeBody = body(&bytes)?;
    let journal = format!("revoke proxy relationship {id}");
    let (view, _) = command(
        &state,
        "proxy revoke",
        &caller,
        journal,
        None,
        move |op, accounts| proxies::revoke(op, accounts, &id, &request.reason),
    )
    .await?;
    Ok(ok(StatusCode::OK, view))
}

/// `GET /api/members/{id}/proxies`: the member's relationships, both directions, active and not.
pub async fn of_member(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let listing = read(&state, move |store, _| {
        members::require(store, &id)?;
        Ok(proxies::listing(store, &id, &sessions::now())?)
    })
    .await?;
    Ok(ok(StatusCode::OK, listing))
}

/// `GET /api/proxy-relationship-types`: the code list staff choose from.
pub async fn relationship_types(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let p = &state.members.proxies;
    let types: Vec<Value> = p
        .relationship_types
        .iter()
        .map(|t| json!({ "code": t.code.get_ref(), "display": t.display }))
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({ "system": p.relationship_system, "types": types }),
    ))
}

/// `GET /api/me/proxies`: the signed-in member's relationships, both directions.
pub async fn mine(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    let id = me.session.patient_id;
    let listing = read(&state, move |store, _| {
        Ok(proxies::listing(store, &id, &sessions::now())?)
    })
    .await?;
    Ok(ok(StatusCode::OK, listing))
}

/// `GET /api/me/principals/{id}`: a principal's account, to a proxy a relationship grants it to
/// now; 403 otherwise (none, revoked, or past its expiry even before the job marked it).
pub async fn principal(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
) -> Result<Response, Response> {
    let proxy = me.session.patient_id;
    let answer = read(&state, move |store, _| {
        let now = sessions::now();
        let relationship = acting_for(store, &proxy, &principal, &now)?;
        let member = members::require(store, &principal)?;
        Ok(json!({
            "principal": {
                "patient_id": member.patient_id,
                "name": member.name,
                "birth_date": member.birth_date,
                "status": member.status.name(),
            },
            "relationship": relationship.view(store, &now)?,
        }))
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

/// The patient a signed-in member reads or acts for: their own, or a principal's whose
/// relationship with them grants it now (403 `no-proxy-access` otherwise).
pub(super) fn whose(
    store: &dyn crate::store::Reader,
    me: &super::signin::MemberSession,
    principal: Option<&str>,
) -> Result<String, Refusal> {
    match principal {
        None => Ok(me.session.patient_id.clone()),
        Some(principal) => {
            acting_for(
                store,
                &me.session.patient_id,
                principal,
                &crate::domain::identity::sessions::now(),
            )?;
            Ok(principal.to_string())
        }
    }
}

/// The relationship that lets `proxy` act for `principal` at `now`; 403 `no-proxy-access`
/// otherwise, saying why (none, revoked, expired).
pub(super) fn acting_for(
    store: &dyn crate::store::Reader,
    proxy: &str,
    principal: &str,
    now: &str,
) -> Result<proxies::Relationship, Refusal> {
    if let Some(relationship) = proxies::granting(store, proxy, principal, now)? {
        return Ok(relationship);
    }
    let why = proxies::of_member(store, proxy)?
        .into_iter()
        .filter(|r| r.proxy == proxy && r.principal == principal)
        .map(|r| format!("{} is {}", r.id, r.status_at(now)))
        .collect::<Vec<_>>();
    let message = if why.is_empty() {
        format!("you do not act for `{principal}`")
    } else {
        format!(
            "no relationship lets you act for `{principal}` now ({})",
            why.join(", ")
        )
    };
    Err(Refusal::new(
        crate::domain::refusal::Kind::Forbidden,
        "no-proxy-access",
        message,
    ))
}

/// The OpenAPI entries of these routes (chained into `openapi::document`).
pub const OPERATIONS: &[super::openapi::Operation] = &[
    super::openapi::Operation {
        method: "post",
        path: "/api/proxies",
        summary: "Create a proxy relationship: `principal` and `proxy` are each `{patient_id}` (found, or enrolled with `contact` when they have no account); the proxy may instead be `{register: {family, given, birth_date, gender}, contact}` (a person the MPI does not know); `relationship` a configured code; `expires_on` (date) or `expires_at` (date-time); `reason`. Both parties are notified. Refusals: unknown-relationship, expiry-past, expiry-required (422), already-related, member-inactive, not-active-member, registration-not-allowed (409).",
        roles: "member-account-manager",
        query: &[],
        body: &[
            "principal!:object",
            "proxy!:object",
            "relationship!:string",
            "expires_on:string",
            "expires_at:string",
            "reason!:string",
        ],
        success: 201,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/proxies/{id}",
        summary: "A proxy relationship, with its status now (active, expired, revoked) and whether it grants access.",
        roles: "member-account-manager",
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "post",
        path: "/api/proxies/{id}/revoke",
        summary: "Revoke an active proxy relationship with a reason; both parties are notified. Refusal: not-active (409).",
        roles: "member-account-manager",
        query: &[],
        body: &["reason!:string"],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/members/{id}/proxies",
        summary: "A member's proxy relationships, active and inactive: `as_principal` (who acts for them) and `as_proxy` (whom they act for).",
        roles: "member-account-manager",
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/proxy-relationship-types",
        summary: "The configured relationship types (`[proxies]`): code system, codes and displays.",
        roles: "member-account-manager",
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/proxies",
        summary: "The signed-in member's proxy relationships, both directions, active and inactive (bearer: the member's session).",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}",
        summary: "A principal's account for the signed-in proxy, while a relationship grants it; 403 no-proxy-access when none does (revoked, expired, never).",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
];
