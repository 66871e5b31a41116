//! The provider directory over HTTP, for the signed-in member: providers and groups searched by
//! name, and the member's favourites among them.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::{Operation, SIGNED_IN};
use super::reply::{error, ok, read, settled};
use super::signin::MemberSession;
use crate::api::AppState;
use crate::core::Finished;
use crate::domain::directory::{self, Part};
use crate::domain::refusal::{Kind, Refusal};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    q: Option<String>,
    kind: Option<String>,
}

/// `GET /api/me/providers[?q=&kind=providers|groups]`.
pub async fn search(
    State(state): State<AppState>,
    me: MemberSession,
    Query(params): Query<SearchParams>,
) -> Result<Response, Response> {
    let part = match params.kind.as_deref() {
        None => Part::Both,
        Some("providers") => Part::Providers,
        Some("groups") => Part::Groups,
        Some(other) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad-kind",
                &format!("`{other}` is not a kind (providers, groups)"),
            ));
        }
    };
    let query = params.q.unwrap_or_default();
    let member = me.session.patient_id.clone();
    let found = read(&state, move |store, _| {
        directory::search(store, &query, part, &member)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({ "entries": found })))
}

/// `GET /api/me/favourites`.
pub async fn favourites(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    let member = me.session.patient_id.clone();
    let found = read(&state, move |store, _| {
        directory::favourites(store, &member).map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({ "entries": found })))
}

/// `PUT /api/me/favourites/{type}/{id}`.
pub async fn add(
    State(state): State<AppState>,
    me: MemberSession,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response, Response> {
    let reference = format!("{resource_type}/{id}");
    let entry = change(
        &state,
        &me,
        format!("favourite {reference} added"),
        move |tx, member, now| directory::add_favourite(tx, member, &reference, now),
    )
    .await?;
    Ok(ok(StatusCode::OK, entry))
}

/// `DELETE /api/me/favourites/{type}/{id}`.
pub async fn remove(
    State(state): State<AppState>,
    me: MemberSession,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response, Response> {
    let reference = format!("{resource_type}/{id}");
    let journal = format!("favourite {reference} removed");
    change(&state, &me, journal, move |tx, member, _| {
        directory::remove_favourite(tx, member, &reference).map(|()| Value::Null)
    })
    .await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(axum::body::Body::empty())
        .expect("a valid response"))
}

async fn change(
    state: &AppState,
    me: &MemberSession,
    journal: String,
    action: impl FnOnce(&mut crate::store::Overlay<'_>, &str, &str) -> Result<Value, Refusal> + Send + 'static,
) -> Result<Value, Response> {
    let member = me.session.patient_id.clone();
    let actor = format!("member:{member}");
    let outcome = state
        .committer
        .run("favourites", actor, move |ctx| {
            match action(ctx.tx, &member, ctx.now) {
                Ok(entry) => Finished::applied(journal, vec![], Ok(entry)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    settled(outcome)
}

/// The OpenAPI entries of these routes.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/me/providers",
        summary: "Search the provider directory (FHIR Practitioners with their PractitionerRoles, and Organizations as groups): every word of `q` starts a word of the name; `kind` providers or groups. At most 50 entries by name: reference, kind, name, specialties and groups (providers), type (groups), favourite. 400 bad-kind.",
        roles: SIGNED_IN,
        query: &["q", "kind"],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/me/favourites",
        summary: "The member's favourite providers and groups still in the directory, as the search gives them.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/me/favourites/{type}/{id}",
        summary: "Make a provider or group (Practitioner, PractitionerRole or Organization) a favourite. 422 unknown-provider.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "delete",
        path: "/api/me/favourites/{type}/{id}",
        summary: "Take a provider or group out of the favourites. 404 not-a-favourite.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 204,
    },
];
