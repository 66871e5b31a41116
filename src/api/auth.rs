//! Who is calling, for every endpoint that is not public (the member-accounts API, the journal,
//! the outbox): the API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`) is looked
//! up among the configured clients by its SHA-256. No key, or an unknown one: 401. A known
//! caller whose roles do not cover the action: 403.

// Handlers answer early with a ready Response; boxing each would only add noise.
#![allow(clippy::result_large_err)]

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::members::reply::error;
use crate::api::AppState;
use crate::domain::accounts::roles::{Caller, Role, Scope};

/// An authenticated caller, as an extractor.
pub struct Authed(pub Caller);

impl FromRequestParts<AppState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match caller(&parts.headers, state) {
            Ok(caller) => Ok(Authed(caller)),
            Err(why) => Err(unauthorized(why)),
        }
    }
}

/// The caller the request's API key names, or why there is none (a sentence for the 401).
pub fn caller(headers: &HeaderMap, state: &AppState) -> Result<Caller, &'static str> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or("authentication required: send an API key as a bearer token")?;
    state
        .members
        .clients
        .authenticate(key)
        .ok_or("the API key is not known")
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, "unauthenticated", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tributary\""),
    );
    response
}

/// A caller with the `integration-analyst` role, as an extractor (the journal and the outbox
/// show message contents and patients).
pub struct Analyst(pub Caller);

impl FromRequestParts<AppState> for Analyst {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Authed(caller) = Authed::from_request_parts(parts, state).await?;
        allow(&caller, &[Role::IntegrationAnalyst])?;
        Ok(Analyst(caller))
    }
}

/// 403 unless the caller has one of `roles`.
pub fn allow(caller: &Caller, roles: &[Role]) -> Result<(), Response> {
    if roles.iter().any(|r| caller.has(*r)) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    Err(error(
        StatusCode::FORBIDDEN,
        "forbidden",
        &format!("this action needs the role {}", names.join(" or ")),
    ))
}

/// 403 unless the caller is an external system with `scope`.
pub fn allow_scope(caller: &Caller, scope: Scope) -> Result<(), Response> {
    if caller.has_scope(scope) {
        return Ok(());
    }
    Err(error(
        StatusCode::FORBIDDEN,
        "forbidden",
        &format!(
            "this action needs an external-system client with the scope `{}`",
            scope.name()
        ),
    ))
}
