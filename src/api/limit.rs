//! The request budget per client address (`[http.rate_limit]`, src/domain/identity/throttle.rs) applied
//! to every endpoint but `/health`, and the client address itself for the handlers that count
//! per address (sign-in).
//!
//! The address is the TCP peer's, from axum's `ConnectInfo` (the server is started with
//! `into_make_service_with_connect_info`); a request without one (a router driven in-process)
//! counts as the unspecified address. A refused request is answered 429 with `Retry-After`, as
//! an OperationOutcome under `/fhir` and as `{"error", "code"}` everywhere else.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::members::reply::error;
use crate::api::{AppState, fhir_error};
use crate::domain::identity::throttle::retry_after_seconds;

/// The client's address, as an extractor (never refuses).
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(address(&parts.extensions)))
    }
}

fn address(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Middleware: takes one request from the client's budget, or answers 429.
pub async fn per_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/health" {
        return next.run(request).await;
    }
    let client = address(request.extensions());
    match state.members.request_limit.take(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let message = "too many requests from this address: retry later";
            let response = if path == "/fhir" || path.starts_with("/fhir/") {
                fhir_error(StatusCode::TOO_MANY_REQUESTS, "throttled", message)
            } else {
                error(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", message)
            };
            with_retry_after(response, wait)
        }
    }
}

/// Adds `Retry-After` (whole seconds, at least 1) to an answer.
pub fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds(wait)));
    response
}
