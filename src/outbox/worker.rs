//! The delivery loop of one destination: takes its queue in order, hands each delivery to the
//! adapter, and records how it went.
//!
//! One delivery at a time per destination, in key order (the order the causes were committed):
//! that keeps order per destination and patient. The worker reads its queue from just past the
//! last delivery it finished, not from the start: a finished delivery leaves a tombstone in the
//! store until compaction, and reading past all of them again for every delivery made each one
//! cost more than the last. A dead letter put back by hand sits behind that point, so putting one
//! back tells the worker to read from the start again, as does every idle poll. A transient failure keeps the delivery first in
//! line until its backoff ends, so nothing behind it overtakes it; after the configured tries, or
//! at once on a permanent failure, it becomes a dead letter and the queue moves on.
//!
//! A notification's sealed secrets are opened here, just before it is handed to the adapter,
//! and never stored opened. A dead letter put back by hand is checked once more for a newer
//! delivery of its resource that went out meanwhile (it is then superseded, not sent).

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::Instrument;
use tributary_adapter_core::{DeliveryError, Envelope, Outbound};

use crate::config::RetryConfig;
use crate::core::CommitterHandle;
use crate::store::{Overlay, Store, StoreError};

use crate::deliveries::delivery::{self, Delivery};
use crate::deliveries::queue;
use crate::deliveries::seal::{self, SealKey};

/// How many deliveries are read from the queue at a time.
const BATCH: usize = 64;

/// When nothing wakes it, a worker still looks at its queue this often (a delivery retried by
/// hand, a clock that jumped, one queued by another node).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// On a shared store, how soon a worker looks again when another node's worker holds the
/// destination's lease.
const LEASE_RETRY: Duration = Duration::from_secs(1);

pub struct Worker {
    pub destination: String,
    pub adapter: Arc<dyn Outbound>,
    pub retry: RetryConfig,
    pub store: Arc<dyn Store>,
    /// Every move of a delivery is written through the core, as every write is.
    pub committer: CommitterHandle,
    pub wake: Arc<Wake>,
    /// The last journal sequence known durable: a delivery whose cause is later waits.
    pub durable: Arc<AtomicU64>,
    /// Opens notifications' sealed secrets.
    pub seal_key: SealKey,
}

/// How a worker is told to look at its queue: at what is new, or at all of it again.
#[derive(Default)]
pub struct Wake {
    notify: Notify,
    from_start: AtomicBool,
}

impl Wake {
    /// Look at what was queued since the last look (new causes are durable).
    pub fn new_work(&self) {
        self.notify.notify_one();
    }

