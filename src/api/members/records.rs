//! The member's records under `/api/me`: their results, documents and appointments, and a
//! principal's to a proxy whose
//! relationship grants it now (403 `no-proxy-access` otherwise, as for the principal's account).
//! Results come from the feeds (ORU over MLLP, or FHIR); nothing here writes.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::proxies::whose;
use super::reply::{body, error, ok, read, settled};
use super::signin::MemberSession;
use crate::api::AppState;
use crate::core::Finished;
use crate::domain::records::appointments;
use crate::domain::records::care_plans;
use crate::domain::records::documents;
use crate::domain::records::results::{self, ResultsError, ResultsQuery};
use crate::domain::records::site::{self, Part};
use crate::domain::records::summary;
use crate::domain::refusal::{Kind, Refusal};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsParams {
    name: Option<String>,
    from: Option<String>,
    to: Option<String>,
    category: Option<String>,
}

impl ResultsParams {
    fn query(self) -> Result<ResultsQuery, Response> {
        for (key, date) in [("from", &self.from), ("to", &self.to)] {
            if let Some(date) = date
                && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err()
            {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad-date",
                    &format!("`{key}` must be a date YYYY-MM-DD, not `{date}`"),
                ));
            }
        }
        if let Some(category) = &self.category
            && !matches!(category.as_str(), "laboratory" | "imaging")
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad-category",
                &format!("`category` is laboratory or imaging, not `{category}`"),
            ));
        }
        Ok(ResultsQuery {
            name: self.name.filter(|n| !n.trim().is_empty()),
            from: self.from,
            to: self.to,
            category: self.category,
        })
    }
}

impl From<ResultsError> for Refusal {
    fn from(e: ResultsError) -> Refusal {
        Refusal::new(Kind::Store, "store", e.to_string())
    }
}

/// `GET /api/me/results`: the signed-in member's results.
pub async fn mine(
    State(state): State<AppState>,
    me: MemberSession,
    Query(params): Query<ResultsParams>,
) -> Result<Response, Response> {
    results_for(&state, me, None, params.query()?).await
}

/// `GET /api/me/principals/{id}/results`: a principal's results, to a granted proxy.
pub async fn principal(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
    Query(params): Query<ResultsParams>,
) -> Result<Response, Response> {
    results_for(&state, me, Some(principal), params.query()?).await
}

/// `GET /api/me/results/{report}/document`: the report's attached document (a PDF ...).
pub async fn my_document(
    State(state): State<AppState>,
    me: MemberSession,
    Path(report): Path<String>,
) -> Result<Response, Response> {
    document(&state, me, None, report).await
}

/// `GET /api/me/principals/{id}/results/{report}/document`.
pub async fn principal_document(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, report)): Path<(String, String)>,
) -> Result<Response, Response> {
    document(&state, me, Some(principal), report).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    /// One Summary type (`allergies` ...); all the site shows without it.
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `GET /api/me/summary[?type=]`: the signed-in member's Summary, by type.
pub async fn my_summary(
    State(state): State<AppState>,
    me: MemberSession,
    Query(params): Query<SummaryParams>,
) -> Result<Response, Response> {
    summary_for(&state, me, None, params).await
}

/// `GET /api/me/principals/{id}/summary[?type=]`: a principal's Summary, to a granted proxy.
pub async fn principal_summary(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
    Query(params): Query<SummaryParams>,
) -> Result<Response, Response> {
    summary_for(&state, me, Some(principal), params).await
}

async fn summary_for(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    params: SummaryParams,
) -> Result<Response, Response> {
    if let Some(kind) = params.kind.as_deref()
        && !crate::config::SUMMARY_TYPES.contains(&kind)
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad-type",
            &format!(
                "`{kind}` is not a Summary type ({})",
                crate::config::SUMMARY_TYPES.join(", ")
            ),
        ));
    }
    let configured = state.records.switches();
    let answer = read(state, move |store, _| {
        let switches = site::offered(store, &configured, Part::Summary)?;
        let kinds: Vec<String> = match params.kind {
            None => switches.summary_types.clone(),
            Some(kind) if switches.summary_types.contains(&kind) => vec![kind],
            Some(kind) => {
                return Err(Refusal::new(
                    Kind::NotFound,
                    "not-offered",
                    format!("this site does not show {kind} in the Summary now"),
                ));
            }
        };
        let patient = whose(store, &me, principal.as_deref())?;
        let shown = summary::of_patient(store, &patient, &kinds, &switches)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))?;
        Ok(json!({ "patient_id": patient, "summary": shown }))
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

