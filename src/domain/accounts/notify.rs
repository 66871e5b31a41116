//! Member notifications through the durable outbox: a workflow's template, rendered in the
//! member's language, queued for the email and/or text destinations their preference asks for,
//! in the write set of the change that causes it.
//!
//! Sending is asynchronous, so "sending failed" is known at once only when it cannot even be
//! queued: no address for a channel the preference asks for, or no destination configured for
//! it. The delivery ids let a client follow each delivery afterwards.
//!
//! A variable that is a secret (an activation token, a link that carries one, a one-time code
//! or passphrase: see [`send_sealed`]) is never written into the queued notification: the
//! template is rendered with a placeholder in its place, and the secrets are sealed for that
//! one delivery under the server key (`crate::deliveries::seal`), to be put back by the destination's
//! worker just before sending. So no token or code sits in clear in the journal or the store.

use serde::Serialize;

use crate::deliveries::queue::{Outgoing, enqueue};
use crate::deliveries::{delivery, seal};
use crate::domain::accounts::Accounts;
use crate::domain::accounts::members::{Contact, Preference};
use crate::domain::op::Op;

/// What became of one notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sent {
    /// Delivery ids queued (follow them at `GET /api/notifications/{id}`).
    pub deliveries: Vec<String>,
    /// Why a channel the preference asks for could not be used.
    pub failures: Vec<String>,
}

impl Sent {
    /// Nothing failed and something was queued.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && !self.deliveries.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// As the member's preference says.
    Preferred,
    /// Email when there is an address, else text (a password reset link).
    EmailFirst,
}

/// Queues `workflow` to the member through the channels asked for.
pub fn send(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: Option<&str>,
    contact: &Contact,
    channels: Channels,
    workflow: &str,
    vars: &[(&str, &str)],
) -> Sent {
    send_sealed(op, accounts, patient_id, contact, channels, workflow, vars, &[])
}

/// As [`send`], with the variables named in `secret` sealed: the stored notification holds a
/// placeholder for each, and the secrets travel sealed for each delivery alone.
#[allow(clippy::too_many_arguments)] // `send`'s arguments and the names of the secret ones.
pub fn send_sealed(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: Option<&str>,
    contact: &Contact,
    channels: Channels,
    workflow: &str,
    vars: &[(&str, &str)],
    secret: &[&str],
) -> Sent {
    let secrets: Vec<(String, String)> = vars
        .iter()
        .filter(|(name, _)| secret.contains(name))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let placeholders: Vec<(&str, String)> = vars
        .iter()
        .map(|&(name, value)| match secret.contains(&name) {
            true => (name, seal::placeholder(name)),
            false => (name, value.to_string()),
        })
        .collect();
    let vars: Vec<(&str, &str)> = placeholders.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let vars = vars.as_slice();
    let mut sent = Sent::default();
    let (email, text) = match channels {
        Channels::Preferred => (
            matches!(contact.preference, Preference::Email | Preference::Both),
            matches!(contact.preference, Preference::Text | Preference::Both),
        ),
        Channels::EmailFirst => (contact.email.is_some(), contact.email.is_none()),
    };
    let locales = &contact.locales;
    if email {
        match (&contact.email, &accounts.config.email_destination) {
            (None, _) => sent
                .failures
                .push("email: the member has no email address".into()),
            (_, None) => sent
                .failures
                .push("email: no email destination is configured".into()),
            (Some(address), Some(destination)) => {
                let rendered = accounts.templates.email(workflow, locales, vars);
                let mut headers = vec![
                    ("To".to_string(), address.trim().to_string()),
                    ("Subject".to_string(), rendered.subject),
                    ("Content-Language".to_string(), rendered.locale),
                ];
                if rendered.rtl {
                    headers.push(("Text-Direction".into(), "rtl".into()));
                }
                headers.push(("Workflow".into(), workflow.into()));
                let queued = queue(
                    op,
                    accounts,
                    destination.get_ref(),
                    patient_id,
                    headers,
                    rendered.body,
                    &secrets,
                );
                sent.record("email", queued);
            }
        }
    }
    if text {
        match (&contact.mobile, &accounts.config.sms_destination) {
            (None, _) => sent
                .failures
                .push("text: the member has no mobile phone number".into()),
            (_, None) => sent
                .failures
                .push("text: no text (SMS) destination is configured".into()),
            (Some(mobile), Some(destination)) => {
                let rendered = accounts.templates.sms(workflow, locales, vars);
                let mut headers = vec![
                    ("To".to_string(), mobile.trim().to_string()),
                    ("Content-Language".to_string(), rendered.locale),
                ];
                if let Some(carrier) = &contact.carrier {
                    headers.push(("Carrier".into(), carrier.clone()));
                }
                if rendered.rtl {
                    headers.push(("Text-Direction".into(), "rtl".into()));
                }
                headers.push(("Workflow".into(), workflow.into()));
                let queued = queue(
                    op,
                    accounts,
                    destination.get_ref(),
                    patient_id,
                    headers,
                    rendered.body,
                    &secrets,
                );
                sent.record("text", queued);
            }
        }
    }
    sent
}

impl Sent {
    fn record(&mut self, channel: &str, queued: Result<String, seal::SealError>) {
        match queued {
            Ok(id) => self.deliveries.push(id),
            Err(e) => self.failures.push(format!("{channel}: {e}")),
        }
    }
}

/// Queues one notification, its `secrets` sealed for its delivery id.
fn queue(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    destination: &str,
    patient_id: Option<&str>,
    headers: Vec<(String, String)>,
    payload: String,
    secrets: &[(String, String)],
) -> Result<String, seal::SealError> {
    let n = op.next_delivery_number();
    let sealed = match secrets.is_empty() {
        true => None,
        false => {
            let id = delivery::id(destination, op.seq, n);
            Some(seal::seal(&accounts.key.sealing_key(), &id, secrets)?)
        }
    };
    let delivery = enqueue(
        op.tx,
        Outgoing {
            destination: destination.to_string(),
            patient: patient_id.map(str::to_string),
            resource: None,
            content_type: "text/plain; charset=utf-8".into(),
            headers,
            payload,
            sealed,
        },
        op.seq,
        n,
        &op.now,
    );
    op.queued(delivery.id.clone());
    Ok(delivery.id)
}