    /// Look at the whole queue again (a dead letter was put back, behind the reading point).
    pub fn whole_queue(&self) {
        self.from_start.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

impl Worker {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let jitter = RandomState::new();
        let start = delivery::prefix(&self.destination);
        // Every delivery of this destination up to this key is finished.
        let mut finished_up_to = start.clone();
        loop {
            if *stop.borrow() {
                return;
            }
            if self.wake.from_start.swap(false, Ordering::AcqRel) {
                finished_up_to.clone_from(&start);
            }
            let wait = match self.deliver_ready(&jitter, &mut stop, &mut finished_up_to).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(destination = %self.destination, error = %e, "outbox store failed");
                    IDLE_POLL
                }
            };
            tokio::select! {
                _ = self.wake.notify.notified() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(wait) => finished_up_to.clone_from(&start),
            }
        }
    }

    /// Delivers what is ready, in order; returns how long to wait before looking again.
    async fn deliver_ready(
        &self,
        jitter: &RandomState,
        stop: &mut watch::Receiver<bool>,
        finished_up_to: &mut Vec<u8>,
    ) -> Result<Duration, crate::store::StoreError> {
        // One node at a time delivers a destination's queue, so its order holds across nodes.
        // A node that dies loses its connection, and with it the lease.
        let Some(_lease) = self.store.try_lease(&format!("outbox:{}", self.destination))? else {
            return Ok(LEASE_RETRY);
        };
        // What a shared store shows is durable already (its commits are); here only our own
        // syncer says what is.
        let shared = self.store.shared();
        loop {
            let batch = queue::pending_after(self.store.as_ref(), &self.destination, finished_up_to, BATCH)?;
            if batch.is_empty() {
                return Ok(IDLE_POLL);
            }
            for delivery in batch {
                if *stop.borrow() {
                    return Ok(IDLE_POLL);
                }
                if !shared && delivery.cause > self.durable.load(Ordering::Acquire) {
                    // Its cause is not on disk yet; the sync that puts it there wakes us.
                    return Ok(IDLE_POLL);
                }
                let now_ms = now_ms();
                if delivery.not_before_ms > now_ms {
                    return Ok(Duration::from_millis(delivery.not_before_ms - now_ms));
                }
                let key = delivery.key();
                if !self.attempt(delivery, jitter).await? {
                    // It failed and waits for its backoff: nothing behind it may overtake it.
                    break;
                }
                *finished_up_to = key;
            }
        }
    }

    /// One try of one delivery; true when the queue may move on past it.
    async fn attempt(
        &self,
        delivery: Delivery,
        jitter: &RandomState,
    ) -> Result<bool, crate::store::StoreError> {
        let store = self.store.as_ref();
        let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if delivery.retried_at.is_some()
            && let Some(newer) = queue::newer_delivered(store, &delivery)?
        {
            tracing::info!(destination = %self.destination, id = %delivery.id, %newer, "retried dead letter superseded");
            crate::metrics::delivery_settled(&self.destination, "superseded");
            let now = now();
            self.record(move |tx| {
                queue::mark_superseded(tx, crate::store::Keyspace::Outbox, delivery, newer, &now);
                Ok(())
            })
            .await?;
            return Ok(true);
        }
        let (payload, headers) = match &delivery.sealed {
            None => (delivery.payload.clone(), delivery.headers.clone()),
            Some(sealed) => match seal::open(&self.seal_key, &delivery.id, sealed) {
                Ok(secrets) => (
                    seal::fill(&delivery.payload, &secrets),
                    delivery
                        .headers
                        .iter()
                        .map(|(name, value)| (name.clone(), seal::fill(value, &secrets)))
                        .collect(),
                ),
                Err(error) => {
                    // Another server key, or changed on disk: no try can ever succeed.
                    tracing::error!(destination = %self.destination, id = %delivery.id, %error, "dead letter");
                    crate::metrics::delivery_settled(&self.destination, "dead");
                    let now = now();
                    self.record(move |tx| {
                        queue::mark_dead(tx, delivery, &error.to_string(), &now);
                        Ok(())
                    })
                    .await?;
                    return Ok(true);
                }
            },
        };
        let envelope = Envelope {
            id: delivery.id.clone(),
            payload: payload.into_bytes().into(),
            content_type: delivery.content_type.clone(),
            headers,
        };
        let span = crate::traces::delivery_span(
            &self.destination,
            &delivery.id,
            delivery.cause,
            delivery.attempts + 1,
        );
        let started = std::time::Instant::now();
        let result = self.adapter.deliver(&envelope).instrument(span.clone()).await;
        let took = started.elapsed();
        span.record(
            "result",
            match &result {
                Ok(_) => "delivered",
                Err(DeliveryError::Transient(_)) => "transient failure",
                Err(_) => "failed",
            },
        );
        let now = now();
        match result {
            Ok(reply) => {
                crate::metrics::delivery(&self.destination, "delivered", took);
                tracing::debug!(destination = %self.destination, id = %delivery.id, "delivered");
                self.record(move |tx| queue::mark_delivered(tx, delivery, &reply, &now))
                    .await?;
                Ok(true)
            }
            Err(DeliveryError::Transient(error)) if delivery.attempts + 1 < self.retry.max_attempts => {
                crate::metrics::delivery(&self.destination, "retry", took);
                let backoff = self.backoff(delivery.attempts + 1, &delivery.id, jitter);
                tracing::warn!(
                    destination = %self.destination, id = %delivery.id, attempt = delivery.attempts + 1,
                    retry_in_ms = backoff.as_millis() as u64, %error, "delivery failed; will retry"
                );
                let not_before = now_ms() + backoff.as_millis() as u64;
                let error = format!("transient: {error}");
                self.record(move |tx| {
                    queue::mark_retry(tx, delivery, &error, not_before, &now);
                    Ok(())
                })
                .await?;
                Ok(false)
            }
            Err(error) => {
                crate::metrics::delivery(&self.destination, "dead", took);
                tracing::error!(
                    destination = %self.destination, id = %delivery.id, %error, "delivery failed for good; dead letter"
                );
                let error = error.to_string();
                self.record(move |tx| {
                    queue::mark_dead(tx, delivery, &error, &now);
                    Ok(())
                })
                .await?;
                Ok(true)
            }
        }
    }

    /// Writes a move of a delivery through the core; answers once it is committed.
    async fn record(
        &self,
        change: impl FnOnce(&mut Overlay<'_>) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        match self.committer.write(move |ctx| change(ctx.tx)).await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(StoreError::other(e)),
            None => Err(StoreError::other("the engine is stopping")),
        }
    }

    /// Exponential backoff after the `failures`-th failure, capped, with jitter (between half and
    /// all of it) so many queues failing together do not retry in lockstep.
    fn backoff(&self, failures: u32, id: &str, jitter: &RandomState) -> Duration {
        let base = self
            .retry
            .initial_backoff_ms
            .saturating_mul(1u64 << failures.saturating_sub(1).min(32))
            .min(self.retry.max_backoff_ms);
        let spread = jitter.hash_one((id, failures)) % 1000;
        Duration::from_millis(base / 2 + base * spread / 2000)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
