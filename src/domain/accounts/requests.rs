//! Self-requested enrollment: what a prospective member submits goes to the enrollment request
//! queue; a request agent claims it, looks for the matching patient, and approves it (the
//! patient is enrolled: a token is issued), declines it (optionally telling the requester why),
//! or forwards it to the exception queue, where an exception agent claims it and approves or
//! declines. Every step is kept in the request's history (and in the audit trail).
//!
//! Keys: `EnrollmentRequest`: request id -> the request; `RequestQueue`: queue byte (`R`
//! request, `E` exception) + id -> nothing, for the open ones only.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::enrollment::{self, Enrolled, Method};
use crate::domain::accounts::members::{Contact, Preference, name_parts};
use crate::domain::accounts::notify::{self, Channels, Sent};
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::store::{Keyspace, Reader, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    Request,
    Exception,
}

impl Queue {
    fn byte(self) -> u8 {
        match self {
            Queue::Request => b'R',
            Queue::Exception => b'E',
        }
    }

    pub fn parse(text: &str) -> Option<Queue> {
        match text {
            "request" => Some(Queue::Request),
            "exception" => Some(Queue::Exception),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Open,
    Claimed,
    Approved,
    Declined,
}

/// What the prospective member entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submitted {
    pub family: String,
    pub given: String,
    pub birth_date: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default = "default_preference")]
    pub preference: Preference,
    #[serde(default)]
    pub locales: Vec<String>,
    /// An identifier the requester knows (an MRN), `system|value` or a value.
    #[serde(default)]
    pub identifier: Option<String>,
    /// Where they are registered, if they said.
    #[serde(default)]
    pub facility: Option<String>,
}

fn default_preference() -> Preference {
    Preference::Email
}

impl Submitted {
    pub fn contact(&self) -> Contact {
        Contact {
            email: self.email.clone(),
            mobile: self.mobile.clone(),
            carrier: self.carrier.clone(),
            preference: self.preference,
            locales: self.locales.clone(),
        }
    }

    fn check(&self) -> Result<(), Refusal> {
        if name_parts(&self.family).is_empty() || name_parts(&self.given).is_empty() {
            return Err(Refusal::invalid("family and given names are required"));
        }
        if self.family.len() > 200 || self.given.len() > 200 {
            return Err(Refusal::invalid("names are at most 200 characters"));
        }
        if chrono::NaiveDate::parse_from_str(&self.birth_date, "%Y-%m-%d").is_err() {
            return Err(Refusal::invalid("birth_date must be YYYY-MM-DD"));
        }
        if self.email.is_none() && self.mobile.is_none() {
            return Err(Refusal::invalid(
                "an email address or a mobile phone number is required",
            ));
        }
        self.contact().check()
    }
}

/// One step in a request's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub at: String,
    pub actor: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentRequest {
    pub id: String,
    pub submitted_at: String,
    pub submitted_by: String,
    pub data: Submitted,
    pub queue: Queue,
    pub state: State,
    #[serde(default)]
    pub claimed_by: Option<String>,
    /// The patient enrolled, once approved.
    #[serde(default)]
    pub patient_id: Option<String>,
    pub history: Vec<Step>,
}

impl EnrollmentRequest {
    fn closed(&self) -> bool {
        matches!(self.state, State::Approved | State::Declined)
    }
}

/// The queues the caller works (its agent roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    pub request_queue: bool,
    pub exception_queue: bool,
}

impl Agent {
    pub fn works(self, queue: Queue) -> bool {
        match queue {
            Queue::Request => self.request_queue,
            Queue::Exception => self.exception_queue,
        }
    }
}

fn target(id: &str) -> String {
    format!("enrollment-request/{id}")
}

fn queue_key(queue: Queue, id: &str) -> Vec<u8> {
    let mut key = vec![queue.byte()];
    key.extend_from_slice(id.as_bytes());
    key
}

