//! What members write: a new message in a category (general, medical, billing), to a provider
//! or group of the directory or to the category's desk, and replies. Each is kept as a FHIR
//! Communication (so it shows in Sent) and sent, in the same commit, through the outbox to the
//! destinations of its category; a reply goes where its conversation's category goes, and to
//! `replies` when that is none of the three or has no destination. The site's switches say
//! which of these members may do now.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::inbox::{self, category_of, written_by_member};
use crate::config::{MESSAGE_CATEGORIES, MessageDestinations, MessageSwitches};
use crate::core::Context;
use crate::domain::directory;
use crate::domain::mpi::patients;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::resources::{self, write};

/// The most text one message carries (characters).
pub const MAX_TEXT_CHARS: usize = 20_000;

/// The code system of the categories members write in.
pub const CATEGORY_SYSTEM: &str = "urn:tributary:message-category";

/// What a member writes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// `general`, `medical` or `billing` (a reply takes its conversation's).
    pub category: Option<String>,
    /// A provider or group of the directory: `Practitioner/id`, `PractitionerRole/id` or
    /// `Organization/id` (a reply goes to whoever wrote the message it answers).
    pub to: Option<String>,
    pub subject: Option<String>,
    pub text: String,
    #[serde(default)]
    pub attachments: Vec<NewAttachment>,
}

/// A file a member attaches, its bytes in base64.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAttachment {
    pub title: Option<String>,
    pub content_type: String,
    pub data: String,
}

/// Who writes, and for whom.
pub struct Writer<'a> {
    /// The member writing (the patient, or their proxy).
    pub member_id: &'a str,
    /// The patient the message is about.
    pub patient_id: &'a str,
}

/// Refuses, with a 403 coded for the switch, what the site does not offer now.
fn require(allowed: bool, code: &'static str, what: &str) -> Result<(), Refusal> {
    if allowed {
        return Ok(());
    }
    Err(Refusal::new(
        Kind::Forbidden,
        code,
        format!("this site does not offer {what} now"),
    ))
}

/// The 403 code of a category's switch.
fn category_off(category: &str) -> &'static str {
    match category {
        "general" => "general-questions-off",
        "medical" => "medical-questions-off",
        _ => "billing-questions-off",
    }
}

/// Writes a new message: stored, and queued to its category's destinations. Returns it as the
/// writer sees it and the deliveries queued.
pub fn write_new(
    ctx: &mut Context<'_, '_>,
    writer: &Writer<'_>,
    draft: Draft,
    switches: &MessageSwitches,
    destinations: &MessageDestinations,
) -> Result<(Value, Vec<String>), Refusal> {
    let category = draft.category.clone().ok_or_else(|| {
        Refusal::new(
            Kind::Invalid,
            "bad-category",
            "a message needs a category: general, medical or billing",
        )
    })?;
    if !MESSAGE_CATEGORIES.contains(&category.as_str()) {
        return Err(Refusal::new(
            Kind::Invalid,
            "bad-category",
            format!("`{category}` is not a category: general, medical or billing"),
        ));
    }
    require(
        switches.allows_category(&category),
        category_off(&category),
        &format!("{category} questions"),
    )?;
    let recipient = match &draft.to {
        Some(to) => Some(directory::entry_of(ctx.tx, to)?),
        None => None,
    };
    let push_to = destinations.of(&category);
    let message = communication(ctx, writer, &category, recipient, None, &draft)?;
    send(ctx, writer, message, &push_to)
}

/// Writes a reply to the patient's message `id`: to whoever wrote it (or, when the member wrote
/// it, to whom it went), in its conversation's category.
pub fn reply(
    ctx: &mut Context<'_, '_>,
    writer: &Writer<'_>,
    id: &str,
    draft: Draft,
    switches: &MessageSwitches,
    destinations: &MessageDestinations,
) -> Result<(Value, Vec<String>), Refusal> {
    require(switches.patient_replies, "replies-off", "replies")?;
    if draft.category.is_some() || draft.to.is_some() {
        return Err(Refusal::invalid(
            "a reply takes its conversation's category and goes to whoever wrote the message it answers: leave out `category` and `to`",
        ));
    }
    let answered_message = inbox::message_of(ctx.tx, writer.patient_id, id)?;
    let category = category_of(&answered_message).unwrap_or("").to_string();
    let recipient = if written_by_member(&answered_message) {
        answered_message["recipient"][0].clone()
    } else {
        answered_message["sender"].clone()
    };
    let recipient = recipient.is_object().then_some(recipient);
    let mut push_to = destinations.of(&category);
    if push_to.is_empty() {
        push_to = destinations.of("replies");
    }
    if push_to.is_empty() {
        return Err(Refusal::new(
            Kind::Conflict,
            "no-destination",
            format!(
                "this site sends replies in `{category}` conversations nowhere: messages.destinations.replies is empty"
            ),
        ));
    }
    let mut draft = draft;
    if draft.subject.is_none() {
        draft.subject = answered_message["topic"]["text"].as_str().map(str::to_string);
    }
    let category = if category.is_empty() { None } else { Some(category) };
    let message = communication(
        ctx,
        writer,
        category.as_deref().unwrap_or(""),
        recipient,
        Some(id),
        &draft,
    )?;
    send(ctx, writer, message, &push_to)
}

