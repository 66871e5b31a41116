//! Update Profile: a member (through the portal) changes address, email, mobile phone,
//! preferred language or communication preference.
//!
//! One command does all of it: the FHIR Patient is rewritten (visible at once), the member
//! record's contact details follow, the change is fanned out (the configured profile
//! destinations, the UCR and TrakCare, plus every `patient-changed` subscriber such as the PIX
//! consumers, each sent its own rendering), an audit record is written and the member is told
//! by their preference. The Patient is written in the shape the UCR feed mapping gives back
//! (an email without a use, a mobile as `phone`/`mobile`, the language as its BCP-47 base
//! code, work numbers last), so when the UCR echoes the change through its ADT feed the record
//! reads the same and the fan-out, which sends nothing when a destination's rendering did not
//! change, sends nothing again.
//!
//! Who changes it (issue #12): the member of the session the portal sends beside its own key
//! ([`Acting`]), who must be the member in the path or a proxy whose relationship grants access
//! to them now ([`may_act_for`]). A new email or mobile number moves where sign-in codes
//! and reset links go, so it needs a session opened less than `credentials.reauth_seconds`
//! ago, tells the old address or number too, and ends every session of the member but the one
//! that made the change (src/domain/identity/sessions.rs).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::core::Context;
use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::members::{self, Contact, Preference, Status};
use crate::domain::accounts::notify::{self, Channels, Sent};
use crate::domain::accounts::tokens::passed;
use crate::domain::identity::sessions::{self, Session, add_seconds};
use crate::domain::mpi::patients;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::store::Reader;

/// The notification workflow that confirms a profile change to the member.
pub const WORKFLOW: &str = "profile-updated";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// One or two street lines.
    pub line: Vec<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

/// What the member changes; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub preference: Option<Preference>,
    /// A BCP-47 tag (`ar`, `en-GB`): screens and notifications, and the Patient's language.
    #[serde(default)]
    pub preferred_language: Option<String>,
    /// The member acting for the one in the path, when it is a proxy (issue #6). Optional: the
    /// session says who acts; when given it must be the session's member.
    #[serde(default)]
    pub proxy_id: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl ProfileUpdate {
    fn is_empty(&self) -> bool {
        self.address.is_none()
            && self.email.is_none()
            && self.mobile.is_none()
            && self.carrier.is_none()
            && self.preference.is_none()
            && self.preferred_language.is_none()
    }
}

/// What a profile update did.
#[derive(Debug, Clone)]
pub struct Updated {
    pub member: Value,
    pub patient: Value,
    /// Fields that changed (`address`, `email`, `mobile`, `carrier`, `preference`,
    /// `preferred_language`); empty when the update changed nothing.
    pub changed: Vec<&'static str>,
    /// Deliveries of the change to the UCR, TrakCare and PIX consumers.
    pub pushed: Vec<String>,
    /// The confirmation sent to the member.
    pub notification: Sent,
    /// The same notice to the email address or mobile number the change replaced.
    pub old_contact_notification: Sent,
}

/// Who makes a change: the session the portal sent (`X-Member-Session`) and its token.
#[derive(Debug, Clone)]
pub struct Acting {
    pub token: String,
    pub session: Session,
}

/// The contact fields sign-in codes and password reset links go to.
const SIGN_IN_CONTACTS: [&str; 2] = ["email", "mobile"];

/// Whether the signed-in member `proxy` may act on `principal`'s own data at `now` (their
/// profile, their tasks): the member themself, or a proxy whose relationship grants it now (not
/// revoked, not past its expiry).
pub fn may_act_for(reader: &dyn Reader, proxy: &str, principal: &str, now: &str) -> Result<(), Refusal> {
    if proxy == principal || crate::domain::proxies::granting(reader, proxy, principal, now)?.is_some() {
        return Ok(());
    }
    Err(Refusal::new(
        Kind::Forbidden,
        "proxy-not-permitted",
        format!("`{proxy}` holds no proxy right to act for `{principal}`"),
    ))
}

