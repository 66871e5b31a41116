//! Proxy relationships: a proxy acts for a principal (a parent for a child, a carer for a
//! patient) until the relationship's expiry, or until it is revoked.
//!
//! Creating one finds or enrolls each party (or registers a person the MPI does not know, as a
//! local patient record), under the rules of the credential mode: with external credentials
//! only, both must already be active members; otherwise anyone not flagged inactive may take
//! part and missing accounts are created on the way. Both parties are notified of a creation, a
//! revocation and an expiry. Each relationship is also kept as a FHIR `RelatedPerson`
//! (`RelatedPerson/<relationship id>`), written in the same commit.
//!
//! Expiry is enforced when access is checked (past `expires_at` a relationship grants nothing,
//! whatever its stored status); the `proxy-expiry` job then marks it expired and notifies.
//!
//! Keys: `Proxy`: id -> the relationship; `ProxyByMember`: patient id -> the ids of the
//! relationships they take part in, either side (point reads, so a command sees its own writes);
//! `ProxyExpiry`: `expires_at \0 id` while active (RFC 3339 UTC times of one format sort in time
//! order, so the job reads only the relationships that are due).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::core::{Context, Projection};
use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::enrollment::{self, Enrolled, Method};
use crate::domain::accounts::members::{self, Contact, Member, Status};
use crate::domain::accounts::notify::{self, Channels, Sent};
use crate::domain::accounts::tokens::passed;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::{mpi::patient_search, mpi::patients, resources};
use crate::store::{Changed, Keyspace, Overlay, Reader, Store, StoreError};

/// Ids of proxy relationships (and of their RelatedPerson) start with this.
pub const ID_PREFIX: &str = "proxy-";

/// The FHIR extension on a RelatedPerson naming the proxy's own Patient record.
pub const PROXY_PATIENT_EXTENSION: &str = "urn:tributary:fhir:proxy-patient";

/// The tag on a patient record registered here for a person the MPI does not know.
pub const REGISTERED_TAG: (&str, &str) = ("urn:tributary:source", "registered");

/// A relationship as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stored {
    Active,
    Revoked,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub id: String,
    /// Patient id of the person acted for.
    pub principal: String,
    /// Patient id of the person acting.
    pub proxy: String,
    /// A configured relationship code (the proxy's relationship to the principal), its display
    /// and its code system, as they were when it was made.
    pub relationship: String,
    pub relationship_display: String,
    #[serde(default = "default_system")]
    pub relationship_system: String,
    /// When it stops granting access (RFC 3339, UTC).
    pub expires_at: String,
    pub reason: String,
    pub status: Stored,
    pub created_at: String,
    pub created_by: String,
    /// When it was revoked or marked expired, by whom, and the revocation's reason.
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub ended_by: Option<String>,
    #[serde(default)]
    pub end_reason: Option<String>,
}

fn default_system() -> String {
    crate::config::ROLE_CODE_SYSTEM.to_string()
}

impl Relationship {
    /// `active`, `expired` (past its expiry, marked or not yet) or `revoked`.
    pub fn status_at(&self, now: &str) -> &'static str {
        match self.status {
            Stored::Revoked => "revoked",
            Stored::Expired => "expired",
            Stored::Active if passed(&self.expires_at, now) => "expired",
            Stored::Active => "active",
        }
    }

    /// Whether the proxy may act for the principal at `now`.
    pub fn grants(&self, now: &str) -> bool {
        self.status_at(now) == "active"
    }

    /// What the API shows, with both parties' names and statuses.
    pub fn view(&self, reader: &dyn Reader, now: &str) -> Result<Value, StoreError> {
        let party = |id: &str| -> Result<Value, StoreError> {
            Ok(match members::load(reader, id)? {
                Some(m) => json!({ "patient_id": id, "name": m.name, "member_status": m.status.name(),
                    "proxy_only": m.proxy_only }),
                None => json!({ "patient_id": id }),
            })
        };
        Ok(json!({
            "id": self.id,
            "principal": party(&self.principal)?,
            "proxy": party(&self.proxy)?,
            "relationship": { "code": self.relationship, "display": self.relationship_display },
            "expires_at": self.expires_at,
            "reason": self.reason,
            "status": self.status_at(now),
            "grants_access": self.grants(now),
            "created_at": self.created_at,
            "created_by": self.created_by,
            "ended_at": self.ended_at,
            "ended_by": self.ended_by,
            "end_reason": self.end_reason,
            "related_person": format!("RelatedPerson/{}", self.id),
        }))
    }
}

