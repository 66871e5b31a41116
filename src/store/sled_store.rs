//! The embedded backend of `Store`: a sled tree behind the write-ahead log (`wal`).
//!
//! All keyspaces live in sled's default tree behind a one-byte prefix. A commit appends its write
//! set to the log and hands it to a background thread that applies it to the tree (`pending`
//! keeps it readable meanwhile); `sync` makes the log durable. sled itself is flushed only at
//! checkpoints (when a log segment is full, and at shutdown), followed by an `fdatasync` of its
//! data file through our own handle, because sled's flush uses `sync_file_range`, which is not a
//! durable commit on Linux (sled issue 1452).
//!
//! Folder layout: `sled/` (the tree) and `journal/` (the log segments, kept as the journal).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use super::pending::Pending;
use super::wal::{self, Wal};
use super::{Keyspace, Reader, Store, StoreError, Write, WriteSet};

/// A log segment larger than this is folded into sled and a new one started.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Write sets waiting for the applier at most; a commit waits beyond that (back pressure).
const APPLY_QUEUE: usize = 4096;

/// Meta key of the checkpoint: the first segment not yet folded into sled, and the last journal
/// sequence number at that point.
const CHECKPOINT_KEY: &[u8] = b"checkpoint";

pub struct SledStore {
    db: sled::Db,
    /// Our own handle on sled's data file, for the fdatasync that makes a flush durable.
    data_file: File,
    log_dir: PathBuf,
    log: Mutex<Log>,
    pending: Arc<Pending>,
    applier: Mutex<Option<JoinHandle<()>>>,
    last_seq: AtomicU64,
}

/// The appending side, under one lock so write sets reach the log and the applier in one order.
struct Log {
    wal: Wal,
    /// Number of the last write set committed.
    write_set: u64,
    to_applier: Option<mpsc::SyncSender<(u64, Vec<Write>)>>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn full_key(keyspace: Keyspace, key: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(key.len() + 1);
    full.push(keyspace.prefix());
    full.extend_from_slice(key);
    full
}

fn sled_batch(ops: &[Write]) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (keyspace, key, value) in ops {
        match value {
            Some(value) => batch.insert(full_key(*keyspace, key), value.as_slice()),
            None => batch.remove(full_key(*keyspace, key)),
        }
    }
    batch
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, applying whatever the log holds past the last
    /// checkpoint.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let tree_dir = dir.join("sled");
        let log_dir = dir.join("journal");
        std::fs::create_dir_all(&tree_dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", tree_dir.display())))?;
        let db = sled::Config::new()
            .path(&tree_dir)
            .cache_capacity(512 * 1024 * 1024)
            // The log is the durable commit; sled is flushed at checkpoints only.
            .flush_every_ms(None)
            .open()
            .map_err(|e| StoreError(format!("cannot open the store in {}: {e}", dir.display())))?;
        let data_file = File::open(tree_dir.join("db")).map_err(err)?;
        let (first_unfolded, mut last_seq) =
            match db.get(full_key(Keyspace::Meta, CHECKPOINT_KEY)).map_err(err)? {
                Some(value) if value.len() == 16 => (
                    u64::from_be_bytes(value[..8].try_into().expect("8 bytes")),
                    u64::from_be_bytes(value[8..].try_into().expect("8 bytes")),
                ),
                _ => (1, 0),
            };
        let segments = wal::segments(&log_dir)?;
        let mut replayed = 0;
        for &segment in segments.iter().filter(|&&s| s >= first_unfolded) {
            for record in wal::read_segment(&log_dir, segment, true)? {
                db.apply_batch(sled_batch(&record.ops)).map_err(err)?;
                if let Some((seq, _)) = record.journal.last() {
                    last_seq = last_seq.max(*seq);
                }
                replayed += 1;
            }
        }
        if replayed > 0 {
            tracing::info!(records = replayed, "applied the log past the last checkpoint");
        }
        let current = segments.last().copied().unwrap_or(1).max(first_unfolded);
        let pending = Arc::new(Pending::default());
        let (to_applier, queue) = mpsc::sync_channel(APPLY_QUEUE);
        let applier = {
            let (db, pending) = (db.clone(), pending.clone());
            std::thread::Builder::new()
                .name("sled-applier".into())
                .spawn(move || apply_loop(db, pending, queue))
                .map_err(err)?
        };
        Ok(SledStore {
            db,
            data_file,
            log: Mutex::new(Log {
                wal: Wal::open(&log_dir, current)?,
                write_set: 0,
                to_applier: Some(to_applier),
            }),
            log_dir,
            pending,
            applier: Mutex::new(Some(applier)),
            last_seq: AtomicU64::new(last_seq),
        })
    }