fn clean(text: &Option<String>) -> Option<String> {
    text.as_ref()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A BCP-47 tag, checked; its base language lowercased.
fn language(tag: &str) -> Result<(String, String), Refusal> {
    let tag = tag.trim();
    let mut parts = tag.split(['-', '_']);
    let base = parts.next().unwrap_or("");
    let ok = (2..=3).contains(&base.len())
        && base.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !ok {
        return Err(Refusal::invalid(format!(
            "preferred_language `{tag}` is not a language tag like `en` or `ar-SA`"
        )));
    }
    Ok((tag.to_string(), base.to_ascii_lowercase()))
}

fn check_address(address: &Address) -> Result<Value, Refusal> {
    let lines: Vec<String> = address.line.iter().map(|l| l.trim().to_string()).collect();
    if lines.is_empty() || lines.len() > 2 || lines.iter().any(String::is_empty) {
        return Err(Refusal::invalid(
            "address.line must hold one or two non-empty lines",
        ));
    }
    let fields = [
        ("city", &address.city),
        ("state", &address.state),
        ("postalCode", &address.postal_code),
        ("country", &address.country),
    ];
    let all = lines.iter().chain(fields.iter().filter_map(|(_, v)| v.as_ref()));
    for text in all {
        if text.chars().count() > 100 || text.chars().any(char::is_control) {
            return Err(Refusal::invalid(
                "address parts are at most 100 characters, without control characters",
            ));
        }
    }
    let mut out = json!({ "use": "home", "line": lines });
    for (name, value) in fields {
        if let Some(value) = clean(value) {
            out[name] = json!(value);
        }
    }
    Ok(out)
}

/// Replaces the first entry `matches` finds with `entry` (keeping its position), or puts it
/// before the work numbers (which the UCR feed sends last).
fn set_telecom(telecom: &mut Vec<Value>, matches: impl Fn(&Value) -> bool, entry: Value) {
    if let Some(at) = telecom.iter().position(&matches) {
        telecom[at] = entry;
        let mut seen = 0;
        telecom.retain(|t| {
            if matches(t) {
                seen += 1;
                seen == 1
            } else {
                true
            }
        });
        return;
    }
    let at = telecom
        .iter()
        .position(|t| t["use"] == "work" && t["system"] != "email")
        .unwrap_or(telecom.len());
    telecom.insert(at, entry);
}

/// The Patient and the contact details after `update`, and which fields changed.
fn apply(
    patient: &Value,
    contact: &Contact,
    update: &ProfileUpdate,
) -> Result<(Value, Contact, Vec<&'static str>), Refusal> {
    let mut new = patient.clone();
    let mut contact = contact.clone();
    let mut changed = vec![];
    if let Some(address) = &update.address {
        let address = check_address(address)?;
        let mut list = new["address"].as_array().cloned().unwrap_or_default();
        match list
            .iter()
            .position(|a| a["use"] == "home" || a.get("use").is_none())
        {
            Some(at) => list[at] = address,
            None => list.insert(0, address),
        }
        if new["address"] != json!(list) {
            new["address"] = json!(list);
            changed.push("address");
        }
    }
    let mut telecom = new["telecom"].as_array().cloned().unwrap_or_default();
    if let Some(email) = clean(&update.email) {
        set_telecom(
            &mut telecom,
            |t| t["system"] == "email",
            json!({ "system": "email", "value": email }),
        );
        if contact.email.as_deref() != Some(email.as_str()) {
            changed.push("email");
        }
        contact.email = Some(email);
    }
    if let Some(mobile) = clean(&update.mobile) {
        set_telecom(
            &mut telecom,
            |t| t["system"] == "phone" && t["use"] == "mobile",
            json!({ "system": "phone", "value": mobile, "use": "mobile" }),
        );
        if contact.mobile.as_deref() != Some(mobile.as_str()) {
            changed.push("mobile");
        }
        contact.mobile = Some(mobile);
    }
    if !telecom.is_empty() && new["telecom"] != json!(telecom) {
        new["telecom"] = json!(telecom);
        for field in ["email", "mobile"] {
            let asked = if field == "email" {
                &update.email
            } else {
                &update.mobile
            };
            if asked.is_some() && !changed.contains(&field) {
                changed.push(field);
            }
        }
    }
    if let Some(carrier) = clean(&update.carrier)
        && contact.carrier.as_deref() != Some(carrier.as_str())
    {
        contact.carrier = Some(carrier);
        changed.push("carrier");
    }
    if let Some(preference) = update.preference
        && contact.preference != preference
    {
        contact.preference = preference;
        changed.push("preference");
    }
    if let Some(tag) = &update.preferred_language {
        let (tag, base) = language(tag)?;
        let communication = json!([{
            "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": base }] }
        }]);
        let first_changed = contact.locales.first() != Some(&tag);
        if new["communication"] != communication || first_changed {
            changed.push("preferred_language");
        }
        new["communication"] = communication;
        contact.locales.retain(|l| *l != tag);
        contact.locales.insert(0, tag);
    }
    contact.check()?;
    match contact.preference {
        Preference::Email | Preference::Both if contact.email.is_none() => {
            return Err(Refusal::invalid(
                "the preference asks for email, and there is no email address",
            ));
        }
        Preference::Text | Preference::Both if contact.mobile.is_none() => {
            return Err(Refusal::invalid(
                "the preference asks for text messages, and there is no mobile phone number",
            ));
        }
        _ => {}
    }
    Ok((new, contact, changed))
}