/// A person the MPI does not know, registered to act as a proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub family: String,
    #[serde(default)]
    pub given: Vec<String>,
    #[serde(default)]
    pub birth_date: Option<String>,
    /// `male`, `female`, `other` or `unknown`.
    #[serde(default)]
    pub gender: Option<String>,
}

/// Who a party is: a synced patient (a member or not), or a person to register.
#[derive(Debug, Clone)]
pub enum Who {
    Patient(String),
    Register(Registration),
}

/// An account to create for a party who has none (secrets already hashed).
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// None: the contact details of the patient record.
    pub contact: Option<Contact>,
    pub proxy_only: Option<bool>,
    pub passphrase_hash: Option<String>,
    pub passphrase: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Party {
    pub who: Who,
    pub enroll: Option<Enrollment>,
}

/// What creating a relationship needs.
#[derive(Debug, Clone)]
pub struct NewRelationship {
    pub principal: Party,
    pub proxy: Party,
    pub relationship: String,
    /// RFC 3339 (normalized by [`expiry`]).
    pub expires_at: String,
    pub reason: String,
}

/// What the staff user is told: the relationship, the accounts made on the way (with their
/// activation notifications or printable instructions) and the notifications of both parties.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub relationship: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_enrolled: Option<Enrolled>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_enrolled: Option<Enrolled>,
    /// The patient id of the proxy, when they were registered here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<String>,
    pub notifications: Value,
}

/// An expiry as staff give it: a date (`2027-06-30`: access stops at the start of that day,
/// UTC) or a date and time; it must lie in the future. Returns the normalized RFC 3339 time.
pub fn expiry(date: Option<&str>, time: Option<&str>, now: &str) -> Result<String, Refusal> {
    use chrono::{NaiveDate, SecondsFormat, Utc};
    let at = match (date, time) {
        (Some(d), None) => NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
            .map_err(|_| Refusal::invalid(format!("expires_on `{d}` is not a date (YYYY-MM-DD)")))?
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc(),
        (None, Some(t)) => chrono::DateTime::parse_from_rfc3339(t.trim())
            .map_err(|_| Refusal::invalid(format!("expires_at `{t}` is not an RFC 3339 date and time")))?
            .with_timezone(&Utc),
        (Some(_), Some(_)) => return Err(Refusal::invalid("give expires_on or expires_at, not both")),
        (None, None) => {
            return Err(Refusal::new(
                Kind::Invalid,
                "expiry-required",
                "an expiration date is required (expires_on)",
            ));
        }
    };
    let normalized = at.to_rfc3339_opts(SecondsFormat::Millis, true);
    if passed(&normalized, now) {
        return Err(Refusal::new(
            Kind::Invalid,
            "expiry-past",
            format!("the expiration {normalized} is not in the future"),
        ));
    }
    Ok(normalized)
}

pub fn load(reader: &dyn Reader, id: &str) -> Result<Option<Relationship>, StoreError> {
    match reader.get(Keyspace::Proxy, id.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::corrupt(format!("proxy relationship {id} is not valid"), e)),
        None => Ok(None),
    }
}

pub fn require(reader: &dyn Reader, id: &str) -> Result<Relationship, Refusal> {
    load(reader, id)?.ok_or_else(|| Refusal::not_found(format!("no proxy relationship `{id}`")))
}

fn expiry_key(relationship: &Relationship) -> Vec<u8> {
    format!("{}\0{}", relationship.expires_at, relationship.id).into_bytes()
}

/// Ids of the relationships a patient takes part in, either side, oldest first.
fn ids_of(reader: &dyn Reader, patient_id: &str) -> Result<Vec<String>, StoreError> {
    match reader.get(Keyspace::ProxyByMember, patient_id.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::corrupt(format!("proxy list of {patient_id} is not valid"), e)),
        None => Ok(vec![]),
    }
}