    fn lock_log(&self) -> Result<std::sync::MutexGuard<'_, Log>, StoreError> {
        self.log
            .lock()
            .map_err(|_| StoreError("the log lock is poisoned".into()))
    }

    /// Flushes sled durably, records that every segment up to the current one is folded in, and
    /// starts a new segment.
    fn checkpoint_locked(&self, log: &mut Log) -> Result<(), StoreError> {
        // The segment being left holds journal entries that must be durable too.
        log.wal.sync()?;
        self.pending.wait_applied(log.write_set);
        let mut marker = (log.wal.segment() + 1).to_be_bytes().to_vec();
        marker.extend_from_slice(&self.last_seq.load(Ordering::SeqCst).to_be_bytes());
        self.db
            .insert(full_key(Keyspace::Meta, CHECKPOINT_KEY), marker)
            .map_err(err)?;
        self.db.flush().map_err(err)?;
        self.data_file.sync_data().map_err(err)?;
        log.wal.rotate()
    }
}

/// The applier thread: write sets into sled, in commit order.
fn apply_loop(db: sled::Db, pending: Arc<Pending>, queue: mpsc::Receiver<(u64, Vec<Write>)>) {
    for (write_set, ops) in queue {
        match db.apply_batch(sled_batch(&ops)) {
            Ok(()) => pending.applied(write_set, &ops),
            // The write set stays pending (readable) and in the log, applied again on next open.
            Err(e) => tracing::error!(error = %e, write_set, "applying a write set to sled failed"),
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        if let Ok(mut log) = self.log.lock() {
            log.to_applier = None;
        }
        if let Some(applier) = self.applier.lock().ok().and_then(|mut a| a.take()) {
            let _ = applier.join();
        }
    }
}

impl Reader for SledStore {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // Pending first: a write leaves it only once sled has it.
        if let Some(value) = self.pending.get(keyspace, key) {
            return Ok(value);
        }
        Ok(self
            .db
            .get(full_key(keyspace, key))
            .map_err(err)?
            .map(|v| v.to_vec()))
    }
}

impl Store for SledStore {
    fn scan_prefix(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        // Pending first, as in `get`; then merge it over sled's entries in key order.
        let mut pending = self.pending.with_prefix(keyspace, prefix).into_iter().peekable();
        let mut tree = self
            .db
            .scan_prefix(full_key(keyspace, prefix))
            .map(|entry| entry.map(|(k, v)| (k[1..].to_vec(), v.to_vec())).map_err(err))
            .peekable();
        let mut found = vec![];
        while found.len() < limit {
            let (take_pending, shadowed) = match (pending.peek(), tree.peek()) {
                (None, None) => break,
                (Some(_), None) => (true, false),
                (Some((p, _)), Some(Ok((t, _)))) => (p <= t, p == t),
                (None, Some(_)) | (Some(_), Some(Err(_))) => (false, false),
            };
            if shadowed {
                tree.next();
            }
            if take_pending {
                if let Some((key, Some(value))) = pending.next() {
                    found.push((key, value));
                }
            } else if let Some(entry) = tree.next() {
                found.push(entry?);
            }
        }
        Ok(found)
    }

    fn commit(&self, writes: WriteSet) -> Result<(), StoreError> {
        let mut log = self.lock_log()?;
        log.wal.append(&writes)?;
        log.write_set += 1;
        let write_set = log.write_set;
        self.pending.add(write_set, &writes.ops);
        if let Some((seq, _)) = writes.journal.last() {
            self.last_seq.fetch_max(*seq, Ordering::SeqCst);
        }
        let to_applier = log
            .to_applier
            .as_ref()
            .ok_or_else(|| StoreError("the store is closing".into()))?;
        to_applier
            .send((write_set, writes.ops))
            .map_err(|_| StoreError("the sled applier has stopped".into()))
    }

