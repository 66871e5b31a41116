//! Changes worked out before the committer and checked on it, so the one serial thread does as
//! little as it can.
//!
//! When jobs are waiting for the committer, a connection's task computes its change
//! (`CommitterHandle::prepare`, then [`prepare`] here) against the store as it is, in an overlay
//! over a reader that records every key it reads, and notes how many batches were committed
//! when it began. On the committer, [`Context::take_prepared`](super::Context::take_prepared)
//! keeps the computed writes only if no key it read has been written since: not by a batch
//! committed after it began ([`Written`] remembers which batch last wrote each key, for the
//! last `REMEMBERED_BATCHES` batches), and not by a job earlier in the batch being built. Then
//! the result is what the committer would have computed itself, since a change is a function
//! of what it reads (and of the time it runs at, a moment earlier). Otherwise the job computes
//! the change itself, as it always could: preparing is only ever a shortcut.
//!
//! Checking costs a hash lookup per key read, where computing costs store reads, JSON parsing,
//! merging, index keys and JSON writing.

use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{Keyspace, Overlay, Reader, Staged, StoreError, WriteSet};

/// How many committed batches [`Written`] remembers the keys of. A change prepared before the
/// oldest of them is computed again on the committer. A prepared change waits only for the
/// batches of the jobs queued ahead of it, a handful; remembering more costs memory and cache
/// (an ORU writes a hundred keys).
const REMEMBERED_BATCHES: u64 = 256;

/// A change computed off the committer: its writes, the keys it read, and `as_of`, how many
/// batches were committed when it began.
pub struct Prepared<T> {
    as_of: u64,
    reads: Vec<(Keyspace, Vec<u8>)>,
    staged: Staged,
    value: T,
}

/// Computes `change` against `store` as it is now, off the committer. None when the change
/// failed: the committer computes it again and meets the failure itself, in order.
pub fn prepare<T, E>(
    committed: &CommittedBatches,
    store: &dyn Reader,
    change: impl FnOnce(&mut Overlay<'_>) -> Result<T, E>,
) -> Option<Prepared<T>> {
    // Read before the store: whatever the reads then see is at least this batch's state.
    let as_of = committed.get();
    let recorder = Recorder {
        below: store,
        reads: RefCell::new(vec![]),
        scanned: Cell::new(false),
    };
    let mut overlay = Overlay::new(&recorder);
    let value = change(&mut overlay).ok()?;
    if recorder.scanned.get() {
        return None;
    }
    let staged = overlay.into_staged();
    Some(Prepared {
        as_of,
        reads: recorder.reads.into_inner(),
        staged,
        value,
    })
}

impl<T> Prepared<T> {
    /// Its writes and result, when nothing it read was written after it began (see the module
    /// doc); `pending` is the batch's own overlay, holding what earlier jobs wrote.
    pub(super) fn check(self, written: &Written, pending: &Overlay<'_>) -> Option<(Staged, T)> {
        if self.as_of < written.forgotten_before {
            return None;
        }
        let unchanged = self.reads.iter().all(|(keyspace, key)| {
            !pending.is_pending(*keyspace, key)
                && written
                    .last_batch
                    .get(keyspace)
                    .and_then(|keys| keys.get(key.as_slice()))
                    .is_none_or(|batch| *batch <= self.as_of)
        });
        unchanged.then_some((self.staged, self.value))
    }
}

/// A reader that notes every key read through it.
struct Recorder<'r> {
    below: &'r dyn Reader,
    reads: RefCell<Vec<(Keyspace, Vec<u8>)>>,
    scanned: Cell<bool>,
}

impl Reader for Recorder<'_> {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.reads.borrow_mut().push((keyspace, key.to_vec()));
        self.below.get(keyspace, key)
    }

    /// A scan cannot be checked key by key (a key written since may now fall in its range), so
    /// a change that scans is never taken prepared: the committer computes it (a merge, rare).
    fn scan_prefix(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.scanned.set(true);
        self.below.scan_prefix(keyspace, prefix, limit)
    }
}

/// How many batches the committer has committed: shared with whoever prepares changes.
#[derive(Clone, Default)]
pub struct CommittedBatches(Arc<AtomicU64>);

