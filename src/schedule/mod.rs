//! Scheduled jobs: each `[[schedule]]` entry runs its job at the times its cron expression
//! names (UTC), one run at a time, until the engine stops.
//!
//! - `retry-sweep`: wakes every destination's worker, so a delivery whose backoff has ended goes
//!   out even if nothing else happens.
//! - `dead-letter-digest`: sends a summary of the dead letters not reported yet (with ids and
//!   errors) through a destination, queued in the outbox like any delivery; nothing when there
//!   are none new. Which were reported is kept in the store, in the digest's own write set.
//! - `journal-retention`: drops the journal's whole segments older than `keep_days` (a time
//!   range at once, never row by row); the store's data is not touched.
//! - `proxy-expiry`: marks the proxy relationships whose expiry has come as expired and notifies
//!   both parties (access already stopped at the expiry itself; this makes it visible and told).
//! - `news-poll`: fetches every `[news]` feed at once (conditional GET, bounded size and time)
//!   and keeps their items; a feed that fails keeps its old items and is tried again next run.
//! - `token-replay-sweep`: forgets the used external tokens that could no longer pass anyway
//!   (past their expiry plus the clock skew allowed), so the replay memory does not grow for ever.

mod jobs;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, JobConfig, parse_cron};
use crate::core::CommitterHandle;
use crate::outbox::Outbox;
use crate::store::Store;

/// What the jobs reach.
#[derive(Clone)]
pub struct JobContext {
    pub store: Arc<dyn Store>,
    pub outbox: Arc<Outbox>,
    pub committer: CommitterHandle,
    /// The member-accounts service (templates, settings) for jobs that notify members.
    pub members: Arc<crate::domain::accounts::Accounts>,
    /// `[news]`: the feeds `news-poll` fetches.
    pub news: Arc<crate::config::NewsConfig>,
}

/// The scheduled jobs running now; a reloaded config replaces them whole.
pub struct Schedules {
    context: std::sync::Mutex<JobContext>,
    running: tokio::sync::Mutex<Running>,
}

/// The job tasks started together, and how to stop them.
struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts one task per configured job; they stop when `stop` turns true (and are waited for in
/// `tasks`).
pub fn start(
    config: &Config,
    context: JobContext,
    mut stop: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Arc<Schedules> {
    let first = spawn_jobs(config, &context);
    let schedules = Arc::new(Schedules {
        context: std::sync::Mutex::new(context),
        running: tokio::sync::Mutex::new(first),
    });
    let stopping = schedules.clone();
    tasks.spawn(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        stopping.stop().await;
    });
    schedules
}

impl Schedules {
    /// Puts a reloaded config's `[[schedule]]` (and `[news]`) in force: the jobs in force finish
    /// a run under way and stop, then the new config's start. Returns how many are scheduled.
    pub async fn reload(&self, config: &Config) -> usize {
        let context = match self.context.lock() {
            Ok(mut context) => {
                context.news = Arc::new(config.news.clone());
                context.clone()
            }
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut running = self.running.lock().await;
        stop_all(&mut running).await;
        *running = spawn_jobs(config, &context);
        running.tasks.len()
    }

    async fn stop(&self) {
        stop_all(&mut *self.running.lock().await).await;
    }
}

async fn stop_all(running: &mut Running) {
    let _ = running.stop.send(true);
    for task in running.tasks.drain(..) {
        let _ = task.await;
    }
}

fn spawn_jobs(config: &Config, context: &JobContext) -> Running {
    let (stop_sender, stop) = watch::channel(false);
    let mut tasks = vec![];
    for job in &config.schedule {
        let Ok(schedule) = parse_cron(job.cron.get_ref()) else {
            continue; // validated at load
        };
        let (job, context, mut stop) = (job.clone(), context.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let name = job.job.get_ref().clone();
            tracing::info!(job = %name, cron = %job.cron.get_ref(), "scheduled job started");
            for next in schedule.upcoming(chrono::Utc) {
                let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
                let Some(_claim) = claim(&context, &name, next.timestamp()).await else {
                    continue;
                };
                run(&job, &context).await;
            }
        }));
    }
    Running {
        stop: stop_sender,
        tasks,
    }
}

/// On a store several nodes share, claims the run due at `due` (Unix seconds) for this node:
/// under the job's lease, the last run due recorded in the store must be earlier, and this one
/// is recorded before it starts, so each run happens once in the cluster (and a node that dies
/// during it does not have it run again). None: another node has it. One process alone always
/// runs.
async fn claim(context: &JobContext, name: &str, due: i64) -> Option<crate::store::Lease> {
    let store = &context.store;
    if !store.shared() {
        return Some(crate::store::Lease::local());
    }
    let lease = match store.try_lease(&format!("job:{name}")) {
        Ok(Some(lease)) => lease,
        Ok(None) => return None,
        Err(error) => {
            tracing::error!(job = name, %error, "scheduled job not claimed");
            return None;
        }
    };
    let key = [b"schedule-due\0".as_slice(), name.as_bytes()].concat();
    let last_due = match store.get(crate::store::Keyspace::Meta, &key) {
        Ok(value) => value
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map(i64::from_be_bytes),
        Err(error) => {
            tracing::error!(job = name, %error, "scheduled job not claimed");
            return None;
        }
    };
    if last_due.is_some_and(|last| last >= due) {
        return None;
    }
    let recorded = context
        .committer
        .write(move |ctx| {
            ctx.tx
                .put(crate::store::Keyspace::Meta, key, due.to_be_bytes().to_vec());
            Ok(())
        })
        .await;
    matches!(recorded, Some(Ok(()))).then_some(lease)
}

/// One run of a job; its outcome is logged.
async fn run(job: &JobConfig, context: &JobContext) {
    let name = job.job.get_ref().as_str();
    let outcome = match name {
        "retry-sweep" => jobs::retry_sweep(context).await,
        "dead-letter-digest" => jobs::dead_letter_digest(job, context).await,
        "journal-retention" => jobs::journal_retention(job, context).await,
        "proxy-expiry" => jobs::proxy_expiry(context).await,
        "token-replay-sweep" => jobs::token_replay_sweep(context).await,
        "news-poll" => jobs::news_poll(context).await,
        other => Err(jobs::JobError::Unknown(other.to_string())),
    };
    crate::metrics::job_run(name, outcome.is_err());
    match outcome {
        Ok(summary) => tracing::info!(job = name, %summary, "scheduled job ran"),
        Err(error) => tracing::error!(job = name, %error, "scheduled job failed"),
    }
}