/// Every relationship a patient takes part in, either side, oldest first.
pub fn of_member(reader: &dyn Reader, patient_id: &str) -> Result<Vec<Relationship>, StoreError> {
    let mut found = vec![];
    for id in ids_of(reader, patient_id)? {
        if let Some(relationship) = load(reader, &id)? {
            found.push(relationship);
        }
    }
    Ok(found)
}

/// A member's relationships as the API lists them: as principal (who acts for them) and as
/// proxy (whom they act for), active and inactive.
pub fn listing(store: &dyn Reader, patient_id: &str, now: &str) -> Result<Value, StoreError> {
    let mut as_principal = vec![];
    let mut as_proxy = vec![];
    for relationship in of_member(store, patient_id)? {
        let view = relationship.view(store, now)?;
        if relationship.principal == patient_id {
            as_principal.push(view);
        } else {
            as_proxy.push(view);
        }
    }
    Ok(json!({ "patient_id": patient_id, "as_principal": as_principal, "as_proxy": as_proxy }))
}

/// The relationship through which `proxy` may act for `principal` at `now`, if one grants it.
pub fn granting(
    store: &dyn Reader,
    proxy: &str,
    principal: &str,
    now: &str,
) -> Result<Option<Relationship>, StoreError> {
    Ok(of_member(store, proxy)?
        .into_iter()
        .find(|r| r.proxy == proxy && r.principal == principal && r.grants(now)))
}

/// Ids of the active relationships whose expiry has come, soonest first, at most `limit` (the
/// job marks them, which takes them out of the index, and asks again).
pub fn due(store: &dyn Store, now: &str, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut ids = vec![];
    for (key, _) in store.scan_prefix(Keyspace::ProxyExpiry, &[], limit)? {
        let text = String::from_utf8_lossy(&key).into_owned();
        let Some((at, id)) = text.split_once('\0') else {
            continue;
        };
        if !passed(at, now) {
            break;
        }
        ids.push(id.to_string());
    }
    Ok(ids)
}

fn save(op: &mut Op<'_, '_>, relationship: &Relationship) {
    op.tx.put(
        Keyspace::Proxy,
        relationship.id.as_bytes().to_vec(),
        serde_json::to_vec(relationship).expect("a relationship serializes"),
    );
}

/// Creates a relationship: both parties found, enrolled or registered as the credential mode
/// allows, the record, its RelatedPerson, both notifications and the audit records, in one
/// write set.
pub fn create(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    request: NewRelationship,
) -> Result<Created, Refusal> {
    if request.reason.trim().is_empty() {
        return Err(Refusal::invalid("a reason is required"));
    }
    let display = accounts
        .proxies
        .display_of(&request.relationship)
        .ok_or_else(|| {
            Refusal::new(
                Kind::Invalid,
                "unknown-relationship",
                format!(
                    "`{}` is not a relationship type (known: {})",
                    request.relationship,
                    accounts.proxies.codes().join(", ")
                ),
            )
        })?
        .to_string();
    if passed(&request.expires_at, &op.now) {
        return Err(Refusal::new(
            Kind::Invalid,
            "expiry-past",
            "the expiration is not in the future",
        ));
    }
    if let (Who::Patient(a), Who::Patient(b)) = (&request.principal.who, &request.proxy.who)
        && a == b
    {
        return Err(Refusal::invalid("a person cannot be their own proxy"));
    }
    if matches!(request.principal.who, Who::Register(_)) {
        return Err(Refusal::invalid(
            "the principal is a synced patient (`patient_id`): only a proxy is registered here",
        ));
    }
    let (principal, principal_enrolled, _) = take_part(op, accounts, request.principal, "principal")?;
    let (proxy, proxy_enrolled, registered) = take_part(op, accounts, request.proxy, "proxy")?;
    if let Some(existing) = of_member(op.tx, &principal.patient_id)?
        .into_iter()
        .find(|r| r.principal == principal.patient_id && r.proxy == proxy.patient_id && r.grants(&op.now))
    {
        return Err(Refusal::conflict(
            "already-related",
            format!(
                "{} already acts for {} (relationship {})",
                proxy.patient_id, principal.patient_id, existing.id
            ),
        ));
    }
    let relationship = Relationship {
        id: format!("{ID_PREFIX}{}", op.seq),
        principal: principal.patient_id.clone(),
        proxy: proxy.patient_id.clone(),
        relationship: request.relationship,
        relationship_display: display,
        relationship_system: accounts.proxies.relationship_system.clone(),
        expires_at: request.expires_at,
        reason: request.reason.trim().to_string(),
        status: Stored::Active,
        created_at: op.now.clone(),
        created_by: op.actor.clone(),
        ended_at: None,
        ended_by: None,
        end_reason: None,
    };
    save(op, &relationship);
    for party in [&relationship.principal, &relationship.proxy] {
        let mut ids = ids_of(op.tx, party)?;
        ids.push(relationship.id.clone());
        op.tx.put(
            Keyspace::ProxyByMember,
            party.as_bytes().to_vec(),
            serde_json::to_vec(&ids).expect("ids serialize"),
        );
    }
    op.tx
        .put(Keyspace::ProxyExpiry, expiry_key(&relationship), vec![]);
    write_related_person(op.tx, &relationship, &op.now)?;
    let notifications = notify_both(op, accounts, &relationship, &principal, &proxy, "proxy-created");
    record(
        op,
        "proxy.create",
        &relationship,
        Some(&relationship.reason),
        &notifications,
    );
    Ok(Created {
        relationship: relationship.view(op.tx, &op.now)?,
        principal_enrolled,
        proxy_enrolled,
        registered,
        notifications,
    })
}

