//! The embedded backend of `Store`: a sled tree behind the write-ahead log (`wal`).
//!
//! All keyspaces live in sled's default tree behind a one-byte prefix. A commit appends its write
//! set to the log and hands it to a background thread that applies it to the tree (`pending`
//! keeps it readable meanwhile); `sync` makes the log durable. sled itself is flushed only at
//! checkpoints (when a log segment is full, and at shutdown), followed by an `fdatasync` of its
//! data file through our own handle, because sled's flush uses `sync_file_range`, which is not a
//! durable commit on Linux (sled issue 1452). A checkpoint runs on the applier thread, in order
//! after the write sets of the segments it folds in, so commits never wait for sled's flush.
//!
//! Folder layout: `sled/` (the tree) and `journal/` (the log segments, which are also the journal:
//! kept until journal retention drops the old ones, see `wal`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use super::pending::Pending;
use super::wal::{self, Wal};
use super::{Keyspace, Reader, Store, StoreError, StoreOptions, Write, WriteSet};

/// A log segment larger than this is folded into sled and a new one started.
pub(crate) const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Write sets waiting for the applier at most; a commit waits beyond that (back pressure).
const APPLY_QUEUE: usize = 4096;

/// Meta key of the checkpoint: the first segment not yet folded into sled, and the last journal
/// sequence number at that point.
const CHECKPOINT_KEY: &[u8] = b"checkpoint";

/// The embedded `Store`: a sled tree in `<dir>/sled` behind the write-ahead log in
/// `<dir>/journal` (see the module doc).
pub struct SledStore {
    db: sled::Db,
    log_dir: PathBuf,
    log: Mutex<Log>,
    pending: Arc<Pending>,
    applier: Mutex<Option<JoinHandle<()>>>,
    last_seq: AtomicU64,
    min_free_bytes: u64,
    /// Why the last commit or sync failed; cleared by the next sync that succeeds.
    failure: Mutex<Option<String>>,
}

/// The appending side, under one lock so write sets reach the log and the applier in one order.
struct Log {
    wal: Wal,
    /// Number of the last task given to the applier.
    task: u64,
    to_applier: Option<mpsc::SyncSender<Task>>,
}

/// The applier thread's work, numbered and in commit order.
enum Task {
    /// Apply one write set to sled.
    Apply(u64, Vec<Write>),
    /// Every write set of the segments before `next_segment` is applied: record that, flush sled
    /// and fdatasync its data file.
    Checkpoint {
        task: u64,
        next_segment: u64,
        last_seq: u64,
    },
}

impl Log {
    fn send(&mut self, make: impl FnOnce(u64) -> Task) -> Result<u64, StoreError> {
        self.task += 1;
        let to_applier = self.to_applier.as_ref().ok_or(StoreError::Closing)?;
        to_applier
            .send(make(self.task))
            .map_err(|_| StoreError::ApplierStopped)?;
        Ok(self.task)
    }

    /// Closes the current segment and has the applier fold it into sled; returns the task number.
    fn start_checkpoint(&mut self, last_seq: u64) -> Result<u64, StoreError> {
        // The segment being left holds journal entries that must be durable too: rotate syncs it.
        self.wal.rotate()?;
        let next_segment = self.wal.segment();
        self.send(|task| Task::Checkpoint {
            task,
            next_segment,
            last_seq,
        })
    }
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
    /// Opens (or creates) the store in `dir` with the default options.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        SledStore::open_with(dir, &StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`, applying whatever the log holds past the last
    /// checkpoint.
    pub fn open_with(dir: &Path, options: &StoreOptions) -> Result<SledStore, StoreError> {
        let tree_dir = dir.join("sled");
        let log_dir = dir.join("journal");
        for private in [dir, &tree_dir, &log_dir] {
            wal::create_private_dir(private)?;
        }
        let db = open_tree(&tree_dir).map_err(|source| StoreError::Open {
            dir: dir.to_path_buf(),
            source,
        })?;
        let data_path = tree_dir.join("db");
        let data_file =
            File::open(&data_path).map_err(|e| StoreError::io(data_path.display().to_string(), e))?;
        let (first_unfolded, mut last_seq) = match db.get(full_key(Keyspace::Meta, CHECKPOINT_KEY))? {
            Some(value) if value.len() == 16 => (
                u64::from_be_bytes(value[..8].try_into().expect("8 bytes")),
                u64::from_be_bytes(value[8..].try_into().expect("8 bytes")),
            ),
            _ => (1, 0),
        };
        let segments = wal::segments(&log_dir)?;
        let mut replayed = 0;
        for &segment in segments.iter().filter(|&&s| s >= first_unfolded) {
            let last = Some(&segment) == segments.last();
            for record in wal::recover_segment(&log_dir, segment, last, options.damage)? {
                db.apply_batch(sled_batch(&record.ops))?;
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
                .spawn(move || apply_loop(db, data_file, pending, queue))
                .map_err(|e| StoreError::io("cannot start the sled applier thread", e))?
        };
        Ok(SledStore {
            db,
            log: Mutex::new(Log {
                wal: Wal::open(&log_dir, current)?,
                task: 0,
                to_applier: Some(to_applier),
            }),
            log_dir,
            pending,
            applier: Mutex::new(Some(applier)),
            last_seq: AtomicU64::new(last_seq),
            min_free_bytes: options.min_free_bytes,
            failure: Mutex::new(None),
        })
    }

    /// Remembers (or, with None, forgets) why writes fail, for `/health`.
    fn note_failure(&self, failure: Option<&StoreError>) {
        if let Ok(mut noted) = self.failure.lock() {
            *noted = failure.map(|e| e.to_string());
        }
    }

    /// Refuses a write while the data folder's disk is below its free-space floor, so a full
    /// disk is met before a write fails half-way.
    fn check_free_space(&self) -> Result<(), StoreError> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        let free = free_bytes(&self.log_dir)?;
        if free < self.min_free_bytes {
            return Err(StoreError::DiskFloor {
                free,
                floor: self.min_free_bytes,
                dir: self.log_dir.clone(),
            });
        }
        Ok(())
    }