pub fn load(reader: &dyn Reader, id: &str) -> Result<Option<EnrollmentRequest>, StoreError> {
    Ok(reader
        .get(Keyspace::EnrollmentRequest, id.as_bytes())?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

fn save(op: &mut Op<'_, '_>, old: Option<&EnrollmentRequest>, request: &EnrollmentRequest) {
    if let Some(old) = old
        && !old.closed()
    {
        op.tx
            .delete(Keyspace::RequestQueue, queue_key(old.queue, &old.id));
    }
    if !request.closed() {
        op.tx.put(
            Keyspace::RequestQueue,
            queue_key(request.queue, &request.id),
            vec![],
        );
    }
    op.tx.put(
        Keyspace::EnrollmentRequest,
        request.id.as_bytes().to_vec(),
        serde_json::to_vec(request).expect("a request serializes"),
    );
}

/// A new request in the request queue. No enrollment status of any kind comes of it yet.
pub fn submit(op: &mut Op<'_, '_>, data: Submitted) -> Result<EnrollmentRequest, Refusal> {
    data.check()?;
    let request = EnrollmentRequest {
        id: format!("er-{}", op.seq),
        submitted_at: op.now.clone(),
        submitted_by: op.actor.clone(),
        data,
        queue: Queue::Request,
        state: State::Open,
        claimed_by: None,
        patient_id: None,
        history: vec![Step {
            at: op.now.clone(),
            actor: op.actor.clone(),
            action: "submitted".into(),
            message: None,
        }],
    };
    save(op, None, &request);
    audit::record(
        op,
        "request.submit",
        &target(&request.id),
        None,
        json!({ "queue": "request" }),
    );
    Ok(request)
}

/// Open requests of a queue, oldest first.
pub fn list(store: &dyn Store, queue: Queue, limit: usize) -> Result<Vec<EnrollmentRequest>, StoreError> {
    let mut out = vec![];
    for (key, _) in store.scan_prefix(Keyspace::RequestQueue, &[queue.byte()], limit)? {
        let id = String::from_utf8_lossy(&key[1..]).into_owned();
        if let Some(request) = load(store, &id)? {
            out.push(request);
        }
    }
    Ok(out)
}

/// The request, if the agent works its current queue (closed ones: either queue's agents).
pub fn visible(reader: &dyn Reader, agent: Agent, id: &str) -> Result<EnrollmentRequest, Refusal> {
    let request =
        load(reader, id)?.ok_or_else(|| Refusal::not_found(format!("no enrollment request `{id}`")))?;
    let allowed = if request.closed() {
        agent.request_queue || agent.exception_queue
    } else {
        agent.works(request.queue)
    };
    if !allowed {
        return Err(Refusal::forbidden(format!(
            "request `{id}` is in the {} queue, which this caller does not work",
            match request.queue {
                Queue::Request => "request",
                Queue::Exception => "exception",
            }
        )));
    }
    Ok(request)
}

/// The open request, which the agent may act on.
fn open(op: &Op<'_, '_>, agent: Agent, id: &str) -> Result<EnrollmentRequest, Refusal> {
    let request = visible(op.tx, agent, id)?;
    if request.closed() {
        return Err(Refusal::conflict(
            "request-closed",
            format!("request `{id}` is already {}", state_name(request.state)),
        ));
    }
    Ok(request)
}

/// The open request, claimed by this caller.
fn claimed(op: &Op<'_, '_>, agent: Agent, id: &str) -> Result<EnrollmentRequest, Refusal> {
    let request = open(op, agent, id)?;
    match &request.claimed_by {
        Some(by) if *by == op.actor => Ok(request),
        Some(by) => Err(Refusal::conflict(
            "claimed-by-other",
            format!("request `{id}` is claimed by {by}"),
        )),
        None => Err(Refusal::conflict(
            "not-claimed",
            format!("claim request `{id}` first"),
        )),
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Open => "open",
        State::Claimed => "claimed",
        State::Approved => "approved",
        State::Declined => "declined",
    }
}

fn step(op: &Op<'_, '_>, request: &mut EnrollmentRequest, action: &str, message: Option<&str>) {
    request.history.push(Step {
        at: op.now.clone(),
        actor: op.actor.clone(),
        action: action.into(),
        message: message.map(str::to_string),
    });
}

pub fn claim(op: &mut Op<'_, '_>, agent: Agent, id: &str) -> Result<EnrollmentRequest, Refusal> {
    let old = open(op, agent, id)?;
    if let Some(by) = &old.claimed_by {
        if *by == op.actor {
            return Ok(old);
        }
        return Err(Refusal::conflict(
            "claimed-by-other",
            format!("request `{id}` is claimed by {by}"),
        ));
    }
    let mut request = old.clone();
    request.claimed_by = Some(op.actor.clone());
    request.state = State::Claimed;
    step(op, &mut request, "claimed", None);
    save(op, Some(&old), &request);
    audit::record(op, "request.claim", &target(id), None, json!({}));
    Ok(request)
}

/// Approves: the chosen patient is enrolled with the contact details the requester gave.
pub fn approve(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    agent: Agent,
    id: &str,
    patient_id: &str,
    passphrase: Option<(String, String)>,
) -> Result<(EnrollmentRequest, Enrolled), Refusal> {
    let old = claimed(op, agent, id)?;
    let (passphrase_hash, passphrase) = match passphrase {
        Some((hash, plain)) => (Some(hash), Some(plain)),
        None => (None, None),
    };
    let (_, enrolled) = enrollment::enroll(
        op,
        accounts,
        enrollment::Request {
            patient_id: patient_id.to_string(),
            contact: old.data.contact(),
            proxy_only: false,
            method: Method::SelfRequested,
            passphrase_hash,
            passphrase,
        },
    )?;
    let mut request = old.clone();
    request.state = State::Approved;
    request.patient_id = Some(patient_id.to_string());
    step(
        op,
        &mut request,
        "approved",
        Some(&format!("enrolled patient {patient_id}")),
    );
    save(op, Some(&old), &request);
    audit::record(
        op,
        "request.approve",
        &target(id),
        None,
        json!({ "patient_id": patient_id }),
    );
    Ok((request, enrolled))
}

/// Declines, with a message for the history; `tell_requester` also sends it to them.
pub fn decline(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    agent: Agent,
    id: &str,
    message: Option<&str>,
    tell_requester: bool,
) -> Result<(EnrollmentRequest, Option<Sent>), Refusal> {
    let old = claimed(op, agent, id)?;
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    if tell_requester && message.is_none() {
        return Err(Refusal::invalid("a decline message to send is required"));
    }
    let mut request = old.clone();
    request.state = State::Declined;
    step(op, &mut request, "declined", message);
    save(op, Some(&old), &request);
    let sent = if tell_requester {
        let name = format!("{} {}", old.data.given.trim(), old.data.family.trim());
        let vars = [("name", name.as_str()), ("message", message.unwrap_or(""))];
        Some(notify::send(
            op,
            accounts,
            None,
            &old.data.contact(),
            Channels::Preferred,
            "enrollment-declined",
            &vars,
        ))
    } else {
        None
    };
    audit::record(
        op,
        "request.decline",
        &target(id),
        message,
        json!({ "message_sent": tell_requester, "deliveries": sent.as_ref().map(|s| s.deliveries.clone()) }),
    );
    Ok((request, sent))
}

/// Sends a request on to the exception queue (request agents only), unclaimed.
pub fn forward(
    op: &mut Op<'_, '_>,
    agent: Agent,
    id: &str,
    message: &str,
) -> Result<EnrollmentRequest, Refusal> {
    let old = claimed(op, agent, id)?;
    if old.queue != Queue::Request {
        return Err(Refusal::conflict(
            "already-exception",
            format!("request `{id}` is already in the exception queue"),
        ));
    }
    let message = message.trim();
    if message.is_empty() {
        return Err(Refusal::invalid("a message for the exception group is required"));
    }
    let mut request = old.clone();
    request.queue = Queue::Exception;
    request.state = State::Open;
    request.claimed_by = None;
    step(op, &mut request, "forwarded to exception queue", Some(message));
    save(op, Some(&old), &request);
    audit::record(
        op,
        "request.forward",
        &target(id),
        Some(message),
        json!({ "queue": "exception" }),
    );
    Ok(request)
}

/// The request as the API shows it.
pub fn view(request: &EnrollmentRequest) -> Value {
    serde_json::to_value(request).expect("a request serializes")
}