/// Revokes an active relationship; both parties are notified.
pub fn revoke(op: &mut Op<'_, '_>, accounts: &Accounts, id: &str, reason: &str) -> Result<Value, Refusal> {
    if reason.trim().is_empty() {
        return Err(Refusal::invalid("a reason is required"));
    }
    let relationship = require(op.tx, id)?;
    let status = relationship.status_at(&op.now);
    if status != "active" {
        return Err(Refusal::conflict(
            "not-active",
            format!("relationship `{id}` is {status} already"),
        ));
    }
    end(op, accounts, relationship, Stored::Revoked, Some(reason.trim()))
}

/// Marks a relationship whose expiry has come as expired and notifies both parties; None when
/// it no longer needs it (revoked, or marked by an earlier run).
pub fn expire(op: &mut Op<'_, '_>, accounts: &Accounts, id: &str) -> Result<Option<Value>, Refusal> {
    let Some(relationship) = load(op.tx, id)? else {
        return Ok(None);
    };
    if relationship.status != Stored::Active || !passed(&relationship.expires_at, &op.now) {
        return Ok(None);
    }
    end(op, accounts, relationship, Stored::Expired, None).map(Some)
}

fn end(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    mut relationship: Relationship,
    to: Stored,
    reason: Option<&str>,
) -> Result<Value, Refusal> {
    op.tx.delete(Keyspace::ProxyExpiry, expiry_key(&relationship));
    relationship.status = to;
    relationship.ended_at = Some(op.now.clone());
    relationship.ended_by = Some(op.actor.clone());
    relationship.end_reason = reason.map(str::to_string);
    save(op, &relationship);
    let principal = members::require(op.tx, &relationship.principal)?;
    let proxy = members::require(op.tx, &relationship.proxy)?;
    write_related_person(op.tx, &relationship, &op.now)?;
    let (workflow, action) = match to {
        Stored::Revoked => ("proxy-revoked", "proxy.revoke"),
        _ => ("proxy-expired", "proxy.expire"),
    };
    let notifications = notify_both(op, accounts, &relationship, &principal, &proxy, workflow);
    record(op, action, &relationship, reason, &notifications);
    let mut view = relationship.view(op.tx, &op.now)?;
    view["notifications"] = notifications;
    Ok(view)
}

