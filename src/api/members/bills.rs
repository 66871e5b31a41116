//! The member's bills over HTTP: the list and each bill's document for the member and their
//! granted proxies, the pay action (a redirect to the gateway's signed link), and the gateway's
//! payment notice (signed, no API key).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::openapi::{Operation, PUBLIC, SIGNED_IN};
use super::proxies::whose;
use super::reply::{body, error, ok, read, settled};
use super::signin::MemberSession;
use crate::api::AppState;
use crate::core::Finished;
use crate::domain::bills::{self, PaymentNotice};
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};

/// `GET /api/me/bills`.
pub async fn mine(State(state): State<AppState>, me: MemberSession) -> Result<Response, Response> {
    list(&state, me, None).await
}

/// `GET /api/me/principals/{id}/bills`.
pub async fn principal(
    State(state): State<AppState>,
    me: MemberSession,
    Path(principal): Path<String>,
) -> Result<Response, Response> {
    list(&state, me, Some(principal)).await
}

/// `GET /api/me/bills/{id}/document`.
pub async fn my_document(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    document(&state, me, None, id).await
}

/// `GET /api/me/principals/{id}/bills/{bill}/document`.
pub async fn principal_document(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
) -> Result<Response, Response> {
    document(&state, me, Some(principal), id).await
}

/// `POST /api/me/bills/{id}/pay`.
pub async fn my_pay(
    State(state): State<AppState>,
    me: MemberSession,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    pay(&state, me, None, id).await
}

/// `POST /api/me/principals/{id}/bills/{bill}/pay`.
pub async fn principal_pay(
    State(state): State<AppState>,
    me: MemberSession,
    Path((principal, id)): Path<(String, String)>,
) -> Result<Response, Response> {
    pay(&state, me, Some(principal), id).await
}

async fn list(state: &AppState, me: MemberSession, principal: Option<String>) -> Result<Response, Response> {
    let answer = read(state, move |store, _| {
        let patient = whose(store, &me, principal.as_deref())?;
        let listed = bills::of_patient(store, &patient)
            .map_err(|e| Refusal::new(Kind::Store, "store", e.to_string()))?;
        Ok(json!({ "patient_id": patient, "bills": listed }))
    })
    .await?;
    Ok(ok(StatusCode::OK, answer))
}

async fn document(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
) -> Result<Response, Response> {
    let (content_type, bytes) = read(state, move |store, _| {
        let patient = whose(store, &me, principal.as_deref())?;
        bills::document_of(store, &patient, &id)
    })
    .await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, "attachment")
        .body(bytes.into())
        .expect("a valid response"))
}

async fn pay(
    state: &AppState,
    me: MemberSession,
    principal: Option<String>,
    id: String,
) -> Result<Response, Response> {
    let Some(template) = state
        .bills
        .config
        .payment_url
        .as_ref()
        .map(|u| u.get_ref().clone())
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not-offered",
            "this site takes no payments (no bills.payment_url)",
        ));
    };
    let bills_state = state.bills.clone();
    let link = read(state, move |store, _| {
        let patient = whose(store, &me, principal.as_deref())?;
        bills::payment_link(store, &patient, &id, &template, &bills_state.key)
    })
    .await?;
    Ok(Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, &link)
        .header(header::CONTENT_TYPE, "application/json")
        .body(json!({ "redirect": link }).to_string().into())
        .expect("a valid response"))
}

/// `POST /api/bills/payment-notice`: the gateway says a bill was paid (signed, no API key).
pub async fn payment_notice(State(state): State<AppState>, bytes: Bytes) -> Result<Response, Response> {
    let notice: PaymentNotice = body(&bytes)?;
    let key = state.bills.key.clone();
    let journal = format!("payment notice for bill {} ({})", notice.bill, notice.reference);
    let outcome = state
        .committer
        .run("payment notice", "payment-gateway", move |ctx| {
            let mut op = Op::from_ctx(ctx, "payment-gateway");
            match bills::record_payment(&mut op, &key, &notice) {
                Ok(done) => Finished::applied(journal, vec![], Ok(done)),
                Err(refusal) => Finished::refused(journal, refusal.to_string(), Err(refusal)),
            }
        })
        .await;
    let (bill, changed) = settled(outcome)?;
    Ok(ok(
        StatusCode::OK,
        json!({ "bill": bill["id"], "status": bill["status"], "changed": changed }),
    ))
}

/// The OpenAPI entries of these routes.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/me/bills",
        summary: "The signed-in member's finalized bills (FHIR Invoices issued or paid), newest first: number, date, description, issuer, total, whether paid, whether a document is attached.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/me/bills/{id}/document",
        summary: "A bill's document (its PDF), with its content type. 404 not-found (not the member's) or no-document.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/me/bills/{id}/pay",
        summary: "Pay a bill: 303 to the payment gateway's link for it (bills.payment_url with the bill, amount and currency, signed with HMAC-SHA256 under the gateway key), the link also as `redirect`. 409 already-paid; 404 not-offered without a gateway.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 303,
    },
    Operation {
        method: "get",
        path: "/api/me/principals/{id}/bills",
        summary: "A principal's bills (as /api/me/bills) for a signed-in proxy whose relationship grants it; 403 no-proxy-access otherwise.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/me/principals/{id}/bills/{bill}/document",
        summary: "A principal's bill document, for a granted proxy.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/me/principals/{id}/bills/{bill}/pay",
        summary: "A granted proxy pays a principal's bill (as /api/me/bills/{id}/pay).",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 303,
    },
    Operation {
        method: "post",
        path: "/api/bills/payment-notice",
        summary: "The payment gateway's notice that a bill was paid: bill, amount, currency, reference and signature (HMAC-SHA256 hex of `bill|amount|currency|reference` under the gateway key); no API key, the signature is the authentication. Marks the bill paid (balanced), audited as bill.paid; the same notice again changes nothing. 403 bad-signature; 404 unknown bill; 409 already-paid (another payment); 422 an amount or currency that is not the bill's.",
        roles: PUBLIC,
        query: &[],
        body: &[
            "bill!:string",
            "amount!:string",
            "currency!:string",
            "reference!:string",
            "signature!:string",
        ],
        success: 200,
    },
];