/// Whether `acting` may change `patient_id`'s profile now; the proxy acting, if it is one.
fn who_acts(
    reader: &dyn Reader,
    acting: &Acting,
    patient_id: &str,
    named_proxy: Option<&str>,
    now: &str,
) -> Result<Option<String>, Refusal> {
    let me = acting.session.patient_id.as_str();
    if let Some(named) = named_proxy
        && named != me
    {
        return Err(Refusal::new(
            Kind::Forbidden,
            "proxy-not-permitted",
            format!("proxy_id `{named}` is not the signed-in member"),
        ));
    }
    may_act_for(reader, me, patient_id, now)?;
    Ok((me != patient_id).then(|| me.to_string()))
}

/// Refuses a change of where sign-in codes go unless the session was opened recently.
fn check_recent(accounts: &Accounts, acting: &Acting, changed: &[&str], now: &str) -> Result<(), Refusal> {
    if !changed.iter().any(|c| SIGN_IN_CONTACTS.contains(c)) {
        return Ok(());
    }
    let window = accounts.credentials.reauth_seconds;
    if passed(&add_seconds(&acting.session.issued_at, window), now) {
        return Err(Refusal::new(
            Kind::Forbidden,
            "reauthentication-required",
            format!(
                "a new email address or mobile number needs a sign-in less than {window} s old: sign in again"
            ),
        ));
    }
    Ok(())
}

/// Tells the replaced email address and mobile number about the change.
fn tell_old_contact(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    old: &Contact,
    changed: &[&str],
    vars: &[(&str, &str)],
) -> Sent {
    let mut sent = Sent::default();
    let only = |email: Option<&String>, mobile: Option<&String>, preference| Contact {
        email: email.cloned(),
        mobile: mobile.cloned(),
        carrier: old.carrier.clone(),
        preference,
        locales: old.locales.clone(),
    };
    let mut targets = vec![];
    if changed.contains(&"email") && old.email.is_some() {
        targets.push(only(old.email.as_ref(), None, Preference::Email));
    }
    if changed.contains(&"mobile") && old.mobile.is_some() {
        targets.push(only(None, old.mobile.as_ref(), Preference::Text));
    }
    for contact in targets {
        let one = notify::send(
            op,
            accounts,
            Some(patient_id),
            &contact,
            Channels::Preferred,
            WORKFLOW,
            vars,
        );
        sent.deliveries.extend(one.deliveries);
        sent.failures.extend(one.failures);
    }
    sent
}

