//! A patient's messages as members see them: the boxes (Inbox, Sent, Archived), one message
//! opened, marked, and its attachments. A message is a FHIR Communication: received when its
//! `recipient` names the patient (a provider's or an external system's), sent when its
//! `subject` is the patient and its `sender` a member (the patient, or a proxy writing for
//! them). What each member did with a message (read, archived) is theirs, kept beside it under
//! the member who looked (a proxy's reading is not the patient's), not in the Communication.

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::refusal::{Kind, Refusal};
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current};
use crate::store::{Keyspace, Overlay, Reader, Store, StoreError};

/// A box of the patient's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageBox {
    /// Received and not archived.
    Inbox,
    /// Sent and not archived.
    Sent,
    /// Received or sent, and archived.
    Archived,
}

impl MessageBox {
    pub fn parse(name: &str) -> Option<MessageBox> {
        match name {
            "inbox" => Some(MessageBox::Inbox),
            "sent" => Some(MessageBox::Sent),
            "archived" => Some(MessageBox::Archived),
            _ => None,
        }
    }
}

/// What a member did with one message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageState {
    /// When the member first opened it.
    pub read_at: Option<String>,
    pub archived: bool,
}

fn state_key(viewer: &str, id: &str) -> Vec<u8> {
    format!("{viewer}\0{id}").into_bytes()
}