/// `GET /api/me/care-plans`: the signed-in member's care plans (To Do, active, completed).
pub async fn my_care_plans(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    care_plans_for(&state, me, None).await
}

/// `GET /api/me/principals/{id}/care-plans`: a principal's care plans, to a granted proxy.
pub async fn principal_care_plans(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
) -> Result<Response, Response> {
    care_plans_for(&state, me, Some(principal)).await
}

async fn care_plans_for(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
) -> Result<Response, Response> {
    let configured = state.records.switches();
    let answer = read(state, move |store, _| {
        site::offered(store, &configured, Part::CarePlans)?;
        let patient = whose(store, &me, principal.as_deref())?;
        let mut plans = care_plans::of_patient(store, &patient)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))?;
        plans["patient_id"] = json!(patient);
        Ok(plans)
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

/// `POST /api/me/care-plans/{id}/questionnaire-response`: the member answers a questionnaire
/// of their plan.
pub async fn my_care_plan_answer(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    care_plan_answer(&state, me, None, id, &bytes).await
}

/// `POST /api/me/principals/{id}/care-plans/{plan}/questionnaire-response`: a granted proxy
/// answers for the principal.
pub async fn principal_care_plan_answer(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, Response> {
    care_plan_answer(&state, me, Some(principal), id, &bytes).await
}

async fn care_plan_answer(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
    bytes: &Bytes,
) -> Result<Response, Response> {
    let response: serde_json::Value = body(bytes)?;
    let push_to: Vec<String> = state
        .records
        .care_plan_destinations
        .iter()
        .map(|d| d.get_ref().clone())
        .collect();
    let configured = state.records.switches();
    let actor = format!("member:{}", me.session.patient_id);
    let journal = format!("care plan {id} questionnaire answered by {actor}");
    let outcome = state
        .committer
        .run("care plan answer", actor.clone(), move |ctx| {
            let done = site::offered(ctx.tx, &configured, Part::CarePlans)
                .and_then(|_| whose(ctx.tx, &me, principal.as_deref()))
                .and_then(|patient| {
                    care_plans::answer(ctx, &actor, &patient, &id, response, &push_to)
                        .map(|done| (patient, done))
                });
            match done {
                Ok((patient, done)) => Finished::applied(journal, vec![patient], Ok(done)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    let answered = settled(outcome)?;
    Ok(ok(
        StatusCode::CREATED,
        json!({
            "questionnaire_response": answered.response,
            "care_plan": answered.plan,
            "pushed": answered.pushed,
        }),
    ))
}

/// `GET /api/me/documents`: the signed-in member's documents.
pub async fn my_documents(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    documents_for(&state, me, None).await
}

/// `GET /api/me/principals/{id}/documents`: a principal's documents, to a granted proxy.
pub async fn principal_documents(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
) -> Result<Response, Response> {
    documents_for(&state, me, Some(principal)).await
}

/// `GET /api/me/documents/{id}/content`: a document's bytes, with its content type.
pub async fn my_document_content(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    document_content(&state, me, None, id).await
}

/// `GET /api/me/principals/{id}/documents/{document}/content`.
pub async fn principal_document_content(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
) -> Result<Response, Response> {
    document_content(&state, me, Some(principal), id).await
}

async fn documents_for(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
) -> Result<Response, Response> {
    let configured = state.records.switches();
    let answer = read(state, move |store, _| {
        site::offered(store, &configured, Part::Documents)?;
        let patient = whose(store, &me, principal.as_deref())?;
        let listed = documents::of_patient(store, &patient)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))?;
        Ok(json!({ "patient_id": patient, "documents": listed }))
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

async fn document_content(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
) -> Result<Response, Response> {
    let configured = state.records.switches();
    let (content_type, bytes) = read(state, move |store, _| {
        site::offered(store, &configured, Part::Documents)?;
        let patient = whose(store, &me, principal.as_deref())?;
        documents::content_of(store, &patient, &id)?
            .ok_or_else(|| Refusal::not_found(format!("no document `{id}` of yours with content")))
    })
    .await?;
    attachment(&content_type, bytes)
}

/// `GET /api/me/appointments`: the signed-in member's appointments.
pub async fn my_appointments(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    appointments_for(&state, me, None).await
}

/// `GET /api/me/principals/{id}/appointments`: a principal's appointments, to a granted proxy.
pub async fn principal_appointments(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
) -> Result<Response, Response> {
    appointments_for(&state, me, Some(principal)).await
}

/// `GET /api/me/appointments/{id}/ics`: an upcoming appointment as an iCalendar file.
pub async fn my_appointment_ics(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    appointment_ics(&state, me, None, id).await
}

/// `GET /api/me/principals/{id}/appointments/{appointment}/ics`.
pub async fn principal_appointment_ics(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
) -> Result<Response, Response> {
    appointment_ics(&state, me, Some(principal), id).await
}

async fn appointments_for(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
) -> Result<Response, Response> {
    let configured = state.records.switches();
    let answer = read(state, move |store, _| {
        let prepayment = site::switches(store, &configured)?.appointment_prepayment;
        let patient = whose(store, &me, principal.as_deref())?;
        let mut listed = appointments::of_patient(store, &patient, chrono::Utc::now(), prepayment)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))?;
        listed["patient_id"] = json!(patient);
        Ok(listed)
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

async fn appointment_ics(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
) -> Result<Response, Response> {
    let calendar = read(state, move |store, _| {
        let patient = whose(store, &me, principal.as_deref())?;
        Ok(appointments::ics_of(store, &patient, &id, chrono::Utc::now())?)
    })
    .await?;
    attachment("text/calendar; charset=utf-8", calendar.into_bytes())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    reason: Option<String>,
}

/// `POST /api/me/appointments/{id}/cancel`: the member cancels their upcoming appointment.
pub async fn my_cancel(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    cancel(&state, me, None, id, &bytes).await
}

/// `POST /api/me/principals/{id}/appointments/{appointment}/cancel`: a granted proxy cancels it.
pub async fn principal_cancel(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, Response> {
    cancel(&state, me, Some(principal), id, &bytes).await
}

async fn cancel(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
    bytes: &Bytes,
) -> Result<Response, Response> {
    let request: CancelBody = if bytes.is_empty() {
        CancelBody::default()
    } else {
        body(bytes)?
    };
    let reason = request
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "cancelled by the member".to_string());
    let push_to: Vec<String> = state
        .records
        .appointment_cancellation_destinations
        .iter()
        .map(|d| d.get_ref().clone())
        .collect();
    let actor = format!("member:{}", me.session.patient_id);
    let journal = format!("appointment {id} cancelled by {actor}");
    let outcome = state
        .committer
        .run("appointment cancellation", actor.clone(), move |ctx| {
            let done = whose(ctx.tx, &me, principal.as_deref()).and_then(|patient| {
                appointments::cancel(ctx, &actor, &patient, &id, &reason, &push_to)
                    .map(|done| (patient, done))
            });
            match done {
                Ok((patient, done)) => Finished::applied(journal, vec![patient], Ok(done)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    let (appointment, pushed) = settled(outcome)?;
    Ok(ok(
        StatusCode::OK,
        json!({ "appointment": appointment, "pushed": pushed }),
    ))
}

async fn results_for(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    query: ResultsQuery,
) -> Result<Response, Response> {
    let configured = state.records.switches();
    let answer = read(state, move |store, _| {
        let switches = site::offered(store, &configured, Part::Results)?;
        let patient = whose(store, &me, principal.as_deref())?;
        let reports = results::of_patient(store, &patient, &query, &switches)?;
        Ok(json!({ "patient_id": patient, "reports": reports }))
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

async fn document(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    report_id: String,
) -> Result<Response, Response> {
    let configured = state.records.switches();
    let report = read(state, move |store, _| {
        site::offered(store, &configured, Part::Results)?;
        let patient = whose(store, &me, principal.as_deref())?;
        results::report_of(store, &patient, &report_id)?
            .ok_or_else(|| Refusal::not_found(format!("no report `{report_id}` of yours")))
    })
    .await?;
    let form = &report["presentedForm"][0];
    let Some(data) = form["data"].as_str() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "no-document",
            "this report has no attached document",
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad-document",
                &format!("the stored document is not base64: {e}"),
            )
        })?;
    let content_type = form["contentType"].as_str().unwrap_or("application/octet-stream");
    attachment(content_type, bytes)
}

/// A download: the bytes with their content type, as an attachment.
fn attachment(content_type: &str, bytes: Vec<u8>) -> Result<Response, Response> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, "attachment")
        .body(Body::from(bytes))
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "response", &e.to_string()))
}

const RESULTS_QUERY: &[&str] = &["name:string", "from:string", "to:string", "category:string"];

/// The OpenAPI entries of these routes (chained into `openapi::document`).
pub const OPERATIONS: &[super::openapi::Operation] = &[
    super::openapi::Operation {
        method: "get",
        path: "/api/me/care-plans",
        summary: "The signed-in member's care plans (from Care Community): `todo` (active plans with a questionnaire still to answer), `active` and `completed`, newest first; each with title, description, status, period, author and its activities (description, status, schedule, and the questionnaire it asks for: url, id, title). 404 not-offered when the site does not show Care Plans.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "post",
        path: "/api/me/care-plans/{id}/questionnaire-response",
        summary: "The member answers a questionnaire of their active care plan with a FHIR QuestionnaireResponse (`questionnaire` names it; optional when one is pending): stored with the plan as basedOn, the activity completed, the plan completed once every questionnaire is answered; both go back to Care Community through `records.care_plan_destinations`; audited. 201 with the response, the plan and the deliveries queued. 404 not the member's; 409 plan-closed, nothing-to-answer; 422 a questionnaire the plan does not ask for, or an invalid response.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &["resourceType!:string", "questionnaire:string"],
        success: 201,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}/care-plans",
        summary: "A principal's care plans (as /api/me/care-plans) for the signed-in proxy, while a relationship grants it; 403 no-proxy-access otherwise.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "post",
        path: "/api/me/principals/{id}/care-plans/{plan}/questionnaire-response",
        summary: "A granted proxy answers a questionnaire of the principal's care plan (as /api/me/care-plans/{id}/questionnaire-response); 403 no-proxy-access otherwise.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &["resourceType!:string", "questionnaire:string"],
        success: 201,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/summary",
        summary: "The signed-in member's Summary by type (allergies, conditions, medications, immunizations, procedures, care-team, encounters: the ones the site shows), each newest first: name, code and system, status, date, and what the type adds (an allergy's criticality and reactions, a medication's dosage, a care team's members, an encounter's end, class and location); `info_url` when the site shows info buttons. `type` narrows it to one type. 404 not-offered when the site does not show the Summary or that type; 400 bad-type.",
        roles: super::openapi::SIGNED_IN,
        query: &["type"],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}/summary",
        summary: "A principal's Summary (as /api/me/summary) for the signed-in proxy, while a relationship grants it; 403 no-proxy-access otherwise.",
        roles: super::openapi::SIGNED_IN,
        query: &["type"],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "post",
        path: "/api/me/appointments/{id}/cancel",
        summary: "The member cancels an upcoming appointment (`reason` optional): it becomes cancelled and goes back to the scheduler through `records.appointment_cancellation_destinations` (an SIU^S15 over MLLP, or FHIR JSON) and to every destination subscribed to Appointment-changed; audited. Answers the appointment and the deliveries queued. 404 not the member's; 409 not-upcoming.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &["reason:string"],
        success: 200,
    },
    super::openapi::Operation {
        method: "post",
        path: "/api/me/principals/{id}/appointments/{appointment}/cancel",
        summary: "A granted proxy cancels a principal's upcoming appointment (as /api/me/appointments/{id}/cancel); 403 no-proxy-access otherwise.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &["reason:string"],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/appointments",
        summary: "The signed-in member's appointments: `next`, `upcoming` (soonest first), `past` (latest first) and `cancelled` (cancelled or no-show), each with start, end, status, title, location, who it is with, comment and cancellation reason; a video visit's link on its day; `pay_link` and `amount_due` on an upcoming visit to pay ahead when the site enables pre-payment.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/appointments/{id}/ics",
        summary: "An upcoming appointment of the member as an iCalendar (RFC 5545) file: one event with its start, end, title, location and who it is with. 404 not the member's; 409 not-upcoming (past or cancelled).",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}/appointments",
        summary: "A principal's appointments (as /api/me/appointments) for the signed-in proxy, while a relationship grants it; 403 no-proxy-access otherwise.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}/appointments/{appointment}/ics",
        summary: "A principal's upcoming appointment as an iCalendar file, for a granted proxy; 403 no-proxy-access, 404 and 409 as for the member's own.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/documents",
        summary: "The signed-in member's documents, newest first (cancelled ones left out): title, date, status (current or superseded, with the document that replaces it), whether final, author, content type, the text of a text document inline, and the documents it relates to (appends, replaces).",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/documents/{id}/content",
        summary: "One of the member's documents: its bytes with its content type (a PDF, text ...); 404 when it is not theirs, cancelled, or has no content.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}/documents",
        summary: "A principal's documents (as /api/me/documents) for the signed-in proxy, while a relationship grants it; 403 no-proxy-access otherwise.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}/documents/{document}/content",
        summary: "A principal's document's bytes, for a granted proxy; 403 no-proxy-access, 404 as for the member's own.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/results",
        summary: "The signed-in member's results, newest report first: each report (name, category laboratory or imaging, status, date, whether a document is attached) with its results (value, unit or text, range low/high/text, position below/within/above the range, flag, status, notes). `name` matches the start of a word of the report's or a result's name; `from`/`to` (YYYY-MM-DD) bound the report's date; `category` laboratory or imaging. 400 bad-date, bad-category.",
        roles: super::openapi::SIGNED_IN,
        query: RESULTS_QUERY,
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/results/{id}/document",
        summary: "The document attached to one of the member's reports (its bytes, with its content type: a PDF ...); 404 when the report is not theirs or has none.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}/results",
        summary: "A principal's results (as /api/me/results) for the signed-in proxy, while a relationship grants it; 403 no-proxy-access otherwise.",
        roles: super::openapi::SIGNED_IN,
        query: RESULTS_QUERY,
        body: &[],
        success: 200,
    },
    super::openapi::Operation {
        method: "get",
        path: "/api/me/principals/{id}/results/{report}/document",
        summary: "The document attached to a principal's report, for a granted proxy; 403 no-proxy-access, 404 as for the member's own.",
        roles: super::openapi::SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
];
