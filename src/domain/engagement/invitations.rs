//! Invitations to enroll: an external system names a person (name, email and/or mobile phone,
//! preferred language) and a workflow-specific content key (`lab-results`, `waiting-list`
//! ...), whose template is `<locale>/invitation-<key>.txt` (and `.sms.txt`).
//!
//! A person who is already a member is sent nothing, and the answer says so. Otherwise the
//! invitation goes out by email (or text when there is no email, or both when asked) through
//! the outbox, in the person's language. The same content to the same address again inside
//! `engagement.invitation_window_hours` is suppressed. Every invitation gets an id and a
//! record; its status is `queued` until its deliveries are done, then `sent` (or `failed` when
//! one became a dead letter), or `suppressed` / `already-member` from the start.
//!
//! Keys: `Invitation`: id -> record; `InvitationByAddress`: `address \0 key` -> the last sent.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::deliveries::delivery::State;
use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::members::{Contact, Preference, phone_digits};
use crate::domain::accounts::notify::{self, Channels};
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::store::{Keyspace, Reader};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    #[serde(default)]
    pub system: Option<String>,
    pub value: String,
}

/// What an external system asks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    /// A BCP-47 tag; the default locale when absent.
    #[serde(default)]
    pub preferred_language: Option<String>,
    /// Which invitation: the template `invitation-<content_key>`.
    pub content_key: String,
    /// `email`, `text` or `both`; by default email when there is an address, else text.
    #[serde(default)]
    pub preference: Option<Preference>,
    /// An identifier of the person (an MRN), to recognise a member.
    #[serde(default)]
    pub identifier: Option<Identifier>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Queued,
    Sent,
    Failed,
    Suppressed,
    AlreadyMember,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub id: String,
    pub status: Status,
    pub created_at: String,
    pub requested_by: String,
    pub content_key: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    pub locales: Vec<String>,
    #[serde(default)]
    pub deliveries: Vec<String>,
    #[serde(default)]
    pub failures: Vec<String>,
    /// The invitation this one repeats (suppressed).
    #[serde(default)]
    pub duplicate_of: Option<String>,
    /// The member it matched (already-member).
    #[serde(default)]
    pub member: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct LastSent {
    id: String,
    at: String,
}

impl Request {
    /// Checks the request; returns the contact it goes to.
    pub fn check(&self, accounts: &Accounts) -> Result<Contact, Refusal> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(Refusal::invalid("name is required (at most 200 characters)"));
        }
        let key = self.content_key.trim();
        let key_ok = !key.is_empty()
            && key.len() <= 64
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !key_ok {
            return Err(Refusal::invalid(format!(
                "content_key `{key}` is not a key like `lab-results` (lowercase letters, digits, -)"
            )));
        }
        let workflow = workflow(key);
        if !accounts.templates.has(&workflow) || !accounts.templates.has(&format!("{workflow}.sms")) {
            return Err(Refusal::new(
                crate::domain::refusal::Kind::Invalid,
                "unknown-content-key",
                format!(
                    "content_key `{key}` has no templates ({}/{workflow}.txt and .sms.txt)",
                    accounts.config.default_locale
                ),
            ));
        }
        let email = self.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let mobile = self.mobile.as_deref().map(str::trim).filter(|m| !m.is_empty());
        let preference = match (self.preference, email, mobile) {
            (_, None, None) => {
                return Err(Refusal::invalid("give an email address or a mobile phone number"));
            }
            (Some(p), ..) => p,
            (None, Some(_), _) => Preference::Email,
            (None, None, Some(_)) => Preference::Text,
        };
        let locales = match &self.preferred_language {
            Some(tag) if !tag.trim().is_empty() => vec![tag.trim().to_string()],
            _ => vec![accounts.config.default_locale.clone()],
        };
        let contact = Contact {
            email: email.map(str::to_string),
            mobile: mobile.map(str::to_string),
            carrier: None,
            preference,
            locales,
        };
        contact.check()?;
        Ok(contact)
    }
}

pub fn workflow(content_key: &str) -> String {
    format!("invitation-{}", content_key.trim())
}

/// The addresses an invitation goes to, as the duplicate index keys them.
fn address_keys(contact: &Contact, content_key: &str) -> Vec<Vec<u8>> {
    let mut keys = vec![];
    let email = matches!(contact.preference, Preference::Email | Preference::Both);
    let text = matches!(contact.preference, Preference::Text | Preference::Both);
    if email && let Some(address) = &contact.email {
        keys.push(format!("e:{}", address.trim().to_lowercase()));
    }
    if text && let Some(mobile) = &contact.mobile {
        keys.push(format!("p:{}", phone_digits(mobile)));
    }
    keys.into_iter()
        .map(|k| format!("{k}\0{}", content_key.trim()).into_bytes())
        .collect()
}

pub fn load(reader: &dyn Reader, id: &str) -> Result<Option<Invitation>, Refusal> {
    match reader.get(Keyspace::Invitation, id.as_bytes())? {
        Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        None => Ok(None),
    }
}

