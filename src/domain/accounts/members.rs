//! Members: patients with a portal account. The record (status, contact details and
//! preferences, the current token's state, credentials as hashes), its search index, the
//! member search, and the status changes staff make (contact edits, deactivate, reactivate).
//!
//! Membership status is `pending` (token issued, not activated), `active`, `inactive` or
//! `inactive/minor`; "activated" members are the last three. A member exists only once a token
//! has been issued, so "enrolled" is simply "has a member record".
//!
//! Search index (`MemberIndex`): `kind, group, term \0 patient id`, where kind is `n` (a name
//! part), `b` (birth date), `m` (an identifier value, the MRN among them), `e` (email), `p`
//! (phone digits), and group is `P` (pending) or `A` (activated); so a search by any one field,
//! filtered by status, is one prefix scan. The terms a member was indexed under are kept in its
//! record, so re-indexing removes exactly those.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::core::{Context, Projection};
use crate::domain::accounts::audit;
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::store::{Changed, Keyspace, Overlay, Reader, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "pending")]
    Pending,
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "inactive")]
    Inactive,
    #[serde(rename = "inactive/minor")]
    InactiveMinor,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::InactiveMinor => "inactive/minor",
        }
    }

    /// Activated members: they completed activation (whatever their status now).
    pub fn activated(self) -> bool {
        self != Status::Pending
    }

    fn group(self) -> u8 {
        if self.activated() { b'A' } else { b'P' }
    }
}

/// How a member wants to be told things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    Email,
    Text,
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    /// The mobile phone's carrier ("phone provider").
    #[serde(default)]
    pub carrier: Option<String>,
    pub preference: Preference,
    /// Preferred locales for screens and notifications, first first.
    #[serde(default)]
    pub locales: Vec<String>,
}

impl Contact {
    /// Checks the shape of what was given (an address that is there must look like one).
    pub fn check(&self) -> Result<(), Refusal> {
        if let Some(email) = &self.email {
            let email = email.trim();
            let ok = email.len() <= 254
                && email
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !email.contains(char::is_whitespace);
            if !ok {
                return Err(Refusal::invalid(format!("`{email}` is not an email address")));
            }
        }
        if let Some(mobile) = &self.mobile {
            let digits = mobile.chars().filter(char::is_ascii_digit).count();
            let allowed = mobile.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
            if !(7..=15).contains(&digits) || !allowed {
                return Err(Refusal::invalid(format!(
                    "`{mobile}` is not a mobile phone number"
                )));
            }
        }
        for locale in &self.locales {
            let ok = !locale.is_empty()
                && locale.len() <= 16
                && locale
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(Refusal::invalid(format!("`{locale}` is not a locale")));
            }
        }
        Ok(())
    }
}

/// The state of the member's current activation token (its hash lives in the token index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenState {
    /// 1 for the first token, +1 for each regeneration; an older one is superseded.
    pub generation: u32,
    /// The per-token random nonce the token is derived from (with the server key).
    pub nonce: String,
    /// Keyed hash of the token.
    pub hash: String,
    pub issued_at: String,
    pub expires_at: String,
    #[serde(default)]
    pub used_at: Option<String>,
}

/// A staff- or member-requested password reset link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetState {
    pub generation: u32,
    pub hash: String,
    pub expires_at: String,
    #[serde(default)]
    pub used_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub patient_id: String,
    pub status: Status,
    pub proxy_only: bool,
    pub contact: Contact,
    /// `point-of-care`, `self-requested` or `automated`.
    pub enrollment: String,
    pub enrolled_at: String,
    pub enrolled_by: String,
    pub token: TokenState,
    /// argon2 hash of the one-time passphrase, when one was set.
    #[serde(default)]
    pub passphrase_hash: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// argon2 hash of the password.
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub activated_at: Option<String>,
    #[serde(default)]
    pub reset: Option<ResetState>,
    pub updated_at: String,
    /// The patient's name and birth date when last indexed (for listings).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub birth_date: Option<String>,
    /// `kind:term` entries this member is indexed under.
    #[serde(default)]
    pub index_terms: Vec<String>,
    /// Sessions opened under another epoch are over (src/domain/identity/sessions.rs): raised by every
    /// change that must end them all (see [`ends_sessions`]).
    #[serde(default)]
    pub session_epoch: u32,
}

