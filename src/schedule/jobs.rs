//! What each scheduled job does; each returns a one-line summary for the log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use crate::config::JobConfig;
use crate::core::journal_index;
use crate::core::{Finished, NotStored};
use crate::deliveries::Delivery;
use crate::deliveries::queue::{self, Outgoing};
use crate::domain::op::Op;
use crate::domain::{identity::credentials, identity::sessions, proxies};
use crate::store::{Keyspace, Store};

use super::JobContext;

/// Why a scheduled run did not finish; it is logged, and the job runs again at its next time.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no destination")]
    NoDestination,
    #[error("the engine is stopping")]
    Stopping,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the change could not be stored: {0}")]
    NotStored(#[from] NotStored),
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Refused(String),
    #[error("unknown job `{0}`")]
    Unknown(String),
}

/// Most dead letters one digest lists (the rest are listed by the next ones).
const DIGEST_LIMIT: usize = 200;

pub async fn retry_sweep(context: &JobContext) -> Result<String, JobError> {
    context.outbox.sweep();
    Ok(format!(
        "woke {} destination workers",
        context.outbox.destinations().len()
    ))
}

pub async fn dead_letter_digest(job: &JobConfig, context: &JobContext) -> Result<String, JobError> {
    let destination = job
        .destination
        .as_ref()
        .map(|d| d.get_ref().clone())
        .ok_or(JobError::NoDestination)?;
    let store = context.store.clone();
    let (dead, reported) = tokio::task::spawn_blocking(move || {
        let dead = queue::dead_letters(store.as_ref(), None, usize::MAX)?;
        Ok::<_, crate::store::StoreError>((dead, digest_reported(store.as_ref())?))
    })
    .await??;
    let new: Vec<&Delivery> = dead
        .iter()
        .filter(|d| reported.get(&d.id) != d.finished_at.as_ref())
        .take(DIGEST_LIMIT)
        .collect();
    if new.is_empty() {
        return Ok(format!("no new dead letters ({} waiting)", dead.len()));
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut body = format!(
        "{} new dead letter{} since the last digest; {} dead letter{} waiting in all \
         (retry: POST /outbox/dead-letters/{{id}}/retry, discard: DELETE /outbox/dead-letters/{{id}}):\n",
        new.len(),
        plural(new.len()),
        dead.len(),
        plural(dead.len()),
    );
    for delivery in &new {
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
        format!("Tributary: {} new dead letter{}", new.len(), plural(new.len())),
    )];
    if let Some(to) = &job.to {
        headers.push(("To".to_string(), to.clone()));
    }
    // What is reported from now on: what was and is still dead, and what this digest lists.
    // Dead letters retried or discarded since drop out, so the record stays as small as the
    // dead-letter list; one that dies again (a new `finished_at`) is new again.
    let still_dead: HashSet<&str> = dead.iter().map(|d| d.id.as_str()).collect();
    let mut remembered: BTreeMap<String, String> = reported
        .into_iter()
        .filter(|(id, _)| still_dead.contains(id.as_str()))
        .collect();
    for delivery in &new {
        remembered.insert(
            delivery.id.clone(),
            delivery.finished_at.clone().unwrap_or_default(),
        );
    }
    let remembered = serde_json::to_vec(&remembered).expect("a map of strings serializes");
    let count = new.len();
    let queued = context
        .committer
        .run("dead-letter digest", "schedule", move |ctx| {
            ctx.tx.put(Keyspace::Meta, DIGEST_REPORTED.to_vec(), remembered);
            let outgoing = Outgoing {
                destination,
                patient: None,
                resource: None,
                content_type: "text/plain; charset=utf-8".into(),
                headers,
                payload: body,
                sealed: None,
            };
            let delivery = queue::queue(ctx, outgoing);
            Finished::applied(format!("digest of {count} new dead letters"), vec![], delivery.id)
        })
        .await
        .ok_or(JobError::Stopping)??;
    Ok(format!("{count} new dead letters; digest queued as {queued}"))
}

/// The `Meta` key of the dead letters a digest already reported: id -> `finished_at`.
const DIGEST_REPORTED: &[u8] = b"dead-letter-digest-reported";

