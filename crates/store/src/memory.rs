//! The in-memory backend of `Store`: for unit and property tests of the logic above the store,
//! where opening the embedded store in a temporary folder would only cost time.
//!
//! A `BTreeMap` per keyspace and the journal, behind one lock: a commit is visible to readers
//! all at once, the moment it returns, and gone when the store is dropped. It answers every read
//! as `EmbeddedStore` does (point reads, prefix scans in key order, the journal in commit order, the
//! last journal sequence number); a property test below holds the two to the same answers.
//!
//! Nothing is on disk, so `sync` and `checkpoint` write nothing. The journal is still kept in
//! segments, as the log's files are, so journal retention means the same here: a checkpoint (or
//! a sync that finds the segment over the log's default size, `DEFAULT_LOG_SEGMENT_BYTES`)
//! closes the segment being written, and `drop_journal_before` drops closed segments last
//! written before the cutoff, reporting the bytes their records take in the log.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use crate::{DEFAULT_LOG_SEGMENT_BYTES, Keyspace, Reader, Store, StoreError, WriteSet, wal};

/// A `Store` held in memory. `MemoryStore::default()` is an empty one.
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

struct Inner {
    keyspaces: BTreeMap<Keyspace, BTreeMap<Vec<u8>, Vec<u8>>>,
    /// The journal by segment, oldest first; the last one is being written (there always is one).
    segments: Vec<Segment>,
    /// The greatest sequence number a commit ended its journal entries with.
    last_seq: u64,
}

/// What one log segment would hold.
struct Segment {
    /// The journal entries of its commits, in commit order.
    journal: Vec<(u64, Vec<u8>)>,
    /// The size of its records as the log writes them.
    bytes: u64,
    /// When a commit last wrote to it (when it was started, before that).
    written: SystemTime,
}