impl Member {
    /// What the API shows: never a hash, a nonce or a password.
    pub fn view(&self) -> Value {
        json!({
            "patient_id": self.patient_id,
            "name": self.name,
            "birth_date": self.birth_date,
            "enrolled": true,
            "status": self.status.name(),
            "proxy_only": self.proxy_only,
            "contact": self.contact,
            "enrollment": self.enrollment,
            "enrolled_at": self.enrolled_at,
            "enrolled_by": self.enrolled_by,
            "username": self.username,
            "activated_at": self.activated_at,
            "passphrase_set": self.passphrase_hash.is_some(),
            "token": {
                "generation": self.token.generation,
                "issued_at": self.token.issued_at,
                "expires_at": self.token.expires_at,
                "used_at": self.token.used_at,
            },
            "updated_at": self.updated_at,
        })
    }

    /// The names the member's notifications greet them with.
    pub fn greeting(&self) -> String {
        if self.name.is_empty() {
            "member".into()
        } else {
            self.name.clone()
        }
    }
}

/// What a member search answers, kept as the value of each of the member's index entries so a
/// search reads nothing but the index: a page of results is one prefix scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub patient_id: String,
    pub name: String,
    #[serde(default)]
    pub birth_date: Option<String>,
    pub status: Status,
    pub proxy_only: bool,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// The `kind:term` entries, to check a search's other criteria.
    #[serde(default)]
    pub terms: Vec<String>,
}

impl Summary {
    fn of(member: &Member) -> Summary {
        Summary {
            patient_id: member.patient_id.clone(),
            name: member.name.clone(),
            birth_date: member.birth_date.clone(),
            status: member.status,
            proxy_only: member.proxy_only,
            email: member.contact.email.clone(),
            mobile: member.contact.mobile.clone(),
            username: member.username.clone(),
            terms: member.index_terms.clone(),
        }
    }

    /// A search result as the API shows it (the full record is at `GET /api/members/{id}`).
    pub fn view(&self) -> Value {
        json!({
            "patient_id": self.patient_id,
            "name": self.name,
            "birth_date": self.birth_date,
            "enrolled": true,
            "status": self.status.name(),
            "proxy_only": self.proxy_only,
            "email": self.email,
            "mobile": self.mobile,
            "username": self.username,
        })
    }
}

pub fn load(reader: &dyn Reader, patient_id: &str) -> Result<Option<Member>, StoreError> {
    match reader.get(Keyspace::Member, patient_id.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::corrupt(format!("member {patient_id} is not valid"), e)),
        None => Ok(None),
    }
}

/// The member, or a 404 refusal.
pub fn require(reader: &dyn Reader, patient_id: &str) -> Result<Member, Refusal> {
    load(reader, patient_id)?.ok_or_else(|| Refusal::not_found(format!("no member `{patient_id}`")))
}

/// Whether going from `old` to `new` must end every session of the member: a new password, a
/// status away from active, or a new email or mobile number (where sign-in codes and reset
/// links go).
pub fn ends_sessions(old: &Member, new: &Member) -> bool {
    old.password_hash != new.password_hash
        || (old.status == Status::Active && new.status != Status::Active)
        || old.contact.email != new.contact.email
        || old.contact.mobile != new.contact.mobile
}

/// Ends every session of the member (an external credential linked, for one): raises its
/// session epoch.
pub fn end_sessions(op: &mut Op<'_, '_>, patient_id: &str) -> Result<Member, Refusal> {
    let old = require(op.tx, patient_id)?;
    let mut member = old.clone();
    member.session_epoch = old.session_epoch.wrapping_add(1);
    save(op, Some(&old), &mut member)?;
    Ok(member)
}

/// Writes the member, re-indexing it from its patient record and its own contact details. A
/// change that [`ends_sessions`] raises the session epoch here, so no caller can forget it.
pub fn save(op: &mut Op<'_, '_>, old: Option<&Member>, member: &mut Member) -> Result<(), Refusal> {
    if let Some(old) = old
        && member.session_epoch == old.session_epoch
        && ends_sessions(old, member)
    {
        member.session_epoch = old.session_epoch.wrapping_add(1);
    }
    let now = op.now.clone();
    write_indexed(op.tx, &now, old, member)?;
    Ok(())
}

