//! Staff endpoints: point-of-care enrollment (Direct Enrollment User) and member management
//! (Member Account Manager): search, details, contact edits, tokens, status, password reset.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::reply::{blocking, body, command, ok, read};
use crate::api::AppState;
use crate::api::auth::{Authed, allow};
use crate::domain::accounts::enrollment::{self, Method};
use crate::domain::accounts::members::{self, Contact, Preference};
use crate::domain::accounts::roles::Role;
use crate::domain::{accounts::tokens, identity::secrets, identity::sessions, mpi::patient_search, proxies};

const DEU: &[Role] = &[Role::DirectEnrollmentUser];
const MAM: &[Role] = &[Role::MemberAccountManager];

fn limit(asked: Option<usize>) -> usize {
    asked.unwrap_or(20).clamp(1, 100)
}

#[derive(Deserialize)]
pub struct PatientQuery {
    #[serde(flatten)]
    criteria: patient_search::Criteria,
    limit: Option<usize>,
}

/// `GET /api/patients`: the synced patients, to enroll one.
pub async fn search_patients(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Query(query): Query<PatientQuery>,
) -> Result<Response, Response> {
    allow(&caller, DEU)?;
    let n = limit(query.limit);
    let patients = read(&state, move |store, _| {
        let patients = patient_search::search(store, &query.criteria, n)?;
        patients
            .iter()
            .map(|p| patient_search::summary(store, p).map_err(Into::into))
            .collect::<Result<Vec<Value>, _>>()
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({ "patients": patients })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    patient_id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    mobile: Option<String>,
    #[serde(default)]
    carrier: Option<String>,
    preference: Preference,
    #[serde(default)]
    locales: Vec<String>,
    #[serde(default)]
    proxy_only: bool,
    /// A passphrase the patient chose (typed twice on the screen: both must agree).
    #[serde(default)]
    passphrase: Option<String>,
    #[serde(default)]
    passphrase_confirm: Option<String>,
    /// Generate one instead.
    #[serde(default)]
    generate_passphrase: bool,
}

/// `POST /api/members`: point-of-care enrollment.
pub async fn enroll(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, DEU)?;
    let request: EnrollBody = body(&bytes)?;
    let passphrase = chosen_passphrase(
        request.passphrase.as_deref(),
        request.passphrase_confirm.as_deref(),
        request.generate_passphrase,
    )?;
    let hashed = match passphrase.clone() {
        Some(p) => Some(blocking(move || secrets::hash_password(&p)).await?),
        None => None,
    };
    let generated = request.generate_passphrase.then(|| passphrase.clone()).flatten();
    let patient_id = request.patient_id.clone();
    let contact = Contact {
        email: request.email,
        mobile: request.mobile,
        carrier: request.carrier,
        preference: request.preference,
        locales: request.locales,
    };
    let journal = format!("enroll patient {patient_id} (point-of-care)");
    let (enrolled, _) = command(
        &state,
        "member enroll",
        &caller,
        journal,
        Some(patient_id.clone()),
        move |op, accounts| {
            enrollment::enroll(
                op,
                accounts,
                enrollment::Request {
                    patient_id,
                    contact,
                    proxy_only: request.proxy_only,
                    method: Method::PointOfCare,
                    passphrase_hash: hashed,
                    passphrase,
                },
            )
            .map(|(_, enrolled)| enrolled)
        },
    )
    .await?;
    let mut answer = serde_json::to_value(&enrolled).expect("serializes");
    // A generated passphrase is shown to the staff user once, to hand over.
    if let Some(p) = generated {
        answer["generated_passphrase"] = json!(p);
    }
    Ok(ok(StatusCode::CREATED, answer))
}

/// The one-time passphrase staff set at enrollment: typed (twice, both the same) or generated.
pub(super) fn chosen_passphrase(
    typed: Option<&str>,
    confirm: Option<&str>,
    generate: bool,
) -> Result<Option<String>, Response> {
    match (typed, generate) {
        (Some(_), true) => Err(super::reply::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "give a passphrase or ask for one to be generated, not both",
        )),
        (Some(p), false) => {
            if confirm != Some(p) {
                return Err(super::reply::error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "passphrase-mismatch",
                    "the passphrase and its confirmation differ",
                ));
            }
            if p.chars().count() < 6 || p.chars().count() > 128 {
                return Err(super::reply::error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "a passphrase has 6 to 128 characters",
                ));
            }
            Ok(Some(p.to_string()))
        }
        (None, true) => Ok(Some(secrets::new_passphrase())),
        (None, false) => Ok(None),
    }
}

#[derive(Deserialize)]
pub struct MemberQuery {
    #[serde(flatten)]
    criteria: members::Criteria,
    limit: Option<usize>,
}