/// Finds, enrolls or registers one party under the credential mode's rules; returns the member,
/// the enrollment made for them and the id of a patient registered for them.
fn take_part(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    party: Party,
    side: &str,
) -> Result<(Member, Option<Enrolled>, Option<String>), Refusal> {
    let external_only = !accounts.credentials.mode.get_ref().portal();
    let (patient_id, registered) = match party.who {
        Who::Patient(id) => (id, None),
        Who::Register(registration) => {
            if external_only {
                return Err(Refusal::conflict(
                    "registration-not-allowed",
                    format!(
                        "with external credentials only, the {side} must already be an active member: a person outside the MPI cannot be registered here"
                    ),
                ));
            }
            let id = register(op, &registration, party.enroll.as_ref(), side)?;
            (id.clone(), Some(id))
        }
    };
    if let Some(member) = members::load(op.tx, &patient_id)? {
        let allowed = if external_only {
            member.status == Status::Active
        } else {
            matches!(member.status, Status::Active | Status::Pending)
        };
        if !allowed {
            let code = if external_only {
                "not-active-member"
            } else {
                "member-inactive"
            };
            return Err(Refusal::conflict(
                code,
                format!(
                    "the {side} `{patient_id}` is {}: {}",
                    member.status.name(),
                    if external_only {
                        "with external credentials only, both parties must be active members"
                    } else {
                        "a member flagged inactive cannot take part in a proxy relationship"
                    }
                ),
            ));
        }
        return Ok((member, None, registered));
    }
    if external_only {
        return Err(Refusal::conflict(
            "not-active-member",
            format!(
                "the {side} `{patient_id}` has no account: with external credentials only, they sign in with their external credential first"
            ),
        ));
    }
    let patient = patient_search::load(op.tx, &patient_id)?
        .ok_or_else(|| Refusal::not_found(format!("no patient `{patient_id}` ({side})")))?;
    let enroll = party.enroll.unwrap_or(Enrollment {
        contact: None,
        proxy_only: None,
        passphrase_hash: None,
        passphrase: None,
    });
    let contact = enroll
        .contact
        .unwrap_or_else(|| enrollment::contact_from_patient(&patient));
    let (member, enrolled) = enrollment::enroll(
        op,
        accounts,
        enrollment::Request {
            patient_id,
            contact,
            // A person registered only to act for someone has no records of their own to see.
            proxy_only: enroll.proxy_only.unwrap_or(registered.is_some()),
            method: Method::PointOfCare,
            passphrase_hash: enroll.passphrase_hash,
            passphrase: enroll.passphrase,
        },
    )?;
    Ok((member, Some(enrolled), registered))
}

/// Writes a local patient record for a person the MPI does not know; returns its id.
fn register(
    op: &mut Op<'_, '_>,
    registration: &Registration,
    enroll: Option<&Enrollment>,
    side: &str,
) -> Result<String, Refusal> {
    let family = registration.family.trim();
    if family.is_empty() {
        return Err(Refusal::invalid(format!(
            "the {side} to register needs a family name"
        )));
    }
    if let Some(birth) = &registration.birth_date
        && chrono::NaiveDate::parse_from_str(birth, "%Y-%m-%d").is_err()
    {
        return Err(Refusal::invalid(format!(
            "birth_date `{birth}` is not a date (YYYY-MM-DD)"
        )));
    }
    if let Some(gender) = &registration.gender
        && !["male", "female", "other", "unknown"].contains(&gender.as_str())
    {
        return Err(Refusal::invalid(format!(
            "gender `{gender}` is not male, female, other or unknown"
        )));
    }
    let Some(contact) = enroll.and_then(|e| e.contact.as_ref()) else {
        return Err(Refusal::invalid(format!(
            "the {side} to register needs contact details (email and/or mobile phone) to be told of the relationship"
        )));
    };
    contact.check()?;
    let mut telecom = vec![];
    if let Some(email) = &contact.email {
        telecom.push(json!({ "system": "email", "value": email.trim(), "use": "home" }));
    }
    if let Some(mobile) = &contact.mobile {
        telecom.push(json!({ "system": "phone", "value": mobile.trim(), "use": "mobile" }));
    }
    let mut patient = json!({
        "resourceType": "Patient",
        "meta": { "tag": [{ "system": REGISTERED_TAG.0, "code": REGISTERED_TAG.1,
            "display": "registered for a proxy relationship; not in the MPI" }] },
        "active": true,
        "name": [{ "family": family, "given": registration.given }],
        "telecom": telecom,
    });
    if let Some(birth) = &registration.birth_date {
        patient["birthDate"] = json!(birth);
    }
    if let Some(gender) = &registration.gender {
        patient["gender"] = json!(gender);
    }
    let id = patients::new_id(op.tx, &patient, op.seq, 0)?;
    let now = op.now.clone();
    patients::replace(op.tx, &id, &patient, &now).map_err(|e| match e {
        patients::ApplyError::Store(s) => Refusal::from(s),
        other => Refusal::conflict("registration-failed", other.to_string()),
    })?;
    audit::record(
        op,
        "patient.register",
        &format!("patient/{id}"),
        None,
        json!({ "side": side, "family": family }),
    );
    Ok(id)
}