    fn sync(&self) -> Result<(), StoreError> {
        // Not under the lock: commits go on appending while this sync waits on the disk.
        let file = self.lock_log()?.wal.file();
        wal::sync_file(&file)?;
        let mut log = self.lock_log()?;
        if log.wal.len() > SEGMENT_BYTES {
            self.checkpoint_locked(&mut log)?;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        let mut log = self.lock_log()?;
        if log.wal.len() > 0 {
            self.checkpoint_locked(&mut log)?;
        }
        Ok(())
    }

    fn journal(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut found = vec![];
        for segment in wal::segments(&self.log_dir)? {
            for record in wal::read_segment(&self.log_dir, segment, false)? {
                found.extend(record.journal.into_iter().filter(|(seq, _)| *seq >= from));
                if found.len() >= limit {
                    found.truncate(limit);
                    return Ok(found);
                }
            }
        }
        Ok(found)
    }

    fn journal_last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(keyspace: Keyspace, key: &[u8], value: &[u8]) -> Write {
        (keyspace, key.to_vec(), Some(value.to_vec()))
    }

    #[test]
    fn synced_writes_survive_a_reopen_without_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .commit(WriteSet {
                    ops: vec![
                        put(Keyspace::Patient, b"p1", b"one"),
                        put(Keyspace::Dedupe, b"d", b"x"),
                    ],
                    journal: vec![(1, b"first".to_vec())],
                })
                .unwrap();
            store.sync().unwrap();
            // Dropped without a checkpoint: sled was never flushed, the log has it all.
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Keyspace::Patient, b"p1").unwrap(),
            Some(b"one".to_vec())
        );
        assert_eq!(
            store.get(Keyspace::Dedupe, b"p1").unwrap(),
            None,
            "keyspaces are apart"
        );
        assert_eq!(store.journal_last_seq(), 1);
        assert_eq!(store.journal(1, 10).unwrap(), vec![(1, b"first".to_vec())]);
    }

    #[test]
    fn after_a_checkpoint_the_journal_is_kept_and_nothing_is_replayed_twice() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            for seq in 1..=3u64 {
                let key = format!("p{seq}");
                store
                    .commit(WriteSet {
                        ops: vec![put(Keyspace::Patient, key.as_bytes(), b"v")],
                        journal: vec![(seq, key.into_bytes())],
                    })
                    .unwrap();
            }
            store.checkpoint().unwrap();
            store
                .commit(WriteSet {
                    ops: vec![(Keyspace::Patient, b"p1".to_vec(), None)],
                    journal: vec![(4, b"p4".to_vec())],
                })
                .unwrap();
            store.sync().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Keyspace::Patient, b"p1").unwrap(),
            None,
            "the delete after the checkpoint"
        );
        assert_eq!(store.get(Keyspace::Patient, b"p3").unwrap(), Some(b"v".to_vec()));
        assert_eq!(store.journal_last_seq(), 4);
        let seqs: Vec<u64> = store
            .journal(2, 10)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(seqs, vec![2, 3, 4]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .commit(WriteSet {
                    ops: vec![put(Keyspace::Patient, b"kept", b"v")],
                    journal: vec![(1, b"kept".to_vec())],
                })
                .unwrap();
            store.sync().unwrap();
        }
        let segment = wal::segment_path(&dir.path().join("journal"), 1);
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        std::fs::write(&segment, &bytes).unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            assert_eq!(
                store.get(Keyspace::Patient, b"kept").unwrap(),
                Some(b"v".to_vec())
            );
            store
                .commit(WriteSet {
                    ops: vec![put(Keyspace::Patient, b"after", b"v")],
                    journal: vec![(2, b"after".to_vec())],
                })
                .unwrap();
            store.sync().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Keyspace::Patient, b"after").unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(store.journal(0, 10).unwrap().len(), 2);
    }

    #[test]
    fn scan_prefix_stays_inside_its_keyspace() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut writes = WriteSet::default();
        for key in [&b"a\x001"[..], b"a\x002", b"ab\x003"] {
            writes.ops.push(put(Keyspace::EmailIndex, key, b""));
        }
        writes.ops.push(put(Keyspace::PhoneIndex, b"a\x009", b""));
        store.commit(writes).unwrap();
        assert_eq!(
            store
                .scan_prefix(Keyspace::EmailIndex, b"a\x00", 10)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            store.scan_prefix(Keyspace::EmailIndex, b"a", 10).unwrap().len(),
            3
        );
    }
}
