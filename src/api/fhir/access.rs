//! Who may use the FHIR endpoint: the API key of an external system with the scope `fhir-read`
//! (read, vread, history, search, PIXm) or `fhir-write` (also create, update, delete and
//! Bundles: transactions, batches, PMIR feeds), or of an integration analyst (reads, to follow
//! what the feeds made). The CapabilityStatement is public. A refusal is an OperationOutcome:
//! 401 `login` (with `WWW-Authenticate`) or 403 `forbidden`, in the format the request asks for
//! (`_format`, then `Accept`), as every other FHIR answer.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::format::{self, Format};
use crate::api::{AppState, auth};
use crate::domain::accounts::roles::{Role, Scope};

/// Lets the request through when its caller may do what it asks.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // A search by POST (`_search`) only reads.
    let reads =
        matches!(*request.method(), Method::GET | Method::HEAD) || request.uri().path().ends_with("/_search");
    let asked = Format::asked(request.headers(), request.uri().query());
    let caller = match auth::caller(request.headers(), &state) {
        Ok(caller) => caller,
        Err(why) => {
            let mut response = format::error(asked, StatusCode::UNAUTHORIZED, "login", why);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tributary\""),
            );
            return response;
        }
    };
    let may_read = caller.has_scope(Scope::FhirRead) || caller.has(Role::IntegrationAnalyst);
    let allowed = caller.has_scope(Scope::FhirWrite) || (reads && may_read);
    if !allowed {
        let needs = if reads {
            "reading needs an external-system client with the scope `fhir-read` or `fhir-write`, or an integration analyst"
        } else {
            "writing needs an external-system client with the scope `fhir-write`"
        };
        return format::error(asked, StatusCode::FORBIDDEN, "forbidden", needs);
    }
    next.run(request).await
}
