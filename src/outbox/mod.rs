//! The durable outbox: what goes back out, to which destination, and how each try went.
//!
//! A delivery is queued in the same write set as the change that causes it (so it exists if and
//! only if its cause does), goes out only once that change is on disk, and keeps a stable id
//! across retries and restarts. Each destination has one worker taking its queue in order.
//!
//! - [`fanout`]: which destinations hear of a changed resource and what each is sent (a
//!   projection registered with the core).
//! - [`worker`]: the delivery loop of one destination (retries, backoff, dead letters).
//! - [`registry`]: a config `kind` to its adapter.
//!
//! The delivery records and their moves are `crate::deliveries`, a room below the domain.

pub(crate) mod fanout;
pub(crate) mod registry;
pub(crate) mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::core::CommitterHandle;
use crate::store::Store;

pub use fanout::Fanout;

/// The running outbox: one worker per destination, and the way to wake them. A reloaded config
/// replaces the workers whole (`reload`): the old ones finish the delivery in hand and stop,
/// then the new ones start, each reading its queue from the start.
pub struct Outbox {
    wakers: RwLock<Arc<HashMap<String, Arc<worker::Wake>>>>,
    durable: Arc<AtomicU64>,
    running: tokio::sync::Mutex<Generation>,
    store: Arc<dyn Store>,
    seal_key: crate::deliveries::seal::SealKey,
}

/// The workers started together, and how to stop them.
struct Generation {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Builds every destination's adapter, so a bad setting stops the engine (and `check-config`)
/// with the file, line and key at fault.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    adapters(config).map(|_| ())
}

#[allow(clippy::type_complexity)]
fn adapters(config: &Config) -> Result<Vec<Arc<dyn tributary_adapter_core::Outbound>>, ConfigError> {
    config
        .destinations
        .iter()
        .enumerate()
        .map(|(i, d)| {
            registry::build(d.kind.get_ref(), &d.settings)
                .map_err(|message| config.error_at(d.kind.span(), format!("destinations[{i}]"), message))
        })
        .collect()
}

impl Outbox {
    /// Starts a worker per destination; they stop when `stop` turns true (and are waited for
    /// in `tasks`). `seal_key` opens the sealed secrets of notifications.
    pub fn start(
        config: &Config,
        store: Arc<dyn Store>,
        committer: CommitterHandle,
        seal_key: crate::deliveries::seal::SealKey,
        mut stop: watch::Receiver<bool>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> Result<Arc<Outbox>, ConfigError> {
        let adapters = adapters(config)?;
        let outbox = Arc::new(Outbox {
            wakers: RwLock::default(),
            // Everything in the journal when the engine starts is on disk (the store replayed it).
            durable: Arc::new(AtomicU64::new(store.journal_last_seq())),
            running: tokio::sync::Mutex::new(Generation {
                stop: watch::channel(false).0,
                tasks: vec![],
            }),
            store,
            seal_key,
        });
        // The committer's handle is not kept here: the committer holds the outbox (it tells
        // it what is durable), and a handle kept would keep the committer from ever ending.
        let first = outbox.spawn_workers(config, adapters, &committer);
        *outbox.running.try_lock().expect("nothing else has it yet") = first;
        let stopping = outbox.clone();
        tasks.spawn(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            stopping.stop_workers().await;
        });
        Ok(outbox)
    }

    /// Puts a reloaded config's destinations in force: every adapter is built first (a bad
    /// setting changes nothing), then the workers in force finish the delivery in hand and
    /// stop, and one per destination of the new config starts.
    pub async fn reload(&self, config: &Config, committer: &CommitterHandle) -> Result<usize, ConfigError> {
        let adapters = adapters(config)?;
        let mut running = self.running.lock().await;
        let _ = running.stop.send(true);
        for task in running.tasks.drain(..) {
            let _ = task.await;
        }
        *running = self.spawn_workers(config, adapters, committer);
        Ok(config.destinations.len())
    }

    async fn stop_workers(&self) {
        let mut running = self.running.lock().await;
        let _ = running.stop.send(true);
        for task in running.tasks.drain(..) {
            let _ = task.await;
        }
    }

    fn spawn_workers(
        &self,
        config: &Config,
        adapters: Vec<Arc<dyn tributary_adapter_core::Outbound>>,
        committer: &CommitterHandle,
    ) -> Generation {
        let (stop, stopped) = watch::channel(false);
        let mut wakers = HashMap::new();
        let mut tasks = vec![];
        for (destination, adapter) in config.destinations.iter().zip(adapters) {
            let wake = Arc::new(worker::Wake::default());
            let name = destination.name.get_ref().clone();
            wakers.insert(name.clone(), wake.clone());
            let worker = worker::Worker {
                destination: name,
                adapter,
                retry: destination.retry.clone(),
                store: self.store.clone(),
                committer: committer.clone(),
                wake,
                durable: self.durable.clone(),
                seal_key: self.seal_key.clone(),
            };
            tasks.push(tokio::spawn(worker.run(stopped.clone())));
        }
        match self.wakers.write() {
            Ok(mut current) => *current = Arc::new(wakers),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(wakers),
        }
        Generation { stop, tasks }
    }

    fn wakers(&self) -> Arc<HashMap<String, Arc<worker::Wake>>> {
        match self.wakers.read() {
            Ok(wakers) => wakers.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Everything up to journal sequence `seq` is on disk: deliveries it caused may go.
    pub fn durable(&self, seq: u64) {
        self.durable.fetch_max(seq, Ordering::AcqRel);
        self.wake_all();
    }

    /// Tells a destination's worker to look at its whole queue now (a dead letter put back).
    pub fn wake(&self, destination: &str) {
        if let Some(wake) = self.wakers().get(destination) {
            wake.whole_queue();
        }
    }

    /// Tells every worker to look at what is new in its queue now.
    pub fn wake_all(&self) {
        for wake in self.wakers().values() {
            wake.new_work();
        }
    }

    /// Tells every worker to look at its whole queue again (the `retry-sweep` job).
    pub fn sweep(&self) {
        for wake in self.wakers().values() {
            wake.whole_queue();
        }
    }

    /// The destinations this outbox delivers to, by name.
    pub fn destinations(&self) -> Vec<String> {
        let mut names: Vec<String> = self.wakers().keys().cloned().collect();
        names.sort_unstable();
        names
    }
}
