//! A member's messages (release notes 6.6), first part: the inbox of messages providers send.
//! Each message is a FHIR Communication (posted to `/fhir` by the provider's system) whose
//! `recipient` names the patient; its text is the `contentString` payloads, its attachments the
//! `contentAttachment` ones. What each member did with a message (read, archived) is theirs,
//! kept beside it, not in the Communication, which the provider's system owns.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::refusal::{Kind, Refusal};
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current};
use crate::store::{Keyspace, Overlay, Reader, Store, StoreError};

/// A box of the member's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageBox {
    /// Received and not archived.
    Inbox,
    /// Received and archived.
    Archived,
}

/// What a member did with one message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageState {
    /// When the member first opened it.
    pub read_at: Option<String>,
    pub archived: bool,
}

fn state_key(patient_id: &str, id: &str) -> Vec<u8> {
    format!("{patient_id}\0{id}").into_bytes()
}

fn state_of(reader: &dyn Reader, patient_id: &str, id: &str) -> Result<MessageState, StoreError> {
    Ok(reader
        .get(Keyspace::MessageState, &state_key(patient_id, id))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

/// The messages sent to the patient in `which` box, newest first, without their attachments'
/// bytes.
pub fn of_patient(store: &dyn Store, patient_id: &str, which: MessageBox) -> Result<Vec<Value>, SearchError> {
    let filters = vec![("recipient".to_string(), format!("Patient/{patient_id}"))];
    let mut messages = search::search(store, "Communication", &filters, Sort::default())?;
    messages.retain(|m| !matches!(m["status"].as_str(), Some("entered-in-error" | "not-done")));
    messages.sort_by(|a, b| {
        b["sent"]
            .as_str()
            .unwrap_or("")
            .cmp(a["sent"].as_str().unwrap_or(""))
    });
    let mut shown = vec![];
    for message in &messages {
        let id = message["id"].as_str().unwrap_or("");
        let state = state_of(store, patient_id, id)?;
        if state.archived == (which == MessageBox::Archived) {
            shown.push(view(message, &state));
        }
    }
    Ok(shown)
}

fn view(message: &Value, state: &MessageState) -> Value {
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
    json!({
        "id": message["id"],
        "thread": message["inResponseTo"][0]["reference"].as_str().map(|r| r.trim_start_matches("Communication/")).or(message["id"].as_str()),
        "category": message["category"][0]["text"].as_str().or(message["category"][0]["coding"][0]["code"].as_str()),
        "subject": message["topic"]["text"],
        "from": message["sender"]["display"],
        "sent": message["sent"],
        "text": text.join("\n\n"),
        "attachments": attachments,
        "read": state.read_at.is_some(),
        "archived": state.archived,
    })
}

/// The patient's message `id`, or 404.
fn message_of(reader: &dyn Reader, patient_id: &str, id: &str) -> Result<Value, Refusal> {
    let recipient = format!("Patient/{patient_id}");
    match resources::read(reader, "Communication", id)? {
        Some(Current::Live(message))
            if message["recipient"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["reference"].as_str() == Some(&recipient)) =>
        {
            Ok(message)
        }
        _ => Err(Refusal::not_found(format!("no message `{id}` of yours"))),
    }
}

/// Opens the message: it, as the member sees it, marked read from now on.
pub fn open(tx: &mut Overlay<'_>, patient_id: &str, id: &str, now: &str) -> Result<Value, Refusal> {
    let message = message_of(tx, patient_id, id)?;
    let mut state = state_of(tx, patient_id, id)?;
    if state.read_at.is_none() {
        state.read_at = Some(now.to_string());
        save(tx, patient_id, id, &state);
    }
    Ok(view(&message, &state))
}

/// Marks the message read or unread, archived or not, as given.
pub fn mark(
    tx: &mut Overlay<'_>,
    patient_id: &str,
    id: &str,
    read: Option<bool>,
    archived: Option<bool>,
    now: &str,
) -> Result<Value, Refusal> {
    let message = message_of(tx, patient_id, id)?;
    let mut state = state_of(tx, patient_id, id)?;
    match read {
        Some(true) if state.read_at.is_none() => state.read_at = Some(now.to_string()),
        Some(false) => state.read_at = None,
        _ => {}
    }
    if let Some(archived) = archived {
        state.archived = archived;
    }
    save(tx, patient_id, id, &state);
    Ok(view(&message, &state))
}

fn save(tx: &mut Overlay<'_>, patient_id: &str, id: &str, state: &MessageState) {
    tx.put(
        Keyspace::MessageState,
        state_key(patient_id, id),
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
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(attachment["data"].as_str().unwrap_or(""))
        .map_err(|e| {
            Refusal::new(
                Kind::Store,
                "bad-attachment",
                format!("the stored attachment is not base64: {e}"),
            )
        })?;
    let content_type = attachment["contentType"]
        .as_str()
        .unwrap_or("application/octet-stream")
        .to_string();
    Ok((content_type, bytes))
}
