//! The console's pages: the channels dashboard, the message browser and one message in detail
//! (its segments labelled, its ACKs and deliveries, a reprocess), and the dead letters (retried
//! or discarded). Each reads and acts through what the API uses.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::html::{esc, page, see_other};
use super::session::Analyst;
use crate::api::AppState;
use crate::api::journal::entry_at;
use crate::core::journal::JournalEntry;
use crate::deliveries::queue::{self, DeadLetterError};
use crate::hl7::{Delimiters, Message};

/// Journal entries one page of the browser shows.
const PAGE: usize = 50;

/// Journal entries the browser reads back, at most, for one page of matches (newest first).
const SCANNED: u64 = 5_000;

/// `GET /console`: each channel's messages by status since the engine started, and each
/// destination's queue.
pub async fn dashboard(State(state): State<AppState>, Analyst(caller): Analyst) -> Response {
    let counts = crate::metrics::messages_by_channel();
    let statuses = [
        "applied",
        "duplicate",
        "error",
        "rejected",
        "filtered",
        "unstored",
    ];
    let mut channels: Vec<&str> = counts.keys().map(|(c, _)| c.as_str()).collect();
    channels.dedup();
    let mut body = String::from(
        "<p class=\"note\">Messages answered since the engine started.</p><table><tr><th>channel</th>",
    );
    for status in statuses {
        body.push_str(&format!("<th>{status}</th>"));
    }
    body.push_str("</tr>");
    for channel in &channels {
        body.push_str(&format!(
            "<tr><td><a href=\"/console/messages?channel={}\">{}</a></td>",
            esc(&url_encode(channel)),
            esc(channel)
        ));
        for status in statuses {
            let n = counts.get(&(channel.to_string(), status)).copied().unwrap_or(0);
            body.push_str(&format!(
                "<td><a href=\"/console/messages?channel={}&amp;status={status}\">{n}</a></td>",
                esc(&url_encode(channel))
            ));
        }
        body.push_str("</tr>");
    }
    if channels.is_empty() {
        body.push_str("<tr><td colspan=\"7\">No message yet.</td></tr>");
    }
    body.push_str("</table><h2>Destinations</h2><table><tr><th>destination</th><th>waiting</th><th>oldest waiting</th></tr>");
    for queue in crate::api::metrics::queue_states(&state).await {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:.1} s</td></tr>",
            esc(&queue.destination),
            queue.depth,
            queue.oldest_age.as_secs_f64()
        ));
    }
    body.push_str("</table>");
    page(StatusCode::OK, "Channels", Some(&caller.actor()), &body)
}

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    message_type: String,
    #[serde(default)]
    control_id: String,
    #[serde(default)]
    sender: String,
    /// A patient identifier (or id) the message names.
    #[serde(default)]
    patient: String,
    /// Only entries before this sequence number (the next page).
    before: Option<u64>,
}

impl Filters {
    fn keep(&self, entry: &JournalEntry) -> bool {
        let blank_or =
            |filter: &str, test: &dyn Fn(&str) -> bool| filter.trim().is_empty() || test(filter.trim());
        blank_or(&self.channel, &|f| entry.channel == f)
            && blank_or(&self.status, &|f| json_name(entry) == f)
            && blank_or(&self.message_type, &|f| entry.message_type.starts_with(f))
            && blank_or(&self.control_id, &|f| entry.control_id == f)
            && blank_or(&self.sender, &|f| {
                entry.sender.to_lowercase().contains(&f.to_lowercase())
            })
            && blank_or(&self.patient, &|f| {
                entry.patients.iter().any(|p| p == f) || entry.message.contains(f)
            })
    }
}

fn json_name(entry: &JournalEntry) -> &'static str {
    entry.status.name()
}