/// Runs a profile update inside a committer command. `push_to`: the profile destinations.
pub fn update(
    ctx: &mut Context<'_, '_>,
    accounts: &Accounts,
    push_to: &[String],
    actor: &str,
    acting: &Acting,
    patient_id: &str,
    update: &ProfileUpdate,
) -> Result<Updated, Refusal> {
    let proxy = who_acts(ctx.tx, acting, patient_id, update.proxy_id.as_deref(), ctx.now)?;
    if update.is_empty() {
        return Err(Refusal::invalid(
            "give at least one of address, email, mobile, carrier, preference, preferred_language",
        ));
    }
    let old = members::require(ctx.tx, patient_id)?;
    if old.status != Status::Active {
        return Err(Refusal::conflict(
            "member-not-active",
            format!(
                "member `{patient_id}` is {}: only an active member updates a profile",
                old.status.name()
            ),
        ));
    }
    let patient = patients::read(ctx.tx, patient_id)?
        .ok_or_else(|| Refusal::not_found(format!("no patient `{patient_id}`")))?;
    let (new_patient, contact, changed) = apply(&patient, &old.contact, update)?;
    check_recent(accounts, acting, &changed, ctx.now)?;

    let mut pushed = vec![];
    let mut patient_after = patient.clone();
    if new_patient != patient {
        // The patient change is its own stage, so what fan-out queues for it (to the profile
        // destinations too) is known here.
        let queued_before = ctx.deliveries().len();
        ctx.notify_also(push_to);
        let after = ctx.stage(|ctx| {
            patients::replace(ctx.tx, patient_id, &new_patient, ctx.now)
                .map(|(_, after)| after)
                .map_err(|e| match e {
                    patients::ApplyError::Store(e) => Refusal::from(e),
                    other => Refusal::conflict("patient-conflict", other.to_string()),
                })
        })?;
        ctx.notify_also(&[]);
        pushed = ctx.deliveries()[queued_before..].to_vec();
        patient_after = after;
    }
    let mut op = Op::from_ctx(ctx, actor);
    let mut member = old.clone();
    member.contact = contact;
    let mut notification = Sent::default();
    let mut old_contact_notification = Sent::default();
    if !changed.is_empty() {
        // A new email or mobile raises the session epoch here: every session ends ...
        members::save(&mut op, Some(&old), &mut member)?;
        if member.session_epoch != old.session_epoch && acting.session.patient_id == patient_id {
            // ... but the member's own, which just proved itself recent.
            sessions::keep(
                &mut op,
                accounts,
                &acting.token,
                &acting.session,
                member.session_epoch,
            );
        }
        audit::record(
            &mut op,
            "member.profile.update",
            &audit::member_target(patient_id),
            update.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()),
            json!({
                "changed": changed,
                "proxy": proxy,
                "sessions_ended": member.session_epoch != old.session_epoch,
                "before": { "contact": old.contact, "address": patient.get("address") },
                "after": { "contact": member.contact, "address": patient_after.get("address") },
                "pushed": pushed,
            }),
        );
        let greeting = member.greeting();
        let fields = changed.join(", ");
        notification = notify::send(
            &mut op,
            accounts,
            Some(patient_id),
            &member.contact,
            Channels::Preferred,
            WORKFLOW,
            &[("name", greeting.as_str()), ("changed", fields.as_str())],
        );
        old_contact_notification = tell_old_contact(
            &mut op,
            accounts,
            patient_id,
            &old.contact,
            &changed,
            &[("name", greeting.as_str()), ("changed", fields.as_str())],
        );
    }
    Ok(Updated {
        member: member.view(),
        patient: patient_after,
        changed,
        pushed,
        notification,
        old_contact_notification,
    })
}