fn save(op: &mut Op<'_, '_>, invitation: &Invitation) {
    op.tx.put(
        Keyspace::Invitation,
        invitation.id.as_bytes().to_vec(),
        serde_json::to_vec(invitation).expect("an invitation serializes"),
    );
}

/// Records and (unless it is a member or a repeat) sends the invitation. `member`: the member
/// the person already is, found by the caller before the command.
pub fn invite(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    window_seconds: i64,
    request: &Request,
    contact: &Contact,
    member: Option<String>,
) -> Result<Invitation, Refusal> {
    let mut invitation = Invitation {
        id: format!("inv-{}", op.seq),
        status: Status::Queued,
        created_at: op.now.clone(),
        requested_by: op.actor.clone(),
        content_key: request.content_key.trim().to_string(),
        name: request.name.trim().to_string(),
        email: contact.email.clone(),
        mobile: contact.mobile.clone(),
        locales: contact.locales.clone(),
        deliveries: vec![],
        failures: vec![],
        duplicate_of: None,
        member: None,
    };
    let target = format!("invitation/{}", invitation.id);
    if let Some(member) = member {
        invitation.status = Status::AlreadyMember;
        invitation.member = Some(member.clone());
        save(op, &invitation);
        audit::record(
            op,
            "invitation.already-member",
            &target,
            None,
            json!({ "member": member }),
        );
        return Ok(invitation);
    }
    let keys = address_keys(contact, &invitation.content_key);
    let now = chrono::DateTime::parse_from_rfc3339(&op.now).map_err(|e| Refusal::invalid(e.to_string()))?;
    for key in &keys {
        let Some(bytes) = op.tx.get(Keyspace::InvitationByAddress, key)? else {
            continue;
        };
        let Ok(last) = serde_json::from_slice::<LastSent>(&bytes) else {
            continue;
        };
        let recent = chrono::DateTime::parse_from_rfc3339(&last.at)
            .map(|at| (now - at).num_seconds() < window_seconds)
            .unwrap_or(false);
        if recent {
            invitation.status = Status::Suppressed;
            invitation.duplicate_of = Some(last.id);
            save(op, &invitation);
            audit::record(
                op,
                "invitation.suppressed",
                &target,
                None,
                json!({ "duplicate_of": invitation.duplicate_of, "content_key": invitation.content_key }),
            );
            return Ok(invitation);
        }
    }
    let sent = notify::send(
        op,
        accounts,
        None,
        contact,
        Channels::Preferred,
        &workflow(&invitation.content_key),
        &[
            ("name", invitation.name.as_str()),
            ("link", accounts.config.portal_url.as_str()),
        ],
    );
    invitation.deliveries = sent.deliveries;
    invitation.failures = sent.failures;
    if invitation.deliveries.is_empty() {
        invitation.status = Status::Failed;
    } else {
        let last = serde_json::to_vec(&LastSent {
            id: invitation.id.clone(),
            at: op.now.clone(),
        })
        .expect("serializes");
        for key in keys {
            op.tx.put(Keyspace::InvitationByAddress, key, last.clone());
        }
    }
    save(op, &invitation);
    audit::record(
        op,
        "invitation.send",
        &target,
        None,
        json!({
            "content_key": invitation.content_key,
            "deliveries": invitation.deliveries,
            "failures": invitation.failures,
        }),
    );
    Ok(invitation)
}

/// The invitation as the API shows it, its status brought up to date from its deliveries.
pub fn view(reader: &dyn Reader, invitation: &Invitation) -> Result<Value, Refusal> {
    let mut status = invitation.status;
    let mut deliveries = vec![];
    {
        let mut states = vec![];
        for id in &invitation.deliveries {
            let delivery = crate::deliveries::queue::find(reader, id)?;
            let state = delivery.as_ref().map(|d| d.state);
            deliveries.push(json!({
                "id": id,
                "state": match state {
                    Some(State::Pending) => "pending",
                    Some(State::Delivered) => "delivered",
                    Some(State::DeadLetter) => "dead-letter",
                    Some(State::Discarded) => "discarded",
                    Some(State::Superseded) => "superseded",
                    None => "unknown",
                },
                "attempts": delivery.as_ref().map(|d| d.attempts),
                "last_error": delivery.as_ref().and_then(|d| d.last_error.clone()),
            }));
            states.push(state);
        }
        if status != Status::Queued {
        } else if states
            .iter()
            .any(|s| matches!(s, Some(State::DeadLetter | State::Discarded)))
        {
            status = Status::Failed;
        } else if !states.is_empty() && states.iter().all(|s| *s == Some(State::Delivered)) {
            status = Status::Sent;
        }
    }
    Ok(json!({
        "id": invitation.id,
        "status": status,
        "created_at": invitation.created_at,
        "requested_by": invitation.requested_by,
        "content_key": invitation.content_key,
        "name": invitation.name,
        "email": invitation.email,
        "mobile": invitation.mobile,
        "locales": invitation.locales,
        "deliveries": deliveries,
        "failures": invitation.failures,
        "duplicate_of": invitation.duplicate_of,
        "member": invitation.member,
    }))
}