/// `GET /console/messages`: the journal, newest first, filtered.
pub async fn messages(
    State(state): State<AppState>,
    Analyst(caller): Analyst,
    Query(filters): Query<Filters>,
) -> Response {
    let store = state.store.clone();
    let before = filters.before;
    let read = tokio::task::spawn_blocking(move || {
        let last = store.journal_last_seq();
        let end = before.map_or(last, |b| b.saturating_sub(1).min(last));
        let start = end.saturating_sub(SCANNED - 1).max(1);
        let entries = store.journal(start, (end + 1 - start.min(end + 1)) as usize)?;
        Ok::<_, crate::store::StoreError>((start, entries))
    })
    .await;
    let (start, entries) = match read {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return failure(&caller, &e.to_string()),
        Err(e) => return failure(&caller, &e.to_string()),
    };
    let mut shown = vec![];
    for (_, bytes) in entries.iter().rev() {
        if let Ok(entry) = JournalEntry::from_bytes(bytes)
            && filters.keep(&entry)
        {
            shown.push(entry);
            if shown.len() == PAGE {
                break;
            }
        }
    }
    let field = |name: &str, value: &str, label: &str| {
        format!(
            "<label>{label} <input name=\"{name}\" value=\"{}\" size=\"12\"></label> ",
            esc(value)
        )
    };
    let mut body = format!(
        "<form method=\"get\" action=\"/console/messages\">{}{}{}{}{}{}<button>Search</button></form>\
         <p class=\"note\">Newest first, among the {SCANNED} journal entries before the page's start.</p>\
         <table><tr><th>seq</th><th>received</th><th>channel</th><th>type</th><th>status</th><th>sender</th><th>control id</th><th>error</th></tr>",
        field("channel", &filters.channel, "channel"),
        field("status", &filters.status, "status"),
        field("type", &filters.message_type, "type"),
        field("control_id", &filters.control_id, "control id"),
        field("sender", &filters.sender, "sender"),
        field("patient", &filters.patient, "patient"),
    );
    for entry in &shown {
        body.push_str(&format!(
            "<tr><td><a href=\"/console/messages/{seq}\">{seq}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"error\">{}</td></tr>",
            esc(&entry.received_at),
            esc(&entry.channel),
            esc(&entry.message_type),
            entry.status.name(),
            esc(&entry.sender),
            esc(&entry.control_id),
            esc(entry.error.as_deref().unwrap_or("")),
            seq = entry.seq,
        ));
    }
    if shown.is_empty() {
        body.push_str("<tr><td colspan=\"8\">No message matches.</td></tr>");
    }
    body.push_str("</table>");
    if start > 1 {
        let oldest = if shown.len() == PAGE {
            shown.last().map_or(start, |e| e.seq)
        } else {
            start
        };
        body.push_str(&format!(
            "<p><a href=\"/console/messages?channel={}&amp;status={}&amp;type={}&amp;control_id={}&amp;sender={}&amp;patient={}&amp;before={oldest}\">Older</a></p>",
            esc(&url_encode(&filters.channel)),
            esc(&url_encode(&filters.status)),
            esc(&url_encode(&filters.message_type)),
            esc(&url_encode(&filters.control_id)),
            esc(&url_encode(&filters.sender)),
            esc(&url_encode(&filters.patient)),
        ));
    }
    page(StatusCode::OK, "Messages", Some(&caller.actor()), &body)
}

fn url_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn failure(caller: &crate::domain::accounts::roles::Caller, error: &str) -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The store could not be read",
        Some(&caller.actor()),
        &format!("<p class=\"error\">{}</p>", esc(error)),
    )
}

