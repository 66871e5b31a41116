//! What each scheduled job does; each returns a one-line summary for the log.

use std::time::{Duration, SystemTime};

use crate::config::JobConfig;
use crate::domain::op::Op;
use crate::domain::{credentials, proxies, sessions};
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

/// Relationships one command marks expired.
const EXPIRY_BATCH: usize = 100;

pub async fn proxy_expiry(context: &JobContext) -> Result<String, String> {
    let mut marked = 0;
    loop {
        let store = context.store.clone();
        let due =
            tokio::task::spawn_blocking(move || proxies::due(store.as_ref(), &sessions::now(), EXPIRY_BATCH))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        if due.is_empty() {
            break;
        }
        let accounts = context.members.clone();
        let asked = due.len();
        let done = context
            .committer
            .run("proxy expiry", "schedule", move |ctx| {
                let mut op = Op::from_ctx(ctx, "schedule:proxy-expiry");
                let mut expired = vec![];
                for id in &due {
                    match proxies::expire(&mut op, &accounts, id) {
                        Ok(Some(_)) => expired.push(id.clone()),
                        Ok(None) => {}
                        Err(refusal) => {
                            return Finished::refused(
                                format!("expire proxy relationship {id}"),
                                refusal.to_string(),
                                Err(refusal.to_string()),
                            );
                        }
                    }
                }
                Finished::applied(
                    format!("expired proxy relationships {}", expired.join(", ")),
                    vec![],
                    Ok(expired.len()),
                )
            })
            .await
            .ok_or("the engine is stopping")?
            .map_err(|e| e.to_string())??;
        marked += done;
        // A short page was the last one; a page with nothing to mark would come back the same.
        if asked < EXPIRY_BATCH || done == 0 {
            break;
        }
    }
    Ok(format!("{marked} proxy relationships expired"))
}

/// Remembered tokens one command forgets.
const REPLAY_BATCH: usize = 5000;

pub async fn token_replay_sweep(context: &JobContext) -> Result<String, String> {
    let mut forgotten = 0;
    loop {
        let store = context.store.clone();
        let now = chrono::Utc::now().timestamp();
        let keys = tokio::task::spawn_blocking(move || {
            credentials::forgettable_replays(store.as_ref(), now, REPLAY_BATCH)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let count = keys.len();
        if count == 0 {
            break;
        }
        context
            .committer
            .run("token replay sweep", "schedule", move |ctx| {
                credentials::forget_replays(ctx.tx, &keys);
                Finished::applied(format!("forgot {count} used external tokens"), vec![], ())
            })
            .await
            .ok_or("the engine is stopping")?
            .map_err(|e| e.to_string())?;
        forgotten += count;
        if count < REPLAY_BATCH {
            break;
        }
    }
    Ok(format!(
        "forgot {forgotten} used external tokens past their expiry"
    ))
}
