//! What each scheduled job does; each returns a one-line summary for the log.

use std::time::{Duration, SystemTime};

use crate::config::JobConfig;
use crate::engine::committer::Finished;
use crate::outbox::queue::{self, Outgoing};

use super::JobContext;

/// Most dead letters one digest lists.
const DIGEST_LIMIT: usize = 200;

pub async fn retry_sweep(context: &JobContext) -> Result<String, String> {
    context.outbox.wake_all();
    Ok(format!(
        "woke {} destination workers",
        context.outbox.destinations().len()
    ))
}

pub async fn dead_letter_digest(job: &JobConfig, context: &JobContext) -> Result<String, String> {
    let destination = job
        .destination
        .as_ref()
        .map(|d| d.get_ref().clone())
        .ok_or("no destination")?;
    let store = context.store.clone();
    let dead = tokio::task::spawn_blocking(move || queue::dead_letters(store.as_ref(), None, DIGEST_LIMIT))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if dead.is_empty() {
        return Ok("no dead letters".into());
    }
    let mut body = format!(
        "{} dead letter{} waiting (retry: POST /outbox/dead-letters/{{id}}/retry, discard: DELETE /outbox/dead-letters/{{id}}):\n",
        dead.len(),
        if dead.len() == 1 { "" } else { "s" }
    );
    for delivery in &dead {
        body.push_str(&format!(
            "\n{}  to {}  after {} tries  {}\n    {}\n",
            delivery.id,
            delivery.destination,
            delivery.attempts,
            delivery.finished_at.as_deref().unwrap_or(""),
            delivery.last_error.as_deref().unwrap_or("")
        ));
    }
    let mut headers = vec![(
        "Subject".to_string(),
        format!("Tributary: {} dead letters", dead.len()),
    )];
    if let Some(to) = &job.to {
        headers.push(("To".to_string(), to.clone()));
    }
    let count = dead.len();
    let queued = context
        .committer
        .run("dead-letter digest", "schedule", move |ctx| {
            let outgoing = Outgoing {
                destination,
                patient: None,
                content_type: "text/plain; charset=utf-8".into(),
                headers,
                payload: body,
            };
            let delivery = ctx.enqueue(outgoing);
            Finished::applied(format!("digest of {count} dead letters"), vec![], delivery.id)
        })
        .await
        .ok_or("the engine is stopping")??;
    Ok(format!("{count} dead letters; digest queued as {queued}"))
}

pub async fn journal_retention(job: &JobConfig, context: &JobContext) -> Result<String, String> {
    let days = job.keep_days.unwrap_or(u64::MAX / 86_400 - 1);
    let cutoff = SystemTime::now()
        .checked_sub(Duration::from_secs(days.saturating_mul(86_400)))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let store = context.store.clone();
    let (segments, bytes) = tokio::task::spawn_blocking(move || store.drop_journal_before(cutoff))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "dropped {segments} journal segments ({bytes} bytes) older than {days} days"
    ))
}
