//! The member's consents over HTTP: the list for the member and a granted proxy, their answers
//! changed (as the site's switches allow), and the switches for a Configuration Manager.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::openapi::{Operation, SIGNED_IN};
use super::proxies::whose;
use super::reply::{body, body_with_reason, command, ok, read, settled};
use super::signin::MemberSession;
use crate::api::AppState;
use crate::api::auth::{Authed, allow};
use crate::config::ConsentSwitches;
use crate::core::Finished;
use crate::domain::accounts::roles::Role;
use crate::domain::consents::{self, Answer};
use crate::domain::refusal::{Kind, Refusal};

/// `GET /api/me/consents`.
pub async fn mine(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    list(&state, me, None).await
}

/// `GET /api/me/principals/{id}/consents`.
pub async fn principal(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
) -> Result<Response, Response> {
    list(&state, me, Some(principal)).await
}

/// `PUT /api/me/consents/{id}` `{"answers": [{"item", "answer"}]}`.
pub async fn my_answers(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    answer(&state, me, None, id, &bytes).await
}

/// `PUT /api/me/principals/{id}/consents/{consent}`.
pub async fn principal_answers(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, Response> {
    answer(&state, me, Some(principal), id, &bytes).await
}

async fn list(state: &AppState, me: MemberSession, principal: Option<String>) -> Result<Response, Response> {
    let configured = state.consents.site.clone();
    let answer = read(state, move |store, _| {
        let switches = consents::switches(store, &configured)?;
        consents::require(
            switches.patient_view,
            "consents-not-shown",
            "members see their consents",
        )?;
        let patient = whose(store, &me, principal.as_deref())?;
        let listed = consents::of_patient(store, &patient)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))?;
        Ok(json!({ "patient_id": patient, "consents": listed }))
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswersBody {
    answers: Vec<Answer>,
}

async fn answer(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
    bytes: &Bytes,
) -> Result<Response, Response> {
    let request: AnswersBody = body(bytes)?;
    let configured = state.consents.site.clone();
    let push_to: Vec<String> = state
        .consents
        .destinations
        .iter()
        .map(|d| d.get_ref().clone())
        .collect();
    let actor = format!("member:{}", me.session.patient_id);
    let journal = format!("consent {id} answered by {actor}");
    let outcome = state
        .committer
        .run("consent answers", actor.clone(), move |ctx| {
            let done = consents::switches(ctx.tx, &configured)
                .map_err(Refusal::from)
                .and_then(|switches| match principal.is_some() {
                    true => {
                        consents::require(switches.proxy_edit, "proxy-edit-off", "proxies change consents")
                    }
                    false => consents::require(
                        switches.patient_edit,
                        "patient-edit-off",
                        "members change their consents",
                    ),
                })
                .and_then(|()| whose(ctx.tx, &me, principal.as_deref()))
                .and_then(|patient| {
                    consents::answer(ctx, &actor, &patient, &id, &request.answers, &push_to)
                        .map(|done| (patient, done))
                });
            match done {
                Ok((patient, done)) => Finished::applied(journal, vec![patient], Ok(done)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    let (consent, pushed) = settled(outcome)?;
    Ok(ok(
        StatusCode::OK,
        json!({ "consent": consent, "pushed": pushed }),
    ))
}

/// `GET /api/settings/consents`.
pub async fn switches(State(state): State<AppState>, Authed(caller): Authed) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let configured = state.consents.site.clone();
    let switches = read(&state, move |store, _| {
        Ok(consents::switches(store, &configured)?)
    })
    .await?;
    Ok(ok(StatusCode::OK, json!(switches)))
}

/// `PUT /api/settings/consents`: the three switches and a reason.
pub async fn put_switches(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let (new, reason): (ConsentSwitches, String) = body_with_reason(&bytes)?;
    let configured = state.consents.site.clone();
    let (saved, _) = command(
        &state,
        "consent switches",
        &caller,
        "update consent switches".into(),
        None,
        move |op, _| consents::save_switches(op, &configured, new, &reason),
    )
    .await?;
    Ok(ok(StatusCode::OK, json!(saved)))
}

/// The OpenAPI entries of these routes.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/me/consents",
        summary: "The signed-in member's consents (FHIR Consents from the external system), newest first: title, status, date, organization, and each question with its answer (permit or deny). 403 consents-not-shown when the site's patient_view switch is off.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/me/consents/{id}",
        summary: "The member changes answers of a consent (`answers`: item and permit or deny): the Consent becomes active, dated now, goes back through consents.destinations and is audited (consent.update). 403 patient-edit-off; 404 not theirs; 422 an unknown question or answer.",
        roles: SIGNED_IN,
        query: &[],
        body: &["answers!:array"],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/me/principals/{id}/consents",
        summary: "A principal's consents (as /api/me/consents) for a proxy whose relationship grants it now; 403 no-proxy-access otherwise.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/me/principals/{id}/consents/{consent}",
        summary: "A granted proxy changes a principal's answers (as /api/me/consents/{id}); 403 proxy-edit-off when the site's proxy_edit switch is off, no-proxy-access without a grant.",
        roles: SIGNED_IN,
        query: &[],
        body: &["answers!:array"],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/settings/consents",
        summary: "The consent switches in force: patient_view, patient_edit, proxy_edit.",
        roles: "configuration-manager",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/settings/consents",
        summary: "Change the consent switches (patient_view, patient_edit, proxy_edit), in force at once; reason required; audited as settings.update on settings/consents.",
        roles: "configuration-manager",
        query: &[],
        body: &[
            "patient_view:boolean",
            "patient_edit:boolean",
            "proxy_edit:boolean",
            "reason!:string",
        ],
        success: 200,
    },
];