fn state_of(reader: &dyn Reader, viewer: &str, id: &str) -> Result<MessageState, StoreError> {
    Ok(reader
        .get(Keyspace::MessageState, &state_key(viewer, id))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

fn live(message: &Value) -> bool {
    !matches!(message["status"].as_str(), Some("entered-in-error" | "not-done"))
}

/// Whether a member (a Patient) wrote the message.
pub(super) fn written_by_member(message: &Value) -> bool {
    message["sender"]["reference"]
        .as_str()
        .is_some_and(|r| r.starts_with("Patient/"))
}

/// Whether the message was sent to the patient.
fn received_by(message: &Value, patient_id: &str) -> bool {
    let recipient = format!("Patient/{patient_id}");
    message["recipient"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["reference"].as_str() == Some(&recipient))
}

/// Whether a member wrote the message for the patient.
fn sent_for(message: &Value, patient_id: &str) -> bool {
    written_by_member(message)
        && message["subject"]["reference"].as_str() == Some(&format!("Patient/{patient_id}"))
}

/// The messages of the patient in `which` box as `viewer` (the patient, or a proxy) keeps them,
/// newest first, without their attachments' bytes.
pub fn of_patient(
    store: &dyn Store,
    patient_id: &str,
    viewer: &str,
    which: MessageBox,
) -> Result<Vec<Value>, SearchError> {
    let received = search::search(
        store,
        "Communication",
        &[("recipient".to_string(), format!("Patient/{patient_id}"))],
        Sort::default(),
    )?;
    let sent: Vec<Value> = search::search(
        store,
        "Communication",
        &[("patient".to_string(), patient_id.to_string())],
        Sort::default(),
    )?
    .into_iter()
    .filter(written_by_member)
    .collect();
    let threads = Threads::of(received.iter().chain(&sent));
    let mut shown = vec![];
    for (message, is_sent) in received
        .iter()
        .map(|m| (m, false))
        .chain(sent.iter().map(|m| (m, true)))
    {
        if !live(message) {
            continue;
        }
        let id = message["id"].as_str().unwrap_or("");
        let state = state_of(store, viewer, id)?;
        let wanted = match which {
            MessageBox::Inbox => !is_sent && !state.archived,
            MessageBox::Sent => is_sent && !state.archived,
            MessageBox::Archived => state.archived,
        };
        if wanted {
            shown.push(view(message, &state, &threads.root_of(message)));
        }
    }
    shown.sort_by(|a, b| {
        b["sent"]
            .as_str()
            .unwrap_or("")
            .cmp(a["sent"].as_str().unwrap_or(""))
    });
    shown.dedup_by(|a, b| a["id"] == b["id"]);
    Ok(shown)
}

/// Which message each answers (`inResponseTo`), to find the first of a conversation.
struct Threads(HashMap<String, String>);

impl Threads {
    fn of<'a>(messages: impl Iterator<Item = &'a Value>) -> Threads {
        Threads(
            messages
                .filter_map(|m| Some((m["id"].as_str()?.to_string(), answered(m)?)))
                .collect(),
        )
    }

    /// The first message of the conversation `message` is in, as far as the patient's messages
    /// go back (a loop stops where it closes).
    fn root_of(&self, message: &Value) -> String {
        let mut id = message["id"].as_str().unwrap_or("").to_string();
        for _ in 0..=self.0.len() {
            match self.0.get(&id) {
                Some(earlier) => id = earlier.clone(),
                None => break,
            }
        }
        id
    }
}

/// The id of the message `message` answers, if any.
pub(super) fn answered(message: &Value) -> Option<String> {
    message["inResponseTo"][0]["reference"].as_str().map(|r| {
        resources::params::reference_key(r)
            .trim_start_matches("Communication/")
            .to_string()
    })
}

/// A message's category, as its `text` or first code.
pub(super) fn category_of(message: &Value) -> Option<&str> {
    message["category"][0]["text"]
        .as_str()
        .or(message["category"][0]["coding"][0]["code"].as_str())
}

fn view(message: &Value, state: &MessageState, thread: &str) -> Value {
    let payloads = message["payload"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let text: Vec<&str> = payloads
        .iter()
        .filter_map(|p| p["contentString"].as_str())
        .collect();
    let attachments: Vec<Value> = payloads
        .iter()
        .filter(|p| p["contentAttachment"].is_object())
        .enumerate()
        .map(|(n, p)| {
            json!({
                "n": n,
                "title": p["contentAttachment"]["title"],
                "content_type": p["contentAttachment"]["contentType"],
            })
        })
        .collect();
    let to: Vec<&Value> = message["recipient"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| &r["display"])
        .collect();
    json!({
        "id": message["id"],
        "thread": thread,
        "in_reply_to": answered(message),
        "category": category_of(message),
        "subject": message["topic"]["text"],
        "from": message["sender"]["display"],
        "to": to,
        "sent": message["sent"],
        "text": text.join("\n\n"),
        "attachments": attachments,
        "read": state.read_at.is_some(),
        "archived": state.archived,
    })
}

/// The patient's message `id` (received or sent), or 404.
pub(super) fn message_of(reader: &dyn Reader, patient_id: &str, id: &str) -> Result<Value, Refusal> {
    match resources::read(reader, "Communication", id)? {
        Some(Current::Live(message))
            if live(&message) && (received_by(&message, patient_id) || sent_for(&message, patient_id)) =>
        {
            Ok(message)
        }
        _ => Err(Refusal::not_found(format!("no message `{id}` of yours"))),
    }
}

/// The first message of the conversation `message` is in, read back through the store.
fn thread_in_store(reader: &dyn Reader, patient_id: &str, message: &Value) -> String {
    let mut seen = vec![message["id"].as_str().unwrap_or("").to_string()];
    let mut current = message.clone();
    while let Some(earlier) = answered(&current) {
        if seen.contains(&earlier) || seen.len() > 100 {
            break;
        }
        match message_of(reader, patient_id, &earlier) {
            Ok(found) => {
                seen.push(earlier);
                current = found;
            }
            Err(_) => break,
        }
    }
    seen.pop().unwrap_or_default()
}

/// One message as `viewer` sees it, without changing what they did with it.
pub(super) fn shown(
    reader: &dyn Reader,
    patient_id: &str,
    viewer: &str,
    message: &Value,
) -> Result<Value, Refusal> {
    let id = message["id"].as_str().unwrap_or("");
    let state = state_of(reader, viewer, id)?;
    Ok(view(
        message,
        &state,
        &thread_in_store(reader, patient_id, message),
    ))
}

/// Opens the message: it, as `viewer` sees it, marked read by them from now on.
pub fn open(
    tx: &mut Overlay<'_>,
    patient_id: &str,
    viewer: &str,
    id: &str,
    now: &str,
) -> Result<Value, Refusal> {
    let message = message_of(tx, patient_id, id)?;
    let mut state = state_of(tx, viewer, id)?;
    if state.read_at.is_none() {
        state.read_at = Some(now.to_string());
        save(tx, viewer, id, &state);
    }
    shown(tx, patient_id, viewer, &message)
}

/// Marks the message read or unread, archived or not, as given, for `viewer`.
pub fn mark(
    tx: &mut Overlay<'_>,
    patient_id: &str,
    viewer: &str,
    id: &str,
    read: Option<bool>,
    archived: Option<bool>,
    now: &str,
) -> Result<Value, Refusal> {
    let message = message_of(tx, patient_id, id)?;
    let mut state = state_of(tx, viewer, id)?;
    match read {
        Some(true) if state.read_at.is_none() => state.read_at = Some(now.to_string()),
        Some(false) => state.read_at = None,
        _ => {}
    }
    if let Some(archived) = archived {
        state.archived = archived;
    }
    save(tx, viewer, id, &state);
    shown(tx, patient_id, viewer, &message)
}

/// Keeps what `viewer` did with message `id`.
pub(super) fn save(tx: &mut Overlay<'_>, viewer: &str, id: &str, state: &MessageState) {
    tx.put(
        Keyspace::MessageState,
        state_key(viewer, id),
        serde_json::to_vec(state).expect("a message state serializes"),
    );
}

/// Attachment `n` of the patient's message `id`: its content type and bytes.
pub fn attachment(
    reader: &dyn Reader,
    patient_id: &str,
    id: &str,
    n: usize,
) -> Result<(String, Vec<u8>), Refusal> {
    let message = message_of(reader, patient_id, id)?;
    let attachment = message["payload"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["contentAttachment"].is_object())
        .nth(n)
        .map(|p| &p["contentAttachment"])
        .ok_or_else(|| {
            Refusal::new(
                Kind::NotFound,
                "no-attachment",
                format!("message `{id}` has no attachment {n}"),
            )
        })?;
    // The file is in the attachment (`data`), or a Binary it points at (`url`).
    let binary = match (attachment.get("data"), attachment["url"].as_str()) {
        (None, Some(url)) => Some(binary_of(reader, url, id, n)?),
        _ => None,
    };
    let holder = binary.as_ref().unwrap_or(attachment);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(holder["data"].as_str().unwrap_or(""))
        .map_err(|e| {
            Refusal::new(
                Kind::Store,
                "bad-attachment",
                format!("the stored attachment is not base64: {e}"),
            )
        })?;
    let content_type = attachment["contentType"]
        .as_str()
        .or(holder["contentType"].as_str())
        .unwrap_or("application/octet-stream")
        .to_string();
    Ok((content_type, bytes))
}

/// The Binary an attachment's `url` names (`Binary/<id>`, relative or on this server), or 404.
fn binary_of(reader: &dyn Reader, url: &str, id: &str, n: usize) -> Result<Value, Refusal> {
    let key = resources::params::reference_key(url);
    let missing = || {
        Refusal::new(
            Kind::NotFound,
            "no-attachment",
            format!("attachment {n} of message `{id}` points at `{url}`, which this server does not hold"),
        )
    };
    let binary_id = key.strip_prefix("Binary/").ok_or_else(missing)?;
    match resources::read(reader, "Binary", binary_id)? {
        Some(Current::Live(binary)) => Ok(binary),
        _ => Err(missing()),
    }
}
