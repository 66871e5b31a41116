//! Reprocessing a set of messages at once: every journal entry a browser search finds (up to
//! [`MAX_SET`]), oldest first, through its listener again as a single reprocess does (today's
//! mappings, journaled as a reprocess of the original by the analyst with their reason; a
//! message already applied gets its first answer again and changes nothing).

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::html::{esc, page};
use super::pages::failure;
use super::session::Analyst;
use crate::api::AppState;
use crate::api::journal::entry_at;
use crate::core::journal_index::{self, Query};

/// Messages one request reprocesses, at most.
pub const MAX_SET: usize = 1_000;

/// The search (as the browser's form carries it) and the reason.
#[derive(Debug, Deserialize)]
pub struct SetForm {
    #[serde(flatten)]
    query: Query,
    #[serde(default)]
    reason: String,
}

/// `POST /console/messages/reprocess`: every message the search finds, oldest first; a page
/// counting the answers each got.
pub async fn reprocess_set(
    State(state): State<AppState>,
    Analyst(caller): Analyst,
    Form(form): Form<SetForm>,
) -> Response {
    let reason = form.reason.trim().to_string();
    if reason.is_empty() {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "A reason is needed",
            Some(&caller.actor()),
            "<p>Say why the messages are reprocessed.</p>",
        );
    }
    // Every match, from the newest on.
    let query = Query {
        before: None,
        ..form.query
    };
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut query = query;
        let mut seqs = vec![];
        while seqs.len() < MAX_SET {
            let page = journal_index::search(store.as_ref(), &query, MAX_SET - seqs.len())?;
            seqs.extend(page.rows.iter().map(|row| row.seq));
            match page.next_before {
                Some(before) => query.before = Some(before),
                None => break,
            }
        }
        Ok::<_, crate::store::StoreError>(seqs)
    })
    .await;
    let mut seqs = match found {
        Ok(Ok(seqs)) => seqs,
        Ok(Err(e)) => return failure(&caller, &e.to_string()),
        Err(e) => return failure(&caller, &e.to_string()),
    };
    // In the order they first came, as their senders sent them.
    seqs.reverse();
    let by = format!("{} (console: {reason})", caller.actor());
    let mut answers: std::collections::BTreeMap<String, usize> = Default::default();
    let mut refused = vec![];
    for seq in &seqs {
        let outcome = match entry_at(state.store.clone(), *seq).await {
            Ok(Some(entry)) => state
                .listeners
                .reprocess(*seq, &entry, &by)
                .await
                .map_err(|e| e.to_string()),
            Ok(None) => Err("no longer in the journal".to_string()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(replies) => *answers.entry(ack_code(&replies)).or_default() += 1,
            Err(error) => refused.push(format!("{seq}: {error}")),
        }
    }
    tracing::info!(messages = seqs.len(), by = %by, "a set reprocessed from the console");
    let mut body = format!(
        "<p>{} messages found{}, reprocessed oldest first; the new journal entries say by whom and why.</p>\
         <table><caption>Answers</caption><tr><th scope=\"col\">answer</th><th scope=\"col\">messages</th></tr>",
        seqs.len(),
        if seqs.len() == MAX_SET {
            " (the most one request takes)"
        } else {
            ""
        }
    );
    for (code, count) in &answers {
        body.push_str(&format!("<tr><td>{}</td><td>{count}</td></tr>", esc(code)));
    }
    body.push_str("</table>");
    if !refused.is_empty() {
        body.push_str("<h2>Not reprocessed</h2><ul>");
        for line in &refused {
            body.push_str(&format!("<li class=\"error\">{}</li>", esc(line)));
        }
        body.push_str("</ul>");
    }
    body.push_str("<p><a href=\"/console/messages\">Back to the messages</a></p>");
    page(StatusCode::OK, "Reprocessed", Some(&caller.actor()), &body)
}

/// MSA-1 of the first reply (`AA`, `AE`, `AR`), or what stands in for it.
fn ack_code(replies: &[String]) -> String {
    replies
        .first()
        .and_then(|reply| reply.split(['\r', '\n']).find(|s| s.starts_with("MSA")))
        .and_then(|msa| msa.get(4..6))
        .unwrap_or("no ACK")
        .to_string()
}