/// `GET /console/messages/{seq}`: the message with its segments labelled (hover a field or
/// component for its name, `PID-5.1`), escapes decoded; its ACKs, error and deliveries.
pub async fn message(
    State(state): State<AppState>,
    Analyst(caller): Analyst,
    Path(seq): Path<u64>,
) -> Response {
    let entry = match entry_at(state.store.clone(), seq).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return page(
                StatusCode::NOT_FOUND,
                "No such message",
                Some(&caller.actor()),
                &format!("<p>The journal has no entry {seq}.</p>"),
            );
        }
        Err(e) => return failure(&caller, &e),
    };
    let mut body = format!(
        "<table><tr><th>received</th><td>{}</td></tr><tr><th>channel</th><td>{}</td></tr>\
         <tr><th>from</th><td>{} ({})</td></tr><tr><th>type</th><td>{}</td></tr>\
         <tr><th>control id</th><td>{}</td></tr><tr><th>status</th><td>{}</td></tr>{}{}</table>",
        esc(&entry.received_at),
        esc(&entry.channel),
        esc(&entry.sender),
        esc(&entry.peer),
        esc(&entry.message_type),
        esc(&entry.control_id),
        entry.status.name(),
        entry
            .error
            .as_ref()
            .map(|e| format!("<tr><th>error</th><td class=\"error\">{}</td></tr>", esc(e)))
            .unwrap_or_default(),
        entry
            .duplicate_of
            .map(|d| format!("<tr><th>resend of</th><td><a href=\"/console/messages/{d}\">{d}</a></td></tr>"))
            .unwrap_or_default(),
    );
    body.push_str("<h2>Message</h2>");
    body.push_str(&labelled(&entry.message));
    if let Some(size) = entry.message_bytes {
        body.push_str(&format!(
            "<p class=\"note\">Only the first {} of its {size} bytes were kept.</p>",
            entry.message.len()
        ));
    }
    body.push_str("<h2>Replies</h2>");
    for reply in &entry.replies {
        body.push_str(&labelled(reply));
    }
    body.push_str("<h2>Deliveries it caused</h2><table><tr><th>id</th><th>state</th><th>tries</th><th>last error</th></tr>");
    for id in &entry.deliveries {
        let found = queue::find(state.store.as_ref(), id).ok().flatten();
        let (status, attempts, error) = found
            .map(|d| {
                (
                    format!("{:?}", d.state).to_lowercase(),
                    d.attempts,
                    d.last_error.unwrap_or_default(),
                )
            })
            .unwrap_or_else(|| ("unknown".into(), 0, String::new()));
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{attempts}</td><td>{}</td></tr>",
            esc(id),
            esc(&status),
            esc(&error)
        ));
    }
    body.push_str(&format!(
        "</table><h2>Reprocess</h2><form method=\"post\" action=\"/console/messages/{seq}/reprocess\">\
         <label>Reason <input name=\"reason\" required size=\"40\"></label> <button>Run it through today's mappings</button></form>"
    ));
    page(
        StatusCode::OK,
        &format!("Message {seq}"),
        Some(&caller.actor()),
        &body,
    )
}

/// A message's segments, one a line, each field and component in a span titled with its
/// name, its text unescaped.
fn labelled(text: &str) -> String {
    let delimiters = Message::parse(text.as_bytes())
        .map(|m| *m.delimiters())
        .unwrap_or(Delimiters::STANDARD);
    let mut out = String::from("<div class=\"seg\">");
    for line in text.split(['\r', '\n']).filter(|l| !l.is_empty()) {
        let mut fields = line.split(delimiters.field);
        let name = fields.next().unwrap_or("");
        out.push_str(&format!("<b>{}</b>", esc(name)));
        // MSH-1 is the field separator itself, so MSH's fields are numbered one higher.
        let first = if name == "MSH" { 2 } else { 1 };
        for (i, field) in fields.enumerate() {
            let number = first + i;
            out.push_str(&esc(&delimiters.field.to_string()));
            if name == "MSH" && number == 2 {
                out.push_str(&format!("<span title=\"MSH-2\">{}</span>", esc(field)));
                continue;
            }
            out.push_str(&format!("<span title=\"{name}-{number}\">", name = esc(name)));
            for (r, repetition) in field.split(delimiters.repetition).enumerate() {
                if r > 0 {
                    out.push_str(&esc(&delimiters.repetition.to_string()));
                }
                let components: Vec<&str> = repetition.split(delimiters.component).collect();
                for (c, component) in components.iter().enumerate() {
                    if c > 0 {
                        out.push_str(&esc(&delimiters.component.to_string()));
                    }
                    let shown = esc(&crate::hl7::escape::unescape(component, &delimiters));
                    if components.len() > 1 {
                        out.push_str(&format!(
                            "<span title=\"{}-{number}.{}\">{shown}</span>",
                            esc(name),
                            c + 1
                        ));
                    } else {
                        out.push_str(&shown);
                    }
                }
            }
            out.push_str("</span>");
        }
        out.push('\n');
    }
    out.push_str("</div>");
    out
}

#[derive(Deserialize)]
pub struct ReasonForm {
    reason: String,
}

/// `POST /console/messages/{seq}/reprocess` (form `reason`): through its listener again, the
/// analyst and the reason kept as the new journal entry's peer.
pub async fn reprocess(
    State(state): State<AppState>,
    Analyst(caller): Analyst,
    Path(seq): Path<u64>,
    Form(form): Form<ReasonForm>,
) -> Response {
    let reason = form.reason.trim();
    if reason.is_empty() {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "A reason is needed",
            Some(&caller.actor()),
            "<p>Say why the message is reprocessed.</p>",
        );
    }
    let entry = match entry_at(state.store.clone(), seq).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return see_other(&format!("/console/messages/{seq}")),
        Err(e) => return failure(&caller, &e),
    };
    let by = format!("{} (console: {reason})", caller.actor());
    match state.listeners.reprocess(seq, &entry, &by).await {
        Ok(_) => {
            tracing::info!(seq, by = %by, "reprocessed from the console");
            see_other(&format!(
                "/console/messages?channel={}",
                url_encode(&entry.channel)
            ))
        }
        Err(e) => page(
            StatusCode::CONFLICT,
            "Not reprocessed",
            Some(&caller.actor()),
            &format!("<p class=\"error\">{}</p>", esc(&e.to_string())),
        ),
    }
}