impl CommittedBatches {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// The committer's memory of which batch last wrote each key, for the recent batches.
pub(super) struct Written {
    /// By keyspace, so a key is looked up without copying it. Fx hashing: every key a batch
    /// writes goes in, and SipHash's resistance to chosen keys buys nothing for keys the engine
    /// makes itself.
    last_batch: FxHashMap<Keyspace, FxHashMap<Vec<u8>, u64>>,
    /// Prepared changes that began before this batch cannot be checked.
    forgotten_before: u64,
    committed: CommittedBatches,
}

impl Written {
    pub(super) fn new(committed: CommittedBatches) -> Written {
        Written {
            last_batch: FxHashMap::default(),
            forgotten_before: 0,
            committed,
        }
    }

    /// The keys a batch writes, taken before the store takes the batch.
    pub(super) fn keys_of(writes: &WriteSet) -> Vec<(Keyspace, Vec<u8>)> {
        writes
            .ops
            .iter()
            .map(|(keyspace, key, _)| (*keyspace, key.clone()))
            .collect()
    }

    /// Notes the keys of a batch (`keys_of`) now committed to the store, then counts it as
    /// committed.
    pub(super) fn committed(&mut self, keys: Vec<(Keyspace, Vec<u8>)>) {
        let batch = self.committed.get() + 1;
        for (keyspace, key) in keys {
            self.last_batch.entry(keyspace).or_default().insert(key, batch);
        }
        if batch.is_multiple_of(REMEMBERED_BATCHES) {
            self.forgotten_before = batch - REMEMBERED_BATCHES;
            let kept_from = self.forgotten_before;
            for keys in self.last_batch.values_mut() {
                keys.retain(|_, written| *written > kept_from);
            }
        }
        // After the notes: a change that reads this count is checked against all of them.
        self.committed.0.store(batch, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Store};

    fn put(store: &MemoryStore, written: &mut Written, key: &[u8], value: &[u8]) {
        let writes = WriteSet {
            ops: vec![(Keyspace::Patient, key.to_vec(), Some(value.to_vec()))],
            journal: vec![],
        };
        let keys = Written::keys_of(&writes);
        store.commit(writes).unwrap();
        written.committed(keys);
    }

    /// Copies `from` to `to`, as a change that reads one key and writes another.
    fn copy(
        committed: &CommittedBatches,
        store: &MemoryStore,
        from: &'static [u8],
        to: &'static [u8],
    ) -> Option<Prepared<()>> {
        prepare(committed, store, |tx| {
            let value = tx.get(Keyspace::Patient, from)?.unwrap_or_default();
            tx.put(Keyspace::Patient, to.to_vec(), value);
            Ok::<_, StoreError>(())
        })
    }

    #[test]
    fn a_change_is_kept_only_while_what_it_read_is_unchanged() {
        let store = MemoryStore::new();
        let committed = CommittedBatches::default();
        let mut written = Written::new(committed.clone());
        put(&store, &mut written, b"a", b"1");
        let empty = Overlay::new(&store);

        let fresh = copy(&committed, &store, b"a", b"b").unwrap();
        assert!(fresh.check(&written, &empty).is_some(), "nothing written since");

        let stale = copy(&committed, &store, b"a", b"b").unwrap();
        put(&store, &mut written, b"a", b"2");
        assert!(
            stale.check(&written, &empty).is_none(),
            "what it read was written since"
        );

        let other = copy(&committed, &store, b"a", b"b").unwrap();
        put(&store, &mut written, b"c", b"3");
        assert!(
            other.check(&written, &empty).is_some(),
            "only other keys were written"
        );

        let mut batch = Overlay::new(&store);
        batch.put(Keyspace::Patient, b"a".to_vec(), b"4".to_vec());
        let in_batch = copy(&committed, &store, b"a", b"b").unwrap();
        assert!(
            in_batch.check(&written, &batch).is_none(),
            "an earlier job of the batch wrote what it read"
        );
    }

    #[test]
    fn a_change_older_than_the_remembered_batches_is_computed_again() {
        let store = MemoryStore::new();
        let committed = CommittedBatches::default();
        let mut written = Written::new(committed.clone());
        let old = copy(&committed, &store, b"a", b"b").unwrap();
        for _ in 0..2 * REMEMBERED_BATCHES {
            put(&store, &mut written, b"z", b"");
        }
        assert!(old.check(&written, &Overlay::new(&store)).is_none());
        let notes: usize = written.last_batch.values().map(|keys| keys.len()).sum();
        assert!(notes <= 1, "old notes are forgotten");
    }

    #[test]
    fn a_failed_change_is_not_prepared() {
        let store = MemoryStore::new();
        let prepared = prepare(&CommittedBatches::default(), &store, |_| Err::<(), _>("no"));
        assert!(prepared.is_none());
    }
}