/// The relationship as a FHIR RelatedPerson: the principal as `patient`, the proxy's name and
/// contact (from their patient record and member record as they are in `tx`), the relationship
/// code, the period it grants access in. A new version is written only when something changed.
fn write_related_person(
    tx: &mut Overlay<'_>,
    relationship: &Relationship,
    now: &str,
) -> Result<(), StoreError> {
    let patient = patient_search::load(tx, &relationship.proxy)?.unwrap_or(Value::Null);
    let contact = members::load(tx, &relationship.proxy)?.map(|m| m.contact);
    let mut telecom = vec![];
    if let Some(email) = contact.as_ref().and_then(|c| c.email.as_ref()) {
        telecom.push(json!({ "system": "email", "value": email }));
    }
    if let Some(mobile) = contact.as_ref().and_then(|c| c.mobile.as_ref()) {
        telecom.push(json!({ "system": "phone", "value": mobile, "use": "mobile" }));
    }
    let mut person = json!({
        "resourceType": "RelatedPerson",
        "identifier": [{ "system": "urn:tributary:proxy-relationship", "value": relationship.id }],
        "active": relationship.status == Stored::Active,
        "patient": { "reference": format!("Patient/{}", relationship.principal) },
        "relationship": [{ "coding": [{ "system": relationship.relationship_system,
            "code": relationship.relationship, "display": relationship.relationship_display }] }],
        // Access ends at the expiry, or earlier when revoked.
        "period": { "start": relationship.created_at,
            "end": relationship.ended_at.as_ref().map_or(&relationship.expires_at, |e| e.min(&relationship.expires_at)) },
        "extension": [{ "url": PROXY_PATIENT_EXTENSION,
            "valueReference": { "reference": format!("Patient/{}", relationship.proxy) } }],
    });
    if let Some(names) = patient["name"].as_array().filter(|n| !n.is_empty()) {
        person["name"] = json!(names);
    }
    for field in ["gender", "birthDate"] {
        if let Some(value) = patient.get(field).filter(|v| !v.is_null()) {
            person[field] = value.clone();
        }
    }
    if !telecom.is_empty() {
        person["telecom"] = json!(telecom);
    }
    if let Some(resources::Current::Live(mut current)) =
        resources::read(tx, "RelatedPerson", &relationship.id)?
    {
        if let Some(object) = current.as_object_mut() {
            object.remove("id");
            object.remove("meta");
        }
        if current == person {
            return Ok(());
        }
    }
    resources::put(tx, "RelatedPerson", &relationship.id, person, now)?;
    Ok(())
}

/// The RelatedPerson of every relationship in which a member is the proxy follows their
/// patient and member records: a projection on every member change (a contact edit, a feed
/// renaming the patient, which the member search entries follow first).
pub struct RelatedPersons;

impl Projection for RelatedPersons {
    fn follows(&self, kind: &str) -> bool {
        kind == members::MEMBER
    }

    fn project(&self, ctx: &mut Context<'_, '_>, changed: &[Changed]) -> Result<(), StoreError> {
        for member in changed {
            follow_proxy(ctx.tx, &member.id, ctx.now)?;
        }
        Ok(())
    }
}

/// Keeps the RelatedPerson of every relationship in which `patient_id` is the proxy in step
/// with their patient and member records.
pub fn follow_proxy(tx: &mut Overlay<'_>, patient_id: &str, now: &str) -> Result<(), StoreError> {
    for relationship in of_member(tx, patient_id)? {
        if relationship.proxy == patient_id {
            write_related_person(tx, &relationship, now)?;
        }
    }
    Ok(())
}

