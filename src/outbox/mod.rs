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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::core::CommitterHandle;
use crate::store::Store;

pub use fanout::Fanout;

/// The running outbox: one worker per destination, and the way to wake them.
pub struct Outbox {
    wakers: HashMap<String, Arc<worker::Wake>>,
    durable: Arc<AtomicU64>,
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
    /// Starts a worker per destination; they stop when `stop` turns true. `seal_key` opens the
    /// sealed secrets of notifications.
    pub fn start(
        config: &Config,
        store: Arc<dyn Store>,
        committer: CommitterHandle,
        seal_key: crate::deliveries::seal::SealKey,
        stop: watch::Receiver<bool>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> Result<Outbox, ConfigError> {
        // Everything in the journal when the engine starts is on disk (the store replayed it).
        let durable = Arc::new(AtomicU64::new(store.journal_last_seq()));
        let mut wakers = HashMap::new();
        for (destination, adapter) in config.destinations.iter().zip(adapters(config)?) {
            let wake = Arc::new(worker::Wake::default());
            let name = destination.name.get_ref().clone();
            wakers.insert(name.clone(), wake.clone());
            let worker = worker::Worker {
                destination: name,
                adapter,
                retry: destination.retry.clone(),
                store: store.clone(),
                committer: committer.clone(),
                wake,
                durable: durable.clone(),
                seal_key: seal_key.clone(),
            };
            tasks.spawn(worker.run(stop.clone()));
        }
        Ok(Outbox { wakers, durable })
    }

    /// Everything up to journal sequence `seq` is on disk: deliveries it caused may go.
    pub fn durable(&self, seq: u64) {
        self.durable.fetch_max(seq, Ordering::AcqRel);
        self.wake_all();
    }

    /// Tells a destination's worker to look at its whole queue now (a dead letter put back).
    pub fn wake(&self, destination: &str) {
        if let Some(wake) = self.wakers.get(destination) {
            wake.whole_queue();
        }
    }

    /// Tells every worker to look at what is new in its queue now.
    pub fn wake_all(&self) {
        for wake in self.wakers.values() {
            wake.new_work();
        }
    }

    /// Tells every worker to look at its whole queue again (the `retry-sweep` job).
    pub fn sweep(&self) {
        for wake in self.wakers.values() {
            wake.whole_queue();
        }
    }

    /// The destinations this outbox delivers to.
    pub fn destinations(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.wakers.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}