impl Segment {
    fn new() -> Segment {
        Segment {
            journal: vec![],
            bytes: 0,
            written: SystemTime::now(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore {
            inner: RwLock::new(Inner {
                keyspaces: BTreeMap::new(),
                segments: vec![Segment::new()],
                last_seq: 0,
            }),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    // A panic elsewhere cannot leave a commit half applied (nothing in one can fail), so a
    // poisoned lock still guards whole commits.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// Closes the segment being written, when anything was written to it.
    fn close_segment(&mut self) {
        if self.segments.last().is_some_and(|s| s.bytes > 0) {
            self.segments.push(Segment::new());
        }
    }
}

impl Reader for MemoryStore {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .read()
            .keyspaces
            .get(&keyspace)
            .and_then(|entries| entries.get(key))
            .cloned())
    }

    fn scan_prefix(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let inner = self.read();
        let Some(entries) = inner.keyspaces.get(&keyspace) else {
            return Ok(vec![]);
        };
        Ok(entries
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }
}

impl Store for MemoryStore {
    fn scan_prefix_after(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        use std::ops::Bound;
        let inner = self.read();
        let Some(entries) = inner.keyspaces.get(&keyspace) else {
            return Ok(vec![]);
        };
        Ok(entries
            .range::<Vec<u8>, _>((Bound::Excluded(after.to_vec()), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    fn commit(&self, writes: WriteSet) -> Result<(), StoreError> {
        let bytes = wal::encoded_len(&writes) as u64;
        let mut inner = self.write();
        for (keyspace, key, value) in writes.ops {
            let entries = inner.keyspaces.entry(keyspace).or_default();
            match value {
                Some(value) => entries.insert(key, value),
                None => entries.remove(&key),
            };
        }
        if let Some((seq, _)) = writes.journal.last() {
            inner.last_seq = inner.last_seq.max(*seq);
        }
        if let Some(segment) = inner.segments.last_mut() {
            segment.journal.extend(writes.journal);
            segment.bytes += bytes;
            segment.written = SystemTime::now();
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        let mut inner = self.write();
        if inner
            .segments
            .last()
            .is_some_and(|s| s.bytes > DEFAULT_LOG_SEGMENT_BYTES)
        {
            inner.close_segment();
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        self.write().close_segment();
        Ok(())
    }

    fn journal(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .read()
            .segments
            .iter()
            .flat_map(|segment| &segment.journal)
            .filter(|(seq, _)| *seq >= from)
            .take(limit)
            .cloned()
            .collect())
    }

    fn journal_last_seq(&self) -> u64 {
        self.read().last_seq
    }

    fn drop_journal_before(&self, cutoff: SystemTime) -> Result<(usize, u64), StoreError> {
        let mut inner = self.write();
        // Never the segment being written; the others in order, up to the first recent one.
        let closed = inner.segments.len().saturating_sub(1);
        let old = inner.segments[..closed]
            .iter()
            .take_while(|segment| segment.written < cutoff)
            .count();
        let bytes = inner.segments.drain(..old).map(|segment| segment.bytes).sum();
        Ok((old, bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::{EmbeddedStore, Overlay, Write};

    fn put(keyspace: Keyspace, key: &[u8], value: &[u8]) -> Write {
        (keyspace, key.to_vec(), Some(value.to_vec()))
    }

    fn keys(found: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Vec<u8>> {
        found.into_iter().map(|(key, _)| key).collect()
    }

    fn in_a_day() -> SystemTime {
        SystemTime::now() + Duration::from_secs(86_400)
    }

    #[test]
    fn a_commit_is_read_back_and_a_delete_removes() {
        let store = MemoryStore::new();
        assert_eq!(store.get(Keyspace::Patient, b"p1").unwrap(), None);
        store
            .commit(WriteSet {
                ops: vec![
                    put(Keyspace::Patient, b"p1", b"one"),
                    put(Keyspace::Patient, b"p1", b"two"),
                ],
                journal: vec![],
            })
            .unwrap();
        assert_eq!(
            store.get(Keyspace::Patient, b"p1").unwrap(),
            Some(b"two".to_vec()),
            "the later write of a set wins"
        );
        assert_eq!(
            store.get(Keyspace::Dedupe, b"p1").unwrap(),
            None,
            "keyspaces are apart"
        );
        store
            .commit(WriteSet {
                ops: vec![(Keyspace::Patient, b"p1".to_vec(), None)],
                journal: vec![],
            })
            .unwrap();
        assert_eq!(store.get(Keyspace::Patient, b"p1").unwrap(), None);
    }

    #[test]
    fn prefix_scans_are_in_key_order_inside_their_keyspace_and_limited() {
        let store = MemoryStore::new();
        store
            .commit(WriteSet {
                ops: vec![
                    put(Keyspace::EmailIndex, b"b\x001", b""),
                    put(Keyspace::EmailIndex, b"a\x002", b""),
                    put(Keyspace::EmailIndex, b"a\x001", b""),
                    put(Keyspace::EmailIndex, b"ab\x003", b""),
                    put(Keyspace::PhoneIndex, b"a\x009", b""),
                ],
                journal: vec![],
            })
            .unwrap();
        let scan =
            |prefix: &[u8], limit| keys(store.scan_prefix(Keyspace::EmailIndex, prefix, limit).unwrap());
        assert_eq!(scan(b"a\x00", 10), [b"a\x001".to_vec(), b"a\x002".to_vec()]);
        assert_eq!(scan(b"a", 10).len(), 3);
        assert_eq!(scan(b"", 10).len(), 4);
        assert_eq!(scan(b"a", 1), [b"a\x001".to_vec()]);
        assert!(scan(b"a", 0).is_empty());
        assert!(scan(b"c", 10).is_empty());
        assert!(store.scan_prefix(Keyspace::Patient, b"", 10).unwrap().is_empty());
    }

    #[test]
    fn the_journal_reads_in_commit_order_from_a_sequence_number() {
        let store = MemoryStore::new();
        assert_eq!(store.journal_last_seq(), 0);
        for seq in [1u64, 2, 3] {
            store
                .commit(WriteSet {
                    ops: vec![],
                    journal: vec![(seq, format!("entry {seq}").into_bytes())],
                })
                .unwrap();
        }
        store.checkpoint().unwrap();
        store
            .commit(WriteSet {
                ops: vec![],
                journal: vec![(4, b"entry 4".to_vec()), (5, b"entry 5".to_vec())],
            })
            .unwrap();
        store.sync().unwrap();
        let seqs = |from, limit| -> Vec<u64> {
            store
                .journal(from, limit)
                .unwrap()
                .iter()
                .map(|(s, _)| *s)
                .collect()
        };
        assert_eq!(seqs(0, 100), [1, 2, 3, 4, 5], "across the checkpoint");
        assert_eq!(seqs(2, 2), [2, 3]);
        assert_eq!(seqs(5, 100), [5]);
        assert!(seqs(6, 100).is_empty());
        assert_eq!(store.journal_last_seq(), 5);
        assert_eq!(store.journal(1, 1).unwrap(), [(1, b"entry 1".to_vec())]);
    }

    #[test]
    fn retention_drops_closed_segments_older_than_the_cutoff_only() {
        let store = MemoryStore::new();
        let write = |seq: u64| WriteSet {
            ops: vec![put(Keyspace::Patient, format!("p{seq}").as_bytes(), b"x")],
            journal: vec![(seq, format!("entry {seq}").into_bytes())],
        };
        store.commit(write(1)).unwrap();
        store.checkpoint().unwrap();
        store.checkpoint().unwrap(); // Nothing written since: no segment of its own.
        store.commit(write(2)).unwrap();
        store.checkpoint().unwrap();
        store.commit(write(3)).unwrap();
        let long_ago = SystemTime::UNIX_EPOCH;
        assert_eq!(
            store.drop_journal_before(long_ago).unwrap(),
            (0, 0),
            "nothing is that old"
        );
        let (dropped, bytes) = store.drop_journal_before(in_a_day()).unwrap();
        assert_eq!(dropped, 2, "never the segment being written");
        assert_eq!(
            bytes,
            (wal::encoded_len(&write(1)) + wal::encoded_len(&write(2))) as u64
        );
        assert_eq!(store.journal(0, 10).unwrap(), [(3, b"entry 3".to_vec())]);
        assert_eq!(
            store.get(Keyspace::Patient, b"p1").unwrap(),
            Some(b"x".to_vec()),
            "the data stays"
        );
        assert_eq!(store.journal_last_seq(), 3);
        assert_eq!(store.drop_journal_before(in_a_day()).unwrap(), (0, 0));
    }

    #[test]
    fn overlays_stack_on_it_as_on_the_embedded_store() {
        let store = MemoryStore::new();
        store
            .commit(WriteSet {
                ops: vec![put(Keyspace::Member, b"m1", b"old")],
                journal: vec![],
            })
            .unwrap();
        let mut tx = Overlay::new(&store);
        tx.put(Keyspace::Member, b"m1".to_vec(), b"new".to_vec());
        tx.delete(Keyspace::Member, b"m2".to_vec());
        assert_eq!(tx.get(Keyspace::Member, b"m1").unwrap(), Some(b"new".to_vec()));
        assert_eq!(
            store.get(Keyspace::Member, b"m1").unwrap(),
            Some(b"old".to_vec()),
            "not before the commit"
        );
        store.commit(tx.into_writes()).unwrap();
        assert_eq!(store.get(Keyspace::Member, b"m1").unwrap(), Some(b"new".to_vec()));
    }

    /// One step of the comparison: a commit, or one of the calls that change no data.
    #[derive(Debug, Clone)]
    enum Step {
        Commit(WriteSet),
        Sync,
        Checkpoint,
        DropJournal,
        /// Sync, then drop the embedded store and open it again (the memory store stays).
        Reopen,
    }

    /// Few keyspaces and few, short keys (the empty one, 0x00 and 0xff bytes among them), so
    /// writes meet, prefixes share, and scans reach the edges of their keyspace (`Meta` is the
    /// first keyspace by prefix, `EmailIndex` lies between others).
    const KEYSPACES: [Keyspace; 4] = [
        Keyspace::EmailIndex,
        Keyspace::PhoneIndex,
        Keyspace::Patient,
        Keyspace::Meta,
    ];
    const KEYS: [&[u8]; 8] = [b"", b"a", b"a\0", b"a\x001", b"ab", b"b", b"b\xff", b"\xff"];
    const PREFIXES: [&[u8]; 5] = [b"", b"a", b"a\0", b"b", b"c"];

    fn step() -> impl Strategy<Value = Step> {
        let op = (
            prop::sample::select(KEYSPACES.to_vec()),
            prop::sample::select(KEYS.to_vec()),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..6)),
        )
            .prop_map(|(keyspace, key, value)| (keyspace, key.to_vec(), value));
        // The first number is the gap to the previous entry's: journal numbers only increase.
        let entry = (0u64..3, prop::collection::vec(any::<u8>(), 0..6));
        let commit = (
            prop::collection::vec(op, 0..6),
            prop::collection::vec(entry, 0..3),
        )
            .prop_map(|(ops, journal)| Step::Commit(WriteSet { ops, journal }));
        prop_oneof![
            8 => commit,
            1 => Just(Step::Sync),
            2 => Just(Step::Checkpoint),
            1 => Just(Step::DropJournal),
            1 => Just(Step::Reopen),
        ]
    }

    /// Every read the contract offers, over the keyspaces, keys and prefixes the steps use.
    fn assert_same_reads(memory: &MemoryStore, embedded: &EmbeddedStore) -> Result<(), TestCaseError> {
        for keyspace in KEYSPACES {
            for key in KEYS {
                prop_assert_eq!(
                    memory.get(keyspace, key)?,
                    embedded.get(keyspace, key)?,
                    "get {:?} {:?}",
                    keyspace,
                    key
                );
            }
            for prefix in PREFIXES {
                for limit in [0, 1, 3, usize::MAX] {
                    prop_assert_eq!(
                        memory.scan_prefix(keyspace, prefix, limit)?,
                        embedded.scan_prefix(keyspace, prefix, limit)?,
                        "scan {:?} {:?} limit {}",
                        keyspace,
                        prefix,
                        limit
                    );
                }
            }
        }
        for from in [0, 1, 5, 11, 12, 30, 60] {
            for limit in [0, 1, 4, usize::MAX] {
                prop_assert_eq!(
                    memory.journal(from, limit)?,
                    embedded.journal(from, limit)?,
                    "journal from {} limit {}",
                    from,
                    limit
                );
            }
        }
        prop_assert_eq!(memory.journal_last_seq(), embedded.journal_last_seq());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The same steps on a memory store and on the embedded store in a temporary folder: after
        /// each one, every read agrees, and journal retention drops as much from both.
        #[test]
        fn reads_agree_with_the_embedded_store(steps in prop::collection::vec(step(), 1..24)) {
            let dir = tempfile::tempdir()?;
            let mut embedded = EmbeddedStore::open(dir.path())?;
            let memory = MemoryStore::new();
            let mut last_seq = 0;
            for step in steps {
                match step {
                    Step::Commit(mut writes) => {
                        for (seq, _) in &mut writes.journal {
                            last_seq += 1 + *seq;
                            *seq = last_seq;
                        }
                        memory.commit(writes.clone())?;
                        embedded.commit(writes)?;
                    }
                    Step::Sync => {
                        memory.sync()?;
                        embedded.sync()?;
                    }
                    Step::Checkpoint => {
                        memory.checkpoint()?;
                        embedded.checkpoint()?;
                    }
                    Step::DropJournal => {
                        let cutoff = in_a_day();
                        prop_assert_eq!(memory.drop_journal_before(cutoff)?, embedded.drop_journal_before(cutoff)?);
                    }
                    Step::Reopen => {
                        embedded.sync()?;
                        drop(embedded);
                        embedded = EmbeddedStore::open(dir.path())?;
                    }
                }
                assert_same_reads(&memory, &embedded)?;
            }
        }
    }
}