    fn lock_log(&self) -> Result<std::sync::MutexGuard<'_, Log>, StoreError> {
        self.log.lock().map_err(|_| StoreError::Poisoned)
    }
}

/// Opens the sled tree. sled's file lock outlives a closed store by a moment (its background
/// threads let go of it), so a lock held elsewhere is tried again for a short while before the
/// store is declared in use by another process.
fn open_tree(tree_dir: &Path) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let opened = sled::Config::new()
            .path(tree_dir)
            .cache_capacity(512 * 1024 * 1024)
            // The log is the durable commit; sled is flushed at checkpoints only.
            .flush_every_ms(None)
            .open();
        match opened {
            // sled wraps the lock failure in an error of its own kind, so its text tells too.
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("acquire lock") =>
            {
                if std::time::Instant::now() > deadline {
                    return Err(sled::Error::Io(std::io::Error::new(
                        e.kind(),
                        "the store is in use by another process",
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The applier thread: write sets into sled, and checkpoints, in commit order. `data_file` is our
/// own handle on sled's data file, for the fdatasync that makes a flush durable.
fn apply_loop(db: sled::Db, data_file: File, pending: Arc<Pending>, queue: mpsc::Receiver<Task>) {
    for task in queue {
        match task {
            Task::Apply(n, ops) => match db.apply_batch(sled_batch(&ops)) {
                Ok(()) => pending.applied(n, &ops),
                // It stays pending (readable) and in the log, applied again on the next open.
                Err(e) => tracing::error!(error = %e, task = n, "applying a write set to sled failed"),
            },
            Task::Checkpoint {
                task,
                next_segment,
                last_seq,
            } => {
                let mut marker = next_segment.to_be_bytes().to_vec();
                marker.extend_from_slice(&last_seq.to_be_bytes());
                let done = db
                    .insert(full_key(Keyspace::Meta, CHECKPOINT_KEY), marker)
                    .and_then(|_| db.flush())
                    .map_err(StoreError::from)
                    .and_then(|_| {
                        data_file
                            .sync_data()
                            .map_err(|e| StoreError::io("sled data file sync", e))
                    });
                if let Err(e) = done {
                    // Nothing is lost: the next open replays from the previous checkpoint.
                    tracing::error!(error = %e, "checkpoint failed");
                }
                pending.applied(task, &[]);
            }
        }
    }
}

/// Bytes an unprivileged process may still write on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64, StoreError> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| StoreError::io(dir.display().to_string(), e.into()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
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
        Ok(self.db.get(full_key(keyspace, key))?.map(|v| v.to_vec()))
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
            .map(|entry| {
                entry
                    .map(|(k, v)| (k[1..].to_vec(), v.to_vec()))
                    .map_err(StoreError::from)
            })
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
        let appended = self
            .check_free_space()
            .and_then(|()| self.lock_log())
            .and_then(|mut log| log.wal.append(&writes).map(|()| log));
        let mut log = match appended {
            Ok(log) => log,
            Err(e) => {
                self.note_failure(Some(&e));
                return Err(e);
            }
        };
        if let Some((seq, _)) = writes.journal.last() {
            self.last_seq.fetch_max(*seq, Ordering::SeqCst);
        }
        let pending = &self.pending;
        log.send(|task| {
            pending.add(task, &writes.ops);
            Task::Apply(task, writes.ops)
        })?;
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        // Not under the lock: commits go on appending while this sync waits on the disk.
        let (file, segment, upto) = self.lock_log()?.wal.sync_target();
        let synced = wal::sync_file(&file);
        let done = self.lock_log().and_then(|mut log| {
            log.wal.after_sync(segment, upto, synced)?;
            if log.wal.len() > SEGMENT_BYTES {
                log.start_checkpoint(self.last_seq.load(Ordering::SeqCst))?;
            }
            Ok(())
        });
        self.note_failure(done.as_ref().err());
        done
    }

    fn write_failure(&self) -> Option<String> {
        if let Err(e) = self.check_free_space() {
            return Some(e.to_string());
        }
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        let task = {
            let mut log = self.lock_log()?;
            if log.wal.len() == 0 {
                return Ok(());
            }
            log.start_checkpoint(self.last_seq.load(Ordering::SeqCst))?
        };
        self.pending.wait_applied(task);
        Ok(())
    }

    fn journal(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut found = vec![];
        for segment in wal::segments(&self.log_dir)? {
            for record in wal::read_segment(&self.log_dir, segment)? {
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

    fn drop_journal_before(&self, cutoff: std::time::SystemTime) -> Result<(usize, u64), StoreError> {
        // Only segments before the last checkpoint: the store no longer needs them to open.
        let first_unfolded = match self.db.get(full_key(Keyspace::Meta, CHECKPOINT_KEY))? {
            Some(value) if value.len() == 16 => u64::from_be_bytes(value[..8].try_into().expect("8 bytes")),
            _ => return Ok((0, 0)),
        };
        let current = self.lock_log()?.wal.segment();
        let (mut dropped, mut bytes) = (0, 0);
        for segment in wal::segments(&self.log_dir)? {
            if segment >= first_unfolded || segment >= current {
                break;
            }
            let path = wal::segment_path(&self.log_dir, segment);
            let io = |e| StoreError::io(path.display().to_string(), e);
            let metadata = std::fs::metadata(&path).map_err(io)?;
            if metadata.modified().map_err(io)? >= cutoff {
                // Segments are written in order: the later ones are newer still.
                break;
            }
            std::fs::remove_file(&path)
                .map_err(|e| StoreError::io(format!("cannot drop {}", path.display()), e))?;
            dropped += 1;
            bytes += metadata.len();
        }
        if dropped > 0 {
            wal::sync_dir(&self.log_dir)?;
        }
        Ok((dropped, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(keyspace: Keyspace, key: &[u8], value: &[u8]) -> Write {
        (keyspace, key.to_vec(), Some(value.to_vec()))
    }

    #[test]
    fn retention_drops_old_folded_segments_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let write = |seq: u64| WriteSet {
            ops: vec![put(Keyspace::Patient, format!("p{seq}").as_bytes(), b"x")],
            journal: vec![(seq, format!("entry {seq}").into_bytes())],
        };
        store.commit(write(1)).unwrap();
        store.checkpoint().unwrap();
        store.commit(write(2)).unwrap();
        store.checkpoint().unwrap();
        store.commit(write(3)).unwrap();
        store.sync().unwrap();
        // Segment 1 is old, segment 2 recent, segment 3 is being written.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(90 * 86_400);
        let first = wal::segment_path(&dir.path().join("journal"), 1);
        std::fs::File::options()
            .write(true)
            .open(&first)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
        let (dropped, bytes) = store.drop_journal_before(cutoff).unwrap();
        assert_eq!(dropped, 1);
        assert!(bytes > 0);
        let seqs: Vec<u64> = store.journal(0, 100).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![2, 3], "the old range is gone, the rest kept");
        assert_eq!(
            store.get(Keyspace::Patient, b"p1").unwrap().as_deref(),
            Some(&b"x"[..]),
            "the data stays"
        );
        // Everything is recent now: nothing more goes.
        assert_eq!(store.drop_journal_before(cutoff).unwrap().0, 0);
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
    fn reads_see_pending_writes_over_sled_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let ops = [b"a", b"b"].map(|k| put(Keyspace::EmailIndex, &[&k[..], b"\0"].concat(), b""));
        store
            .commit(WriteSet {
                ops: ops.to_vec(),
                journal: vec![],
            })
            .unwrap();
        store.checkpoint().unwrap();
        for _ in 0..50 {
            store
                .commit(WriteSet {
                    ops: vec![
                        (Keyspace::EmailIndex, b"a\0".to_vec(), None),
                        put(Keyspace::EmailIndex, b"c\0", b""),
                    ],
                    journal: vec![],
                })
                .unwrap();
            // Whether or not the applier has got to it yet, the answer is the same.
            let keys: Vec<Vec<u8>> = store
                .scan_prefix(Keyspace::EmailIndex, b"", 10)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            assert_eq!(keys, vec![b"b\0".to_vec(), b"c\0".to_vec()]);
            assert_eq!(store.get(Keyspace::EmailIndex, b"a\0").unwrap(), None);
            store
                .commit(WriteSet {
                    ops: vec![
                        put(Keyspace::EmailIndex, b"a\0", b""),
                        (Keyspace::EmailIndex, b"c\0".to_vec(), None),
                    ],
                    journal: vec![],
                })
                .unwrap();
            assert_eq!(
                store.scan_prefix(Keyspace::EmailIndex, b"", 1).unwrap()[0].0,
                b"a\0".to_vec()
            );
        }
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