/// The kind a member is noted under when it changes (the proxies' projection follows it).
pub const MEMBER: &str = "Member";

/// Members' search entries follow their patient records: a projection on every Patient change
/// (a feed, the FHIR API, a merge), so a renamed patient's member is found under the new name
/// from the same commit on.
pub struct SearchEntries;

impl Projection for SearchEntries {
    fn follows(&self, kind: &str) -> bool {
        kind == "Patient"
    }

    fn project(&self, ctx: &mut Context<'_, '_>, changed: &[Changed]) -> Result<(), StoreError> {
        for patient in changed {
            follow_patient(ctx.tx, &patient.id, ctx.now)?;
        }
        Ok(())
    }
}

/// Keeps a member's search entries in step with its patient record. Patients who are not
/// members cost one read.
pub fn follow_patient(tx: &mut Overlay<'_>, patient_id: &str, now: &str) -> Result<(), StoreError> {
    let Some(old) = load(tx, patient_id)? else {
        return Ok(());
    };
    if !stale(tx, &old)? {
        return Ok(());
    }
    let mut member = old.clone();
    write_indexed(tx, now, Some(&old), &mut member)
}

fn write_indexed(
    tx: &mut Overlay<'_>,
    now: &str,
    old: Option<&Member>,
    member: &mut Member,
) -> Result<(), StoreError> {
    let patient = crate::domain::mpi::patient_search::load(tx, &member.patient_id)?;
    if let Some(patient) = &patient {
        member.name = display_name(patient);
        member.birth_date = patient["birthDate"].as_str().map(str::to_string);
    }
    member.index_terms = terms(patient.as_ref(), &member.contact);
    member.updated_at = now.to_string();
    if let Some(old) = old {
        for term in &old.index_terms {
            tx.delete(
                Keyspace::MemberIndex,
                index_key(old.status, term, &old.patient_id),
            );
        }
    }
    let summary = serde_json::to_vec(&Summary::of(member)).expect("a summary serializes");
    for term in &member.index_terms {
        tx.put(
            Keyspace::MemberIndex,
            index_key(member.status, term, &member.patient_id),
            summary.clone(),
        );
    }
    tx.put(
        Keyspace::Member,
        member.patient_id.as_bytes().to_vec(),
        serde_json::to_vec(member).expect("a member serializes"),
    );
    // The RelatedPersons of the relationships where they act as a proxy show their name and
    // contact details: the proxies' projection follows members.
    tx.note_changed(MEMBER, &member.patient_id);
    Ok(())
}

/// Whether the member's search entries no longer match its patient record (a feed changed it).
pub fn stale(reader: &dyn Reader, member: &Member) -> Result<bool, StoreError> {
    let patient = crate::domain::mpi::patient_search::load(reader, &member.patient_id)?;
    Ok(terms(patient.as_ref(), &member.contact) != member.index_terms)
}

/// `Family, Given Middle` of the patient's first name.
pub fn display_name(patient: &Value) -> String {
    let Some(name) = patient["name"].as_array().and_then(|n| n.first()) else {
        return String::new();
    };
    let family = name["family"].as_str().unwrap_or("");
    let given: Vec<&str> = name["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match (family.is_empty(), given.is_empty()) {
        (false, false) => format!("{family}, {}", given.join(" ")),
        (false, true) => family.to_string(),
        _ => given.join(" "),
    }
}

/// Lowercase name parts, split on spaces, hyphens and apostrophes.
pub fn name_parts(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '-' || c == '\'' || c == ',')
        .filter(|p| !p.is_empty())
        .map(|p| p.to_lowercase())
        .collect()
}

