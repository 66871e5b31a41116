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
use crate::core::journal_index::{self, Query as SearchQuery};
use crate::deliveries::queue::{self, DeadLetterError};
use crate::hl7::{Delimiters, Message};

/// Journal entries one page of the browser shows.
const PAGE: usize = 50;

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
    let rates = crate::metrics::message_rates();
    let mut body = format!(
        "<p class=\"note\">Messages answered since the engine started; msg/s in {}-second steps over the last {} minutes.</p>\
         <table><caption>Channels</caption><tr><th scope=\"col\">channel</th><th scope=\"col\">msg/s</th>",
        crate::metrics::RATE_STEP_SECS,
        crate::metrics::RATE_STEP_SECS * crate::metrics::RATE_STEPS as u64 / 60,
    );
    for status in statuses {
        body.push_str(&format!("<th scope=\"col\">{status}</th>"));
    }
    body.push_str("</tr>");
    for channel in &channels {
        body.push_str(&format!(
            "<tr><th scope=\"row\"><a href=\"/console/messages?channel={}\">{}</a></th><td>{}</td>",
            esc(&url_encode(channel)),
            esc(channel),
            rate_chart(channel, rates.get(*channel).map(Vec::as_slice).unwrap_or(&[])),
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
        body.push_str("<tr><td colspan=\"8\">No message yet.</td></tr>");
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

/// A small line chart of a channel's msg/s, oldest step left, drawn in SVG (the console runs no
/// script); its text alternative gives the latest and the highest rate.
fn rate_chart(channel: &str, per_second: &[f64]) -> String {
    let (width, height) = (180.0, 28.0);
    let peak = per_second.iter().copied().fold(0.0_f64, f64::max);
    let latest = per_second.last().copied().unwrap_or(0.0);
    let step = width / (per_second.len().max(2) - 1) as f64;
    let points: Vec<String> = per_second
        .iter()
        .enumerate()
        .map(|(i, rate)| {
            let y = if peak > 0.0 {
                height - 2.0 - rate / peak * (height - 4.0)
            } else {
                height - 2.0
            };
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect();
    format!(
        "<svg class=\"rate\" role=\"img\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" aria-label=\"{label}\">\
         <title>{label}</title><polyline fill=\"none\" stroke=\"#005eb8\" stroke-width=\"1.5\" points=\"{}\"/></svg> {latest:.1}",
        points.join(" "),
        label = esc(&format!(
            "{channel}: {latest:.1} msg/s now, at most {peak:.1} in the last ten minutes"
        )),
    )
}

/// `GET /console/messages`: the journal, newest first, searched through its index
/// (`core::journal_index`): by channel, status, type, control id, sender, patient identifier and
/// arrival time, a page at a time.
pub async fn messages(
    State(state): State<AppState>,
    Analyst(caller): Analyst,
    Query(query): Query<SearchQuery>,
) -> Response {
    let store = state.store.clone();
    let search = query.clone();
    let started = std::time::Instant::now();
    let found =
        tokio::task::spawn_blocking(move || journal_index::search(store.as_ref(), &search, PAGE)).await;
    let found = match found {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return failure(&caller, &e.to_string()),
        Err(e) => return failure(&caller, &e.to_string()),
    };
    let took = started.elapsed();
    let field = |name: &str, value: &str, label: &str, kind: &str| {
        format!(
            "<label>{label} <input type=\"{kind}\" name=\"{name}\" value=\"{}\" size=\"12\"></label> ",
            esc(value)
        )
    };
    let statuses = ["", "applied", "duplicate", "error", "rejected", "filtered"];
    let status_options: String = statuses
        .iter()
        .map(|s| {
            let selected = if *s == query.status.trim() {
                " selected"
            } else {
                ""
            };
            let label = if s.is_empty() { "any" } else { s };
            format!("<option value=\"{s}\"{selected}>{label}</option>")
        })
        .collect();
    let mut body = format!(
        "<form method=\"get\" action=\"/console/messages\" aria-label=\"Search the journal\">{}\
         <label>status <select name=\"status\">{status_options}</select></label> {}{}{}{}{}{}\
         <button>Search</button></form>\
         <p class=\"note\">Newest first. Times are UTC. {} {} examined in {} ms.</p>\
         <table><caption>Journal entries</caption><tr><th scope=\"col\">seq</th><th scope=\"col\">received</th><th scope=\"col\">channel</th><th scope=\"col\">type</th><th scope=\"col\">status</th><th scope=\"col\">sender</th><th scope=\"col\">control id</th><th scope=\"col\">patient</th><th scope=\"col\">error</th></tr>",
        field("channel", &query.channel, "channel", "text"),
        field("type", &query.message_type, "type", "text"),
        field("control_id", &query.control_id, "control id", "text"),
        field("sender", &query.sender, "sender", "text"),
        field("patient", &query.patient, "patient identifier", "text"),
        field("since", &query.since, "from", "datetime-local"),
        field("until", &query.until, "until", "datetime-local"),
        found.examined,
        if found.examined == 1 { "entry" } else { "entries" },
        took.as_millis(),
    );
    for row in &found.rows {
        body.push_str(&format!(
            "<tr><td><a href=\"/console/messages/{seq}\">{seq}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"error\">{}</td></tr>",
            esc(&row.received_at),
            esc(&row.channel),
            esc(&row.message_type),
            row.status.name(),
            esc(&row.sender),
            esc(&row.control_id),
            esc(&row.identifiers.join(", ")),
            esc(row.error.as_deref().unwrap_or("")),
            seq = row.seq,
        ));
    }
    if found.rows.is_empty() {
        body.push_str("<tr><td colspan=\"9\">No message matches.</td></tr>");
    }
    body.push_str("</table>");
    if !found.rows.is_empty() {
        let hidden: String = query
            .form_fields()
            .iter()
            .map(|(name, value)| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", esc(value)))
            .collect();
        body.push_str(&format!(
            "<form method=\"post\" action=\"/console/messages/reprocess\">{hidden}\
             <label>Reason <input name=\"reason\" required size=\"30\"></label> \
             <button>Reprocess every message this search finds (up to {}, oldest first)</button></form>",
            super::reprocess_set::MAX_SET
        ));
    }
    if found.stopped_at_budget {
        body.push_str(&format!(
            "<p class=\"note\">Stopped after {} entries without filling the page: search further back with the link below, or narrow the search.</p>",
            journal_index::SEARCH_BUDGET
        ));
    }
    if let Some(before) = found.next_before {
        let link: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.form_fields())
            .append_pair("before", &before.to_string())
            .finish();
        body.push_str(&format!(
            "<p><a href=\"/console/messages?{}\">Older</a></p>",
            esc(&link)
        ));
    }
    page(StatusCode::OK, "Messages", Some(&caller.actor()), &body)
}

fn url_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub(super) fn failure(caller: &crate::domain::accounts::roles::Caller, error: &str) -> Response {
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
            .map(|e| format!(
                "<tr><th>error</th><td class=\"error\">{}{}</td></tr>",
                esc(e),
                failed_rule(e)
                    .map(|(mapping, line)| format!(
                        " <a href=\"/console/mappings/{m}?line={line}#L{line}\">See line {line} of mapping {m}</a>",
                        m = esc(mapping)
                    ))
                    .unwrap_or_default()
            ))
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
    body.push_str("<h2>What it changed</h2>");
    if entry.changes.is_empty() {
        body.push_str("<p>Nothing in the store.</p>");
    }
    for change in &entry.changes {
        body.push_str(&changed_record(state.store.as_ref(), change));
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

/// The mapping and line an error names (`mapping adt-patient line 12`), to link to.
fn failed_rule(error: &str) -> Option<(&str, usize)> {
    let (_, rest) = error.rsplit_once("mapping ")?;
    let (mapping, rest) = rest.split_once(" line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let safe = !mapping.is_empty()
        && mapping
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    Some((mapping, digits.parse().ok()?)).filter(|_| safe)
}

/// One record a message changed: for a FHIR resource, the version it wrote (the mapped output
/// as stored), folded.
fn changed_record(store: &dyn crate::store::Store, change: &str) -> String {
    let versioned = change.split_once("/_history/").and_then(|(record, version)| {
        let (kind, id) = record.split_once('/')?;
        Some((kind, id, version.parse::<u64>().ok()?))
    });
    let Some((kind, id, version)) = versioned else {
        return format!("<p>{}</p>", esc(change));
    };
    let shown = match crate::domain::resources::vread(store, kind, id, version) {
        Ok(Some(resource)) => serde_json::to_string_pretty(&resource).unwrap_or_default(),
        Ok(None) => "This version is no longer kept.".into(),
        Err(e) => format!("It could not be read: {e}"),
    };
    format!(
        "<details><summary>{} version {version}</summary><pre>{}</pre></details>",
        esc(&format!("{kind}/{id}")),
        esc(&shown)
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

    #[test]
    fn an_error_names_the_mapping_and_line_to_link_to() {
        assert_eq!(
            failed_rule("PID-3.99 is required (PID-3.99, mapping ucr-oru-result line 14)"),
            Some(("ucr-oru-result", 14))
        );
        assert_eq!(failed_rule("control id `X` was already used"), None);
        assert_eq!(
            failed_rule("x (PID-3, mapping ../etc line 2)"),
            None,
            "only a plain name"
        );
        assert_eq!(failed_rule("x (mapping a line )"), None);
    }

    #[test]
    fn the_rate_chart_has_a_point_a_step_and_says_what_it_shows() {
        let chart = rate_chart("ucr-adt", &[0.0, 2.0, 4.0]);
        assert!(
            chart.contains("points=\"0.0,26.0 90.0,14.0 180.0,2.0\""),
            "{chart}"
        );
        assert!(chart.contains("ucr-adt: 4.0 msg/s now, at most 4.0"), "{chart}");
    }
}