/// `GET /api/members`: member search.
pub async fn search_members(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Query(query): Query<MemberQuery>,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let n = limit(query.limit);
    let found = read(&state, move |store, _| members::search(store, &query.criteria, n)).await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "members": found.iter().map(members::Summary::view).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/members/{id}`: the member, with their proxy relationships.
pub async fn member(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let (member, proxies) = read(&state, move |store, _| {
        let member = members::require(store, &id)?;
        Ok((member, proxies::listing(store, &id, &sessions::now())?))
    })
    .await?;
    // The member details page shows the member's proxy relationships, both ways.
    let mut view = member.view();
    view["proxies"] = json!({ "as_principal": proxies["as_principal"], "as_proxy": proxies["as_proxy"] });
    Ok(ok(StatusCode::OK, view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    mobile: Option<String>,
    #[serde(default)]
    carrier: Option<String>,
    preference: Preference,
    #[serde(default)]
    locales: Vec<String>,
}

impl ContactBody {
    pub(super) fn contact(self) -> Contact {
        Contact {
            email: self.email,
            mobile: self.mobile,
            carrier: self.carrier,
            preference: self.preference,
            locales: self.locales,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    contact: ContactBody,
    #[serde(default)]
    reason: String,
}

/// `PUT /api/members/{id}/contact`: contact details and preferences, with a reason.
pub async fn edit_contact(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let request: EditBody = body(&bytes)?;
    let journal = format!("edit contact of member {id}");
    let patient = id.clone();
    let (member, _) = command(
        &state,
        "member contact",
        &caller,
        journal,
        Some(id.clone()),
        move |op, _| members::edit_contact(op, &patient, request.contact.contact(), &request.reason),
    )
    .await?;
    Ok(ok(StatusCode::OK, member.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendBody {
    #[serde(default)]
    contact: Option<ContactBody>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/members/{id}/token/resend`: the same token again.
pub async fn resend(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let request: ResendBody = if bytes.is_empty() {
        ResendBody {
            contact: None,
            reason: None,
        }
    } else {
        body(&bytes)?
    };
    let journal = format!("resend token of member {id}");
    let patient = id.clone();
    let ((member, sent), _) = command(
        &state,
        "token resend",
        &caller,
        journal,
        Some(id.clone()),
        move |op, accounts| {
            tokens::resend(
                op,
                accounts,
                &patient,
                request.contact.map(ContactBody::contact),
                request.reason.as_deref(),
            )
        },
    )
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "member": member.view(), "notification": sent, "sent": sent.ok() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    #[serde(default)]
    days: u32,
    #[serde(default)]
    hours: u32,
    #[serde(default)]
    reason: String,
}

/// `POST /api/members/{id}/token/renew`: a new lifetime, no notification.
pub async fn renew(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let request: RenewBody = body(&bytes)?;
    let journal = format!("renew token of member {id}");
    let patient = id.clone();
    let (member, _) = command(
        &state,
        "token renew",
        &caller,
        journal,
        Some(id.clone()),
        move |op, accounts| {
            tokens::renew(
                op,
                accounts,
                &patient,
                request.days,
                request.hours,
                &request.reason,
            )
        },
    )
    .await?;
    Ok(ok(StatusCode::OK, json!({ "member": member.view() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegenerateBody {
    #[serde(default)]
    days: u32,
    #[serde(default)]
    hours: u32,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    notify: bool,
    #[serde(default)]
    contact: Option<ContactBody>,
}

/// `POST /api/members/{id}/token/regenerate`: a new token, the old one dead at once.
pub async fn regenerate(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let request: RegenerateBody = body(&bytes)?;
    let journal = format!("regenerate token of member {id}");
    let patient = id.clone();
    let ((member, sent), _) = command(
        &state,
        "token regenerate",
        &caller,
        journal,
        Some(id.clone()),
        move |op, accounts| {
            tokens::regenerate(
                op,
                accounts,
                &patient,
                request.days,
                request.hours,
                &request.reason,
                request.notify,
                request.contact.map(ContactBody::contact),
            )
        },
    )
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "member": member.view(), "notification": sent }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    #[serde(default)]
    reason: String,
    /// Deactivate as `inactive/minor`.
    #[serde(default)]
    minor: bool,
}

/// `POST /api/members/{id}/deactivate`.
pub async fn deactivate(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    status_change(state, caller, id, bytes, true).await
}

/// `POST /api/members/{id}/reactivate`.
pub async fn reactivate(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    status_change(state, caller, id, bytes, false).await
}

async fn status_change(
    state: AppState,
    caller: crate::domain::accounts::roles::Caller,
    id: String,
    bytes: Bytes,
    deactivate: bool,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let request: StatusBody = body(&bytes)?;
    if !deactivate && request.minor {
        return Err(super::reply::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "`minor` is for deactivation",
        ));
    }
    let (kind, verb) = if deactivate {
        ("member deactivate", "deactivate")
    } else {
        ("member reactivate", "reactivate")
    };
    let journal = format!("{verb} member {id}");
    let patient = id.clone();
    let (member, _) = command(&state, kind, &caller, journal, Some(id.clone()), move |op, _| {
        if deactivate {
            members::deactivate(op, &patient, request.minor, &request.reason)
        } else {
            members::reactivate(op, &patient, &request.reason)
        }
    })
    .await?;
    Ok(ok(StatusCode::OK, member.view()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/members/{id}/password-reset`: a reset link goes to the member.
pub async fn password_reset(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, MAM)?;
    let request: ResetBody = if bytes.is_empty() {
        ResetBody::default()
    } else {
        body(&bytes)?
    };
    let token = secrets::new_token();
    let journal = format!("password reset of member {id}");
    let patient = id.clone();
    let ((_, sent), _) = command(
        &state,
        "password reset",
        &caller,
        journal,
        Some(id.clone()),
        move |op, accounts| {
            tokens::start_reset(
                op,
                accounts,
                &patient,
                &token,
                "member.password.reset-link",
                request.reason.as_deref(),
            )
        },
    )
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "notification": sent, "sent": sent.ok() }),
    ))
}
