//! Activation tokens and password reset links: issue, resend, renew, regenerate, check, use.
//!
//! A token is derived from the server key and a random per-token nonce, so the very same token
//! can be sent again (resend) while the store keeps only the nonce and the token's keyed hash,
//! never the token. The token index maps each hash to its member, purpose and generation: a
//! regenerated token gets the next generation, and the older hash then reads as superseded.
//! Every refusal names its reason: unknown, expired, superseded, used.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::members::{self, Member, ResetState, Status, TokenState};
use crate::domain::accounts::notify::{self, Channels, Sent};
use crate::domain::identity::secrets;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::store::{Keyspace, Reader};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Activation,
    Reset,
}

/// The token index entry of one hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub patient_id: String,
    pub purpose: Purpose,
    pub generation: u32,
}

/// The token for a nonce: 32 characters of the unambiguous alphabet.
pub fn derive(accounts: &Accounts, nonce: &str) -> String {
    accounts.key.derive(nonce)
}

pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    secrets::fill_random(&mut bytes);
    secrets::hex(&bytes)
}

/// `now` plus `hours` (of `hour_seconds` each), RFC 3339 like the commit time.
pub fn add_hours(now: &str, hours: u32, hour_seconds: u32) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(now)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    let seconds = i64::from(hours) * i64::from(hour_seconds);
    (at + chrono::Duration::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether `at` is not later than `now`.
pub fn passed(at: &str, now: &str) -> bool {
    match (
        chrono::DateTime::parse_from_rfc3339(at),
        chrono::DateTime::parse_from_rfc3339(now),
    ) {
        (Ok(at), Ok(now)) => at <= now,
        _ => true,
    }
}

/// Days + hours as staff give them: 1 hour up to the maximum reset window.
pub fn validity(days: u32, hours: u32, max_hours: u32) -> Result<u32, Refusal> {
    let total = days.checked_mul(24).and_then(|d| d.checked_add(hours));
    match total {
        Some(total) if (1..=max_hours).contains(&total) => Ok(total),
        _ => Err(Refusal::new(
            Kind::Invalid,
            "validity-out-of-bounds",
            format!("days and hours must total between 1 and {max_hours} hours"),
        )),
    }
}

/// A fresh token state (and its index entry) for `generation`, valid `hours` from now.
pub fn issue(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    generation: u32,
    hours: u32,
) -> TokenState {
    let nonce = new_nonce();
    let hash = accounts.key.hash(&derive(accounts, &nonce));
    let entry = Entry {
        patient_id: patient_id.to_string(),
        purpose: Purpose::Activation,
        generation,
    };
    op.tx.put(
        Keyspace::TokenIndex,
        hash.as_bytes().to_vec(),
        serde_json::to_vec(&entry).expect("an entry serializes"),
    );
    TokenState {
        generation,
        nonce,
        hash,
        issued_at: op.now.clone(),
        expires_at: add_hours(&op.now, hours, accounts.config.hour_seconds),
        used_at: None,
    }
}

/// The activation notification's variables that are secrets, sealed while it waits to be sent.
const ACTIVATION_SECRETS: &[&str] = &["token", "link", "passphrase_note"];

/// The activation notification's variables: the token and the link that carries it, and the
/// passphrase when one is given (the caller decides whether it may be sent).
pub fn activation_vars(
    accounts: &Accounts,
    member: &Member,
    passphrase: Option<&str>,
) -> Vec<(String, String)> {
    let token = derive(accounts, &member.token.nonce);
    let link = format!(
        "{}/activate?token={token}",
        accounts.config.portal_url.trim_end_matches('/')
    );
    let note = match passphrase {
        Some(p) => {
            let rendered =
                accounts
                    .templates
                    .fragment("passphrase-note", &member.contact.locales, &[("passphrase", p)]);
            rendered.unwrap_or_default()
        }
        _ => String::new(),
    };
    vec![
        ("name".into(), member.greeting()),
        ("token".into(), token),
        ("expires_at".into(), member.token.expires_at.clone()),
        ("link".into(), link),
        ("passphrase_note".into(), note),
        ("portal_url".into(), accounts.config.portal_url.clone()),
    ]
}

/// Sends the member's current token.
pub fn send_token(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    member: &Member,
    passphrase: Option<&str>,
) -> Sent {
    let vars = activation_vars(accounts, member, passphrase);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    notify::send_sealed(
        op,
        accounts,
        Some(&member.patient_id),
        &member.contact,
        Channels::Preferred,
        "activation-token",
        &vars,
        ACTIVATION_SECRETS,
    )
}

/// Printable instructions for a member whose token could not be sent: the activation email in
/// their language, token included, to print and hand over.
pub fn instructions(accounts: &Accounts, member: &Member, passphrase: Option<&str>) -> String {
    let mut vars = activation_vars(accounts, member, None);
    if let Some(p) = passphrase {
        let note = accounts
            .templates
            .fragment("passphrase-note", &member.contact.locales, &[("passphrase", p)])
            .unwrap_or_default();
        vars.retain(|(k, _)| k != "passphrase_note");
        vars.push(("passphrase_note".into(), note));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let rendered = accounts
        .templates
        .email("activation-token", &member.contact.locales, &vars);
    format!("{}\n\n{}", rendered.subject, rendered.body)
}

fn pending(op: &Op<'_, '_>, patient_id: &str) -> Result<Member, Refusal> {
    let member = members::require(op.tx, patient_id)?;
    if member.status != Status::Pending {
        return Err(Refusal::conflict(
            "not-pending",
            format!(
                "member `{patient_id}` is {}: tokens are only for pending members",
                member.status.name()
            ),
        ));
    }
    Ok(member)
}

/// Sends the same token again, after optional contact edits (which need a reason).
pub fn resend(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    contact: Option<members::Contact>,
    reason: Option<&str>,
) -> Result<(Member, Sent), Refusal> {
    let mut member = pending(op, patient_id)?;
    if passed(&member.token.expires_at, &op.now) {
        return Err(Refusal::conflict(
            "token-expired",
            "the token has expired: renew or regenerate it instead of resending it",
        ));
    }
    if let Some(contact) = contact {
        member = members::edit_contact(op, patient_id, contact, reason.unwrap_or(""))?;
    }
    let sent = send_token(op, accounts, &member, None);
    audit::record(
        op,
        "token.resend",
        &audit::member_target(patient_id),
        reason.filter(|r| !r.trim().is_empty()),
        json!({ "generation": member.token.generation, "deliveries": sent.deliveries, "failures": sent.failures }),
    );
    Ok((member, sent))
}

/// Gives the current token (expired or not) a new lifetime from now. No notification.
pub fn renew(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    days: u32,
    hours: u32,
    reason: &str,
) -> Result<Member, Refusal> {
    let settings = accounts.settings(op.tx)?;
    let total = validity(days, hours, settings.max_expiration_reset_hours)?;
    let reason = members::required_reason(reason)?;
    let old = pending(op, patient_id)?;
    let mut member = old.clone();
    member.token.expires_at = add_hours(&op.now, total, accounts.config.hour_seconds);
    members::save(op, Some(&old), &mut member)?;
    audit::record(
        op,
        "token.renew",
        &audit::member_target(patient_id),
        Some(reason),
        json!({ "hours": total, "expires_at": member.token.expires_at, "was": old.token.expires_at }),
    );
    Ok(member)
}

/// A new token; the old one is dead at once. Notifying the member is optional.
#[allow(clippy::too_many_arguments)]
pub fn regenerate(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    days: u32,
    hours: u32,
    reason: &str,
    notify_member: bool,
    contact: Option<members::Contact>,
) -> Result<(Member, Option<Sent>), Refusal> {
    let settings = accounts.settings(op.tx)?;
    let total = validity(days, hours, settings.max_expiration_reset_hours)?;
    let reason = members::required_reason(reason)?.to_string();
    pending(op, patient_id)?;
    if let Some(contact) = contact {
        members::edit_contact(op, patient_id, contact, &reason)?;
    }
    let old = pending(op, patient_id)?;
    let mut member = old.clone();
    member.token = issue(op, accounts, patient_id, old.token.generation + 1, total);
    members::save(op, Some(&old), &mut member)?;
    let sent = notify_member.then(|| send_token(op, accounts, &member, None));
    audit::record(
        op,
        "token.regenerate",
        &audit::member_target(patient_id),
        Some(&reason),
        json!({
            "generation": member.token.generation,
            "hours": total,
            "notified": notify_member,
            "deliveries": sent.as_ref().map(|s| s.deliveries.clone()).unwrap_or_default(),
        }),
    );
    Ok((member, sent))
}

/// The member a token names, if the token can be used now: else why not.
pub fn check(
    reader: &dyn Reader,
    accounts: &Accounts,
    token: &str,
    purpose: Purpose,
    now: &str,
) -> Result<Member, Refusal> {
    let unknown = || Refusal::conflict("token-unknown", "this token is not known");
    let hash = accounts.key.hash(token);
    let entry: Entry = reader
        .get(Keyspace::TokenIndex, hash.as_bytes())?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(unknown)?;
    if entry.purpose != purpose {
        return Err(unknown());
    }
    let member = members::load(reader, &entry.patient_id)?.ok_or_else(unknown)?;
    match purpose {
        Purpose::Activation => {
            let current = &member.token;
            if entry.generation != current.generation {
                return Err(Refusal::conflict(
                    "token-superseded",
                    "this token was replaced by a newer one: use the latest token sent",
                ));
            }
            if !secrets::same(&current.hash, &hash) {
                return Err(unknown());
            }
            if current.used_at.is_some() || member.status != Status::Pending {
                return Err(Refusal::conflict(
                    "token-used",
                    "this token was already used: the account is activated",
                ));
            }
            if passed(&current.expires_at, now) {
                return Err(Refusal::conflict(
                    "token-expired",
                    format!(
                        "this token expired at {}: ask for it to be renewed",
                        current.expires_at
                    ),
                ));
            }
        }
        Purpose::Reset => {
            let Some(reset) = &member.reset else {
                return Err(unknown());
            };
            if entry.generation != reset.generation {
                return Err(Refusal::conflict(
                    "token-superseded",
                    "this reset link was replaced by a newer one",
                ));
            }
            if !secrets::same(&reset.hash, &hash) {
                return Err(unknown());
            }
            if reset.used_at.is_some() {
                return Err(Refusal::conflict(
                    "token-used",
                    "this reset link was already used",
                ));
            }
            if passed(&reset.expires_at, now) {
                return Err(Refusal::conflict(
                    "token-expired",
                    format!("this reset link expired at {}", reset.expires_at),
                ));
            }
            if member.status != Status::Active {
                return Err(Refusal::conflict(
                    "not-active",
                    format!("the account is {}", member.status.name()),
                ));
            }
        }
    }
    Ok(member)
}

/// A username members may choose: 3 to 64 of letters, digits, `. _ - @`.
pub fn check_username(username: &str) -> Result<String, Refusal> {
    let ok = (3..=64).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(Refusal::invalid(
            "a username is 3 to 64 letters, digits, `.`, `_`, `-` or `@`",
        ));
    }
    Ok(username.to_string())
}

/// A password members may choose: 8 to 128 characters, not the username.
pub fn check_password(password: &str, username: &str) -> Result<(), Refusal> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(Refusal::new(
            Kind::Invalid,
            "weak-password",
            "a password has 8 to 128 characters",
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(Refusal::new(
            Kind::Invalid,
            "weak-password",
            "the password must not be the username",
        ));
    }
    Ok(())
}

/// Activation: the token (checked again here, in the commit), the chosen username and the
/// password hash (made beforehand, off this thread). The member becomes active and is sent
/// "registration complete".
pub fn activate(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    token: &str,
    username: &str,
    password_hash: String,
) -> Result<(Member, Sent), Refusal> {
    let old = check(op.tx, accounts, token, Purpose::Activation, &op.now.clone())?;
    let username = check_username(username)?;
    let key = username.to_lowercase();
    if op.tx.get(Keyspace::UsernameIndex, key.as_bytes())?.is_some() {
        return Err(Refusal::conflict(
            "username-taken",
            format!("the username `{username}` is taken"),
        ));
    }
    let mut member = old.clone();
    member.status = Status::Active;
    member.username = Some(username.clone());
    member.password_hash = Some(password_hash);
    member.activated_at = Some(op.now.clone());
    member.token.used_at = Some(op.now.clone());
    // The passphrase was for this one activation.
    member.passphrase_hash = None;
    op.tx.put(
        Keyspace::UsernameIndex,
        key.into_bytes(),
        member.patient_id.as_bytes().to_vec(),
    );
    members::save(op, Some(&old), &mut member)?;
    let vars = [
        ("name", member.greeting()),
        ("username", username.clone()),
        ("portal_url", accounts.config.portal_url.clone()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = notify::send(
        op,
        accounts,
        Some(&member.patient_id),
        &member.contact,
        Channels::Preferred,
        "registration-complete",
        &vars,
    );
    let actor = op.actor.clone();
    audit::record(
        op,
        "member.activate",
        &audit::member_target(&member.patient_id),
        None,
        json!({ "username": username, "via": actor, "deliveries": sent.deliveries }),
    );
    Ok((member, sent))
}

/// Issues a password reset link to an active member and sends it (by email when they have an
/// address, else by text). `reset_token` is generated by the caller.
pub fn start_reset(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    reset_token: &str,
    action: &str,
    reason: Option<&str>,
) -> Result<(Member, Sent), Refusal> {
    let old = members::require(op.tx, patient_id)?;
    if old.status != Status::Active {
        return Err(Refusal::conflict(
            "not-active",
            format!(
                "member `{patient_id}` is {}: only active members reset passwords",
                old.status.name()
            ),
        ));
    }
    let generation = old.reset.as_ref().map(|r| r.generation + 1).unwrap_or(1);
    let hash = accounts.key.hash(reset_token);
    let entry = Entry {
        patient_id: patient_id.to_string(),
        purpose: Purpose::Reset,
        generation,
    };
    op.tx.put(
        Keyspace::TokenIndex,
        hash.as_bytes().to_vec(),
        serde_json::to_vec(&entry).expect("an entry serializes"),
    );
    let mut member = old.clone();
    member.reset = Some(ResetState {
        generation,
        hash,
        expires_at: add_hours(
            &op.now,
            accounts.config.password_reset_hours.max(1),
            accounts.config.hour_seconds,
        ),
        used_at: None,
    });
    members::save(op, Some(&old), &mut member)?;
    let link = format!(
        "{}/reset-password?token={reset_token}",
        accounts.config.portal_url.trim_end_matches('/')
    );
    let expires = member
        .reset
        .as_ref()
        .map(|r| r.expires_at.clone())
        .unwrap_or_default();
    let vars = [
        ("name", member.greeting()),
        ("link", link),
        ("expires_at", expires),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = notify::send_sealed(
        op,
        accounts,
        Some(patient_id),
        &member.contact,
        Channels::EmailFirst,
        "password-reset",
        &vars,
        &["link"],
    );
    audit::record(
        op,
        action,
        &audit::member_target(patient_id),
        reason,
        json!({ "deliveries": sent.deliveries, "failures": sent.failures }),
    );
    Ok((member, sent))
}

/// Sets a new password with a reset link's token.
pub fn finish_reset(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    token: &str,
    password_hash: String,
) -> Result<Member, Refusal> {
    let old = check(op.tx, accounts, token, Purpose::Reset, &op.now.clone())?;
    let mut member = old.clone();
    member.password_hash = Some(password_hash);
    if let Some(reset) = member.reset.as_mut() {
        reset.used_at = Some(op.now.clone());
    }
    members::save(op, Some(&old), &mut member)?;
    audit::record(
        op,
        "member.password.reset",
        &audit::member_target(&member.patient_id),
        None,
        json!({}),
    );
    Ok(member)
}
