//! Enrollment, the one step all three ways in share: a patient gets a member record in status
//! `pending` with a fresh activation token, and the token is sent by their preference. Before
//! this step there is no enrollment status of any kind.
//!
//! Point-of-care (staff), self-requested (an approved request) and automated (an external
//! system) differ only in who asks and where the contact details come from.

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::members::{self, Contact, Member, Preference, Status};
use crate::domain::accounts::notify::Sent;
use crate::domain::accounts::tokens;
use crate::domain::mpi::patient_search;
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;

/// How a patient came to be enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PointOfCare,
    SelfRequested,
    Automated,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::PointOfCare => "point-of-care",
            Method::SelfRequested => "self-requested",
            Method::Automated => "automated",
        }
    }
}

/// What enrolling needs (secrets already hashed, off the committer thread).
#[derive(Debug, Clone)]
pub struct Request {
    pub patient_id: String,
    pub contact: Contact,
    pub proxy_only: bool,
    pub method: Method,
    /// argon2 hash of the one-time passphrase.
    pub passphrase_hash: Option<String>,
    /// The passphrase itself, only to send it when the site sends passphrases (never stored).
    pub passphrase: Option<String>,
}

/// What the enroller is told.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolled {
    pub member: Value,
    /// The activation notification: its deliveries and why any channel could not be used.
    pub notification: Sent,
    /// Whether the token went out through every channel the preference asks for.
    pub sent: bool,
    /// When it did not: the activation instructions, token included, to print for the member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// Enrolls a patient: member record, token, notification, audit record, in one write set.
pub fn enroll(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    request: Request,
) -> Result<(Member, Enrolled), Refusal> {
    request.contact.check()?;
    let settings = accounts.settings(op.tx)?;
    if settings.passphrase_required && request.passphrase_hash.is_none() {
        return Err(Refusal::new(
            crate::domain::refusal::Kind::Invalid,
            "passphrase-required",
            "this site requires a one-time passphrase: type one or generate one",
        ));
    }
    let patient = patient_search::load(op.tx, &request.patient_id)?
        .ok_or_else(|| Refusal::not_found(format!("no patient `{}`", request.patient_id)))?;
    if patient["active"] == json!(false) {
        return Err(Refusal::conflict(
            "patient-merged",
            format!("patient `{}` was merged into another record", request.patient_id),
        ));
    }
    if members::load(op.tx, &request.patient_id)?.is_some() {
        return Err(Refusal::conflict(
            "already-enrolled",
            format!("patient `{}` is already enrolled", request.patient_id),
        ));
    }
    let token = tokens::issue(
        op,
        accounts,
        &request.patient_id,
        1,
        settings.pending_user_expiration_hours,
    );
    let mut member = new_member(
        op,
        &request.patient_id,
        request.contact,
        request.method.name(),
        token,
    );
    member.proxy_only = request.proxy_only;
    member.passphrase_hash = request.passphrase_hash;
    members::save(op, None, &mut member)?;
    // At the point of care staff hand the passphrase over unless the site sends it; a member
    // enrolled remotely (approved request, external system) can only get it in the message.
    let send_passphrase = accounts.config.send_passphrase || request.method != Method::PointOfCare;
    let sendable = request.passphrase.as_deref().filter(|_| send_passphrase);
    let notification = tokens::send_token(op, accounts, &member, sendable);
    let sent = notification.ok();
    let instructions =
        (!sent).then(|| tokens::instructions(accounts, &member, request.passphrase.as_deref()));
    audit::record(
        op,
        "member.enroll",
        &audit::member_target(&member.patient_id),
        None,
        json!({
            "method": member.enrollment,
            "proxy_only": member.proxy_only,
            "preference": member.contact.preference,
            "expires_at": member.token.expires_at,
            "deliveries": notification.deliveries,
            "failures": notification.failures,
        }),
    );
    let enrolled = Enrolled {
        member: member.view(),
        notification,
        sent,
        instructions,
    };
    Ok((member, enrolled))
}

/// An account for a synced patient who signed in with an external credential and had none
/// (external credentials only: there is no other way in). It is active at once: the provider
/// vouched for the person, so there is no activation token to send (one is issued, used, for the
/// record's shape) and no username or password.
pub fn from_credential(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    provider: &str,
) -> Result<Member, Refusal> {
    let patient = patient_search::load(op.tx, patient_id)?
        .ok_or_else(|| Refusal::not_found(format!("no patient `{patient_id}`")))?;
    if patient["active"] == json!(false) {
        return Err(Refusal::conflict(
            "patient-merged",
            format!("patient `{patient_id}` was merged into another record"),
        ));
    }
    let mut token = tokens::issue(op, accounts, patient_id, 1, 1);
    token.used_at = Some(op.now.clone());
    let contact = contact_from_patient(&patient);
    let mut member = new_member(op, patient_id, contact, "external-credential", token);
    member.status = Status::Active;
    member.activated_at = Some(op.now.clone());
    members::save(op, None, &mut member)?;
    audit::record(
        op,
        "member.enroll",
        &audit::member_target(patient_id),
        None,
        json!({ "method": member.enrollment, "provider": provider, "status": "active" }),
    );
    Ok(member)
}

/// A new pending member record (before its search index is written by `members::save`).
fn new_member(
    op: &Op<'_, '_>,
    patient_id: &str,
    contact: Contact,
    method: &str,
    token: members::TokenState,
) -> Member {
    Member {
        patient_id: patient_id.to_string(),
        status: Status::Pending,
        proxy_only: false,
        contact,
        enrollment: method.into(),
        enrolled_at: op.now.clone(),
        enrolled_by: op.actor.clone(),
        token,
        passphrase_hash: None,
        username: None,
        password_hash: None,
        activated_at: None,
        reset: None,
        updated_at: op.now.clone(),
        name: String::new(),
        birth_date: None,
        index_terms: vec![],
        session_epoch: 0,
    }
}

/// Contact details from a patient record, for automated enrollment when the caller gives none.
pub fn contact_from_patient(patient: &Value) -> Contact {
    let telecom = |system: &str, uses: &[&str]| -> Option<String> {
        let all: Vec<&Value> = patient["telecom"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["system"] == system)
            .collect();
        all.iter()
            .find(|t| uses.iter().any(|u| t["use"] == *u))
            .or(all.first())
            .and_then(|t| t["value"].as_str())
            .map(str::to_string)
    };
    let email = telecom("email", &["home"]);
    let mobile = telecom("phone", &["mobile"]);
    let preference = match (&email, &mobile) {
        (Some(_), Some(_)) | (Some(_), None) | (None, None) => Preference::Email,
        (None, Some(_)) => Preference::Text,
    };
    let locales = patient["communication"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["language"]["coding"][0]["code"].as_str())
        .map(str::to_string)
        .collect();
    Contact {
        email,
        mobile,
        carrier: None,
        preference,
        locales,
    }
}