fn notify_both(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    relationship: &Relationship,
    principal: &Member,
    proxy: &Member,
    workflow: &str,
) -> Value {
    let expires = relationship
        .expires_at
        .get(..10)
        .unwrap_or(&relationship.expires_at);
    let sent = |op: &mut Op<'_, '_>, to: &Member| -> Sent {
        let greeting = to.greeting();
        let vars = [
            ("name", greeting.as_str()),
            ("principal", principal.name.as_str()),
            ("proxy", proxy.name.as_str()),
            ("relationship", relationship.relationship_display.as_str()),
            ("expires_on", expires),
            ("portal_url", accounts.config.portal_url.as_str()),
        ];
        notify::send(
            op,
            accounts,
            Some(&to.patient_id),
            &to.contact,
            Channels::Preferred,
            workflow,
            &vars,
        )
    };
    let to_principal = sent(op, principal);
    let to_proxy = sent(op, proxy);
    json!({ "principal": to_principal, "proxy": to_proxy })
}

/// An audit record on each party's trail.
fn record(
    op: &mut Op<'_, '_>,
    action: &str,
    relationship: &Relationship,
    reason: Option<&str>,
    notifications: &Value,
) {
    let details = json!({
        "relationship_id": relationship.id,
        "principal": relationship.principal,
        "proxy": relationship.proxy,
        "relationship": relationship.relationship,
        "expires_at": relationship.expires_at,
        "notifications": notifications,
    });
    for party in [&relationship.principal, &relationship.proxy] {
        audit::record(op, action, &audit::member_target(party), reason, details.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: &str = "2026-11-25T10:00:00.000Z";

    fn relationship(status: Stored, expires_at: &str) -> Relationship {
        Relationship {
            id: "proxy-1".into(),
            principal: "a".into(),
            proxy: "b".into(),
            relationship: "PRN".into(),
            relationship_display: "parent".into(),
            relationship_system: default_system(),
            expires_at: expires_at.into(),
            reason: "r".into(),
            status,
            created_at: NOW.into(),
            created_by: "client:manager".into(),
            ended_at: None,
            ended_by: None,
            end_reason: None,
        }
    }

    #[test]
    fn an_active_relationship_grants_nothing_from_its_expiry_on_even_before_it_is_marked() {
        let r = relationship(Stored::Active, "2026-11-25T10:00:01.000Z");
        assert!(r.grants(NOW));
        assert!(
            !r.grants("2026-11-25T10:00:01.000Z"),
            "the expiry itself grants nothing"
        );
        assert_eq!(r.status_at("2026-11-26T00:00:00.000Z"), "expired");
        assert!(!relationship(Stored::Revoked, "2099-01-01T00:00:00.000Z").grants(NOW));
        assert!(!relationship(Stored::Expired, "2099-01-01T00:00:00.000Z").grants(NOW));
    }

    #[test]
    fn an_expiry_is_a_future_date_or_time_normalized_to_utc() {
        assert_eq!(
            expiry(Some("2027-06-30"), None, NOW).unwrap(),
            "2027-06-30T00:00:00.000Z"
        );
        assert_eq!(
            expiry(None, Some("2026-11-25T12:30:00+02:00"), NOW).unwrap(),
            "2026-11-25T10:30:00.000Z"
        );
        assert_eq!(
            expiry(Some("2026-11-25"), None, NOW).unwrap_err().code,
            "expiry-past"
        );
        assert_eq!(expiry(None, None, NOW).unwrap_err().code, "expiry-required");
        assert!(expiry(Some("2027-02-30"), None, NOW).is_err());
        assert!(expiry(Some("2027-06-30"), Some("2027-06-30T00:00:00Z"), NOW).is_err());
    }

    proptest! {
        /// Whatever staff type, the answer is a refusal or a future time in the one format the
        /// expiry index sorts by.
        #[test]
        fn any_text_gives_a_refusal_or_a_sortable_future_time(date in ".{0,40}", time in ".{0,40}", which in 0u8..3) {
            let (d, t) = match which {
                0 => (Some(date.as_str()), None),
                1 => (None, Some(time.as_str())),
                _ => (Some(date.as_str()), Some(time.as_str())),
            };
            if let Ok(at) = expiry(d, t, NOW) {
                prop_assert_eq!(at.len(), 24);
                prop_assert!(at.ends_with('Z'));
                prop_assert!(at.as_str() > NOW);
            }
        }

        #[test]
        fn real_dates_are_read(y in 2027i32..2200, m in 1u32..13, d in 1u32..29) {
            let text = format!("{y:04}-{m:02}-{d:02}");
            prop_assert_eq!(expiry(Some(&text), None, NOW).unwrap(), format!("{text}T00:00:00.000Z"));
        }
    }
}