pub fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// Every `kind:term` a member is found by.
fn terms(patient: Option<&Value>, contact: &Contact) -> Vec<String> {
    let mut terms = std::collections::BTreeSet::new();
    if let Some(patient) = patient {
        for name in patient["name"].as_array().into_iter().flatten() {
            let mut parts = vec![];
            if let Some(family) = name["family"].as_str() {
                parts.extend(name_parts(family));
            }
            for given in name["given"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                parts.extend(name_parts(given));
            }
            for part in parts {
                terms.insert(format!("n:{part}"));
            }
        }
        if let Some(birth) = patient["birthDate"].as_str() {
            terms.insert(format!("b:{birth}"));
        }
        for identifier in patient["identifier"].as_array().into_iter().flatten() {
            if let Some(value) = identifier["value"].as_str() {
                terms.insert(format!("m:{}", value.trim().to_lowercase()));
            }
        }
        for telecom in patient["telecom"].as_array().into_iter().flatten() {
            let Some(value) = telecom["value"].as_str() else {
                continue;
            };
            match telecom["system"].as_str() {
                Some("email") => {
                    terms.insert(format!("e:{}", value.trim().to_lowercase()));
                }
                Some("phone") => {
                    for form in phone_forms(value) {
                        terms.insert(format!("p:{form}"));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(email) = &contact.email {
        terms.insert(format!("e:{}", email.trim().to_lowercase()));
    }
    if let Some(mobile) = &contact.mobile {
        for form in phone_forms(mobile) {
            terms.insert(format!("p:{form}"));
        }
    }
    terms.into_iter().collect()
}

/// All the digits, and the last ten when there are more (a country code written or not).
fn phone_forms(phone: &str) -> Vec<String> {
    let digits = phone_digits(phone.split(" x").next().unwrap_or(phone));
    let mut forms = vec![];
    if digits.len() > 10 {
        forms.push(digits[digits.len() - 10..].to_string());
    }
    if !digits.is_empty() {
        forms.push(digits);
    }
    forms
}

fn index_key(status: Status, term: &str, patient_id: &str) -> Vec<u8> {
    let (kind, value) = term.split_once(':').unwrap_or(("x", term));
    let mut key = Vec::with_capacity(value.len() + patient_id.len() + 3);
    key.push(kind.as_bytes()[0]);
    key.push(status.group());
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key.extend_from_slice(patient_id.as_bytes());
    key
}

/// What a member search asks; every field given must match.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Criteria {
    /// Name parts, each matching the start of a family or given name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub birth_date: Option<String>,
    /// An identifier value (the MRN), exact, case-insensitive.
    #[serde(default)]
    pub mrn: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// `pending` or `activated`; both when absent.
    #[serde(default)]
    pub status: Option<String>,
}

/// Members matching every criterion given, at most `limit`, in index order, as summaries read
/// from the index alone.
pub fn search(store: &dyn Store, criteria: &Criteria, limit: usize) -> Result<Vec<Summary>, Refusal> {
    let groups: Vec<u8> = match criteria.status.as_deref() {
        None | Some("") | Some("all") => vec![b'P', b'A'],
        Some("pending") => vec![b'P'],
        Some("activated") => vec![b'A'],
        Some(other) => {
            return Err(Refusal::invalid(format!(
                "status `{other}` is not `pending` or `activated`"
            )));
        }
    };
    // The wanted terms: (kind, term, exact).
    let mut wanted: Vec<(u8, String, bool)> = vec![];
    if let Some(mrn) = criteria.mrn.as_deref().filter(|s| !s.trim().is_empty()) {
        wanted.push((b'm', mrn.trim().to_lowercase(), true));
    }
    if let Some(email) = criteria.email.as_deref().filter(|s| !s.trim().is_empty()) {
        wanted.push((b'e', email.trim().to_lowercase(), true));
    }
    if let Some(phone) = criteria.phone.as_deref().filter(|s| !s.trim().is_empty()) {
        let digits = phone_digits(phone);
        if digits.is_empty() {
            return Err(Refusal::invalid("phone has no digits"));
        }
        wanted.push((b'p', digits, true));
    }
    if let Some(birth) = criteria.birth_date.as_deref().filter(|s| !s.trim().is_empty()) {
        let birth = birth.trim();
        if chrono::NaiveDate::parse_from_str(birth, "%Y-%m-%d").is_err() {
            return Err(Refusal::invalid(format!(
                "birth_date `{birth}` is not YYYY-MM-DD"
            )));
        }
        wanted.push((b'b', birth.to_string(), true));
    }
    if let Some(name) = criteria.name.as_deref() {
        for part in name_parts(name) {
            wanted.push((b'n', part, false));
        }
    }
    let Some((kind, term, exact)) = wanted.first().cloned() else {
        return Err(Refusal::invalid(
            "give at least one of name, birth_date, mrn, email, phone",
        ));
    };
    let rest = &wanted[1..];
    let mut found: Vec<Summary> = vec![];
    // Scan the driving term; check the rest against each candidate's own terms.
    const MAX_CANDIDATES: usize = 5_000;
    for group in groups {
        let mut prefix = vec![kind, group];
        prefix.extend_from_slice(term.as_bytes());
        if exact {
            prefix.push(0);
        }
        let scan_limit = if rest.is_empty() { limit } else { MAX_CANDIDATES };
        for (key, value) in store.scan_prefix(Keyspace::MemberIndex, &prefix, scan_limit)? {
            // An exact prefix ends with the \0 before the id; a name prefix stops inside the term.
            let tail = &key[prefix.len()..];
            let id_bytes = if exact {
                tail
            } else {
                match tail.iter().position(|b| *b == 0) {
                    Some(zero) => &tail[zero + 1..],
                    None => continue,
                }
            };
            let id = String::from_utf8_lossy(id_bytes).into_owned();
            if found.iter().any(|m| m.patient_id == id) {
                continue;
            }
            let Ok(summary) = serde_json::from_slice::<Summary>(&value) else {
                continue;
            };
            if rest.iter().all(|w| matches(&summary.terms, w)) {
                found.push(summary);
                if found.len() >= limit {
                    return Ok(found);
                }
            }
        }
    }
    Ok(found)
}

fn matches(terms: &[String], (kind, term, exact): &(u8, String, bool)) -> bool {
    let prefix = format!("{}:{term}", *kind as char);
    terms.iter().any(|t| {
        if *exact {
            *t == prefix
        } else {
            t.starts_with(&prefix)
        }
    })
}

/// Edits contact details and preferences; a reason is required for the audit trail.
pub fn edit_contact(
    op: &mut Op<'_, '_>,
    patient_id: &str,
    contact: Contact,
    reason: &str,
) -> Result<Member, Refusal> {
    contact.check()?;
    let reason = required_reason(reason)?;
    let old = require(op.tx, patient_id)?;
    let mut member = old.clone();
    member.contact = contact;
    save(op, Some(&old), &mut member)?;
    audit::record(
        op,
        "member.contact.edit",
        &audit::member_target(patient_id),
        Some(reason),
        json!({ "before": old.contact, "after": member.contact }),
    );
    Ok(member)
}

/// Deactivates an activated member (`inactive`, or `inactive/minor` for a minor).
pub fn deactivate(
    op: &mut Op<'_, '_>,
    patient_id: &str,
    minor: bool,
    reason: &str,
) -> Result<Member, Refusal> {
    let reason = required_reason(reason)?;
    let old = require(op.tx, patient_id)?;
    if old.status != Status::Active {
        return Err(Refusal::conflict(
            "not-active",
            format!("member `{patient_id}` is {}, not active", old.status.name()),
        ));
    }
    let mut member = old.clone();
    member.status = if minor {
        Status::InactiveMinor
    } else {
        Status::Inactive
    };
    save(op, Some(&old), &mut member)?;
    audit::record(
        op,
        "member.deactivate",
        &audit::member_target(patient_id),
        Some(reason),
        json!({ "from": old.status.name(), "to": member.status.name() }),
    );
    Ok(member)
}

/// Reactivates an inactive (or inactive/minor) member.
pub fn reactivate(op: &mut Op<'_, '_>, patient_id: &str, reason: &str) -> Result<Member, Refusal> {
    let reason = required_reason(reason)?;
    let old = require(op.tx, patient_id)?;
    if !matches!(old.status, Status::Inactive | Status::InactiveMinor) {
        return Err(Refusal::conflict(
            "not-inactive",
            format!("member `{patient_id}` is {}, not inactive", old.status.name()),
        ));
    }
    let mut member = old.clone();
    member.status = Status::Active;
    save(op, Some(&old), &mut member)?;
    audit::record(
        op,
        "member.reactivate",
        &audit::member_target(patient_id),
        Some(reason),
        json!({ "from": old.status.name(), "to": "active" }),
    );
    Ok(member)
}

/// A reason with something in it.
pub fn required_reason(reason: &str) -> Result<&str, Refusal> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Refusal::invalid("a reason is required"));
    }
    if reason.len() > 2000 {
        return Err(Refusal::invalid("the reason is longer than 2000 characters"));
    }
    Ok(reason)
}