/// The Communication a member's draft makes.
fn communication(
    ctx: &Context<'_, '_>,
    writer: &Writer<'_>,
    category: &str,
    recipient: Option<Value>,
    in_reply_to: Option<&str>,
    draft: &Draft,
) -> Result<Value, Refusal> {
    let text = draft.text.trim();
    if text.is_empty() {
        return Err(Refusal::invalid("a message needs `text`"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Refusal::invalid(format!(
            "a message's text is at most {MAX_TEXT_CHARS} characters"
        )));
    }
    let mut payload = vec![json!({ "contentString": text })];
    for (n, attachment) in draft.attachments.iter().enumerate() {
        payload.push(json!({ "contentAttachment": attachment_of(n, attachment)? }));
    }
    let sender_name = patients::read(&*ctx.tx, writer.member_id)?
        .and_then(|p| display_name(&p))
        .unwrap_or_default();
    let mut message = json!({
        "resourceType": "Communication",
        "status": "completed",
        "subject": { "reference": format!("Patient/{}", writer.patient_id) },
        "sender": { "reference": format!("Patient/{}", writer.member_id), "display": sender_name },
        "sent": ctx.now,
        "payload": payload,
    });
    if !category.is_empty() {
        let system = if MESSAGE_CATEGORIES.contains(&category) {
            CATEGORY_SYSTEM
        } else {
            ""
        };
        message["category"] = match system {
            "" => json!([{ "text": category }]),
            system => json!([{ "coding": [{ "system": system, "code": category }], "text": category }]),
        };
    }
    if let Some(recipient) = recipient {
        message["recipient"] = json!([recipient]);
    }
    if let Some(subject) = draft.subject.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        message["topic"] = json!({ "text": subject });
    }
    if let Some(id) = in_reply_to {
        message["inResponseTo"] = json!([{ "reference": format!("Communication/{id}") }]);
    }
    Ok(message)
}

fn attachment_of(n: usize, attachment: &NewAttachment) -> Result<Value, Refusal> {
    let content_type = attachment.content_type.trim();
    let well_formed = content_type.split_once('/').is_some_and(|(kind, sub)| {
        !kind.is_empty() && !sub.is_empty() && !content_type.contains(char::is_whitespace)
    });
    if !well_formed {
        return Err(Refusal::invalid(format!(
            "attachment {n}: `{content_type}` is not a content type (type/subtype)"
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(attachment.data.trim())
        .map_err(|e| Refusal::invalid(format!("attachment {n}: `data` is not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(Refusal::invalid(format!("attachment {n} is empty")));
    }
    let mut stored = json!({
        "contentType": content_type,
        "data": attachment.data.trim(),
        "size": bytes.len(),
    });
    if let Some(title) = &attachment.title {
        stored["title"] = json!(title);
    }
    Ok(stored)
}

/// `Given Family` of a Patient's first name.
fn display_name(patient: &Value) -> Option<String> {
    let name = &patient["name"][0];
    let mut parts: Vec<&str> = name["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    parts.extend(name["family"].as_str());
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Stores the message and queues it to `push_to` in one stage; the writer has read it.
fn send(
    ctx: &mut Context<'_, '_>,
    writer: &Writer<'_>,
    message: Value,
    push_to: &[String],
) -> Result<(Value, Vec<String>), Refusal> {
    let id = write::new_id(ctx.seq, 0);
    let queued_before = ctx.deliveries().len();
    ctx.notify_also(push_to);
    let stored = ctx
        .stage(|ctx| resources::put(ctx.tx, "Communication", &id, message, ctx.now).map_err(Refusal::from));
    ctx.notify_also(&[]);
    let stored = stored?;
    let pushed = ctx.deliveries()[queued_before..].to_vec();
    inbox::save(
        ctx.tx,
        writer.member_id,
        &id,
        &inbox::MessageState {
            read_at: Some(ctx.now.to_string()),
            archived: false,
        },
    );
    let shown = inbox::shown(&*ctx.tx, writer.patient_id, writer.member_id, &stored)?;
    Ok((shown, pushed))
}