/// `GET /console/dead-letters`: what failed for good, oldest first, with its last error; a
/// notification's content is not shown.
pub async fn dead_letters(State(state): State<AppState>, Analyst(caller): Analyst) -> Response {
    let store = state.store.clone();
    let listed = tokio::task::spawn_blocking(move || queue::dead_letters(store.as_ref(), None, 500)).await;
    let dead = match listed {
        Ok(Ok(dead)) => dead,
        Ok(Err(e)) => return failure(&caller, &e.to_string()),
        Err(e) => return failure(&caller, &e.to_string()),
    };
    let mut body = String::from(
        "<table><tr><th>id</th><th>destination</th><th>cause</th><th>tries</th><th>died</th><th>last error</th><th></th></tr>",
    );
    for delivery in &dead {
        let id = esc(&delivery.id);
        body.push_str(&format!(
            "<tr><td>{id}</td><td>{}</td><td><a href=\"/console/messages/{cause}\">{cause}</a></td><td>{}</td><td>{}</td><td class=\"error\">{}</td>\
             <td><form class=\"inline\" method=\"post\" action=\"/console/dead-letters/{id}/retry\"><button>Retry</button></form> \
             <form class=\"inline\" method=\"post\" action=\"/console/dead-letters/{id}/discard\"><button>Discard</button></form></td></tr>",
            esc(&delivery.destination),
            delivery.attempts,
            esc(delivery.finished_at.as_deref().unwrap_or("")),
            esc(delivery.last_error.as_deref().unwrap_or("")),
            cause = delivery.cause,
        ));
    }
    if dead.is_empty() {
        body.push_str("<tr><td colspan=\"7\">No dead letter.</td></tr>");
    }
    body.push_str("</table>");
    page(StatusCode::OK, "Dead letters", Some(&caller.actor()), &body)
}

/// `POST /console/dead-letters/{id}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    Analyst(caller): Analyst,
    Path(id): Path<String>,
) -> Response {
    match crate::api::outbox::dead_letter_move(&state, id, queue::retry_dead_letter).await {
        Ok(delivery) => {
            state.outbox.wake(&delivery.destination);
            tracing::info!(id = %delivery.id, by = %caller.actor(), "dead letter put back from the console");
            see_other("/console/dead-letters")
        }
        Err(e) => refused(&caller, e),
    }
}

/// `POST /console/dead-letters/{id}/discard`.
pub async fn discard(
    State(state): State<AppState>,
    Analyst(caller): Analyst,
    Path(id): Path<String>,
) -> Response {
    match crate::api::outbox::dead_letter_move(&state, id, queue::discard_dead_letter).await {
        Ok(delivery) => {
            tracing::info!(id = %delivery.id, by = %caller.actor(), "dead letter discarded from the console");
            see_other("/console/dead-letters")
        }
        Err(e) => refused(&caller, e),
    }
}

fn refused(caller: &crate::domain::accounts::roles::Caller, e: DeadLetterError) -> Response {
    let status = match e {
        DeadLetterError::NotFound(_) => StatusCode::NOT_FOUND,
        DeadLetterError::SecretsDropped(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    page(
        status,
        "Not done",
        Some(&caller.actor()),
        &format!("<p class=\"error\">{}</p>", esc(&e.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_components_are_labelled_and_escapes_decoded() {
        let shown = labelled("MSH|^~\\&|UCR|X\rPID|1||123^^^MPI||DOE^JANE\\T\\CO");
        assert!(shown.contains("<span title=\"MSH-3\">UCR</span>"), "{shown}");
        assert!(shown.contains("<span title=\"PID-5.1\">DOE</span>"), "{shown}");
        assert!(
            shown.contains("<span title=\"PID-5.2\">JANE&amp;CO</span>"),
            "{shown}"
        );
        assert!(shown.contains("<span title=\"PID-3\">"), "{shown}");
    }
}