/// The dead letters already reported, each with the `finished_at` it had then.
fn digest_reported(store: &dyn Store) -> Result<HashMap<String, String>, crate::store::StoreError> {
    Ok(store
        .get(Keyspace::Meta, DIGEST_REPORTED)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

pub async fn journal_retention(job: &JobConfig, context: &JobContext) -> Result<String, JobError> {
    let days = job.keep_days.unwrap_or(u64::MAX / 86_400 - 1);
    let cutoff = SystemTime::now()
        .checked_sub(Duration::from_secs(days.saturating_mul(86_400)))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let store = context.store.clone();
    let (segments, bytes) = tokio::task::spawn_blocking(move || store.drop_journal_before(cutoff)).await??;
    let forgotten = forget_dropped_entries(context).await?;
    Ok(format!(
        "dropped {segments} journal segments ({bytes} bytes) older than {days} days, and {forgotten} entries from the journal's index"
    ))
}

/// Index entries taken out in one commit.
const INDEX_BATCH: usize = 1_000;

/// Takes the entries the journal no longer has out of its index, oldest last, a batch a commit.
async fn forget_dropped_entries(context: &JobContext) -> Result<usize, JobError> {
    let store = context.store.clone();
    let first_kept = tokio::task::spawn_blocking(move || {
        let first = store.journal(0, 1)?.first().map(|(seq, _)| *seq);
        Ok::<_, crate::store::StoreError>(first.unwrap_or(store.journal_last_seq() + 1))
    })
    .await??;
    let mut forgotten = 0;
    loop {
        let store = context.store.clone();
        let old = tokio::task::spawn_blocking(move || {
            journal_index::older_than(store.as_ref(), first_kept, INDEX_BATCH)
        })
        .await??;
        if old.is_empty() {
            return Ok(forgotten);
        }
        forgotten += old.len();
        let removals = journal_index::removals(&old);
        context
            .committer
            .write(move |ctx| {
                ctx.tx.absorb(crate::store::WriteSet {
                    ops: removals,
                    journal: vec![],
                });
                Ok::<_, crate::store::StoreError>(())
            })
            .await
            .ok_or(JobError::Stopping)??;
    }
}

/// Relationships one command marks expired.
const EXPIRY_BATCH: usize = 100;

pub async fn proxy_expiry(context: &JobContext) -> Result<String, JobError> {
    let mut marked = 0;
    loop {
        let store = context.store.clone();
        let due =
            tokio::task::spawn_blocking(move || proxies::due(store.as_ref(), &sessions::now(), EXPIRY_BATCH))
                .await??;
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
            .ok_or(JobError::Stopping)??
            .map_err(JobError::Refused)?;
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

pub async fn token_replay_sweep(context: &JobContext) -> Result<String, JobError> {
    let mut forgotten = 0;
    loop {
        let store = context.store.clone();
        let now = chrono::Utc::now().timestamp();
        let keys = tokio::task::spawn_blocking(move || {
            credentials::forgettable_replays(store.as_ref(), now, REPLAY_BATCH)
        })
        .await??;
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
            .ok_or(JobError::Stopping)??;
        forgotten += count;
        if count < REPLAY_BATCH {
            break;
        }
    }
    Ok(format!(
        "forgot {forgotten} used external tokens past their expiry"
    ))
}

/// Fetches every configured feed at once, then keeps what each brought in one commit.
pub async fn news_poll(context: &JobContext) -> Result<String, JobError> {
    use tributary_adapter_news::{Fetched, Fetcher};

    let news = context.news.clone();
    if news.feeds.is_empty() {
        return Ok("no feeds configured".into());
    }
    let began = std::time::Instant::now();
    let client = reqwest::Client::builder()
        .user_agent(concat!("Tributary/", env!("CARGO_PKG_VERSION"), " news"))
        .build()
        .map_err(|e| JobError::Refused(format!("no HTTP client: {e}")))?;
    let fetcher = Fetcher::new(
        client,
        news.max_feed_bytes,
        Duration::from_secs(news.timeout_secs),
    );
    let mut fetches = tokio::task::JoinSet::new();
    for feed in &news.feeds {
        let name = feed.name.get_ref().clone();
        let url = feed.url.get_ref().clone();
        let state = crate::domain::news::state(context.store.as_ref(), &name)?;
        let fetcher = fetcher.clone();
        fetches.spawn(async move {
            let fetched = fetcher.fetch(&url, &state.validators()).await;
            (name, url, fetched)
        });
    }
    let mut results = vec![];
    while let Some(joined) = fetches.join_next().await {
        let (name, url, fetched) = joined?;
        if let Err(error) = &fetched {
            tracing::warn!(feed = %name, %url, %error, "news feed not fetched; its items stay, the next run tries again");
        }
        results.push((name, fetched.map_err(|e| e.to_string())));
    }
    let (mut changed, mut unchanged, mut failed) = (0, 0, 0);
    for (_, fetched) in &results {
        match fetched {
            Ok(Fetched::Changed { .. }) => changed += 1,
            Ok(Fetched::NotModified) => unchanged += 1,
            Err(_) => failed += 1,
        }
    }
    let items = context
        .committer
        .run("news poll", "schedule", move |ctx| {
            let mut items = 0;
            for (name, fetched) in results {
                match crate::domain::news::record(ctx.tx, &name, fetched, ctx.now) {
                    Ok(state) => items += state.items,
                    Err(error) => {
                        return Finished::refused(
                            "news poll".into(),
                            error.to_string(),
                            Err(error.to_string()),
                        );
                    }
                }
            }
            Finished::applied("news poll".into(), vec![], Ok(items))
        })
        .await
        .ok_or(JobError::Stopping)??
        .map_err(JobError::Refused)?;
    Ok(format!(
        "{} feeds: {changed} brought items, {unchanged} unchanged, {failed} failed; {items} items kept; {} ms",
        changed + unchanged + failed,
        began.elapsed().as_millis()
    ))
}
