//! The embedded backend of `Store`: an LSM tree (the `lsm-tree` crate) behind our write-ahead log
//! (`wal`), which is the only durable log.
//!
//! All keyspaces live in one tree behind a one-byte prefix. A commit, under the log lock, appends
//! its write set to the log and inserts it into the tree's memtable, then moves the readable
//! sequence number past it: readers read at the readable number, so they see a write set whole or
//! not at all, the moment its commit returns. `sync` makes the log durable; nothing else is
//! written per commit (one durable write per change, not two).
//!
//! The tree also takes sequence numbers from the same counter for its own versions (a flush, a
//! compaction) and moves its own visible number past them; that one is not what readers read at,
//! or a flush during a commit would show half of its write set. A compaction drops the versions
//! no reader can need any more: below the readable number it saw with no read in flight (the
//! `readers` lock), which every later read is at or above.
//!
//! When the log segment passes `StoreOptions::log_segment_bytes` (16 MiB by default) at a sync, a
//! checkpoint starts: under the log lock the log moves to a new segment and the memtable is
//! sealed, so the sealed memtable holds exactly the write sets of the segments before the new
//! one. The `store-maintenance` thread writes it out as
//! table files (fsynced by the tree), records the checkpoint in the `checkpoint` file (written to
//! a temporary file, fsynced and renamed) and compacts. On open, the log is replayed from the
//! segment the last checkpoint names; a crash before the marker only means more to replay (the
//! records hold whole values, so applying one again changes nothing).
//!
//! Folder layout: `tree/` (the LSM tree's tables and manifest), `journal/` (the log segments, kept
//! as the journal until retention drops them, see `wal`), `checkpoint`, and `lock` (held with
//! `flock` while the store is open, so a second process is refused). A `sled/` folder left by an
//! earlier release is imported once (see `sled_import`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;

use lsm_tree::{AbstractTree, AnyTree, SequenceNumberCounter};

use super::wal::{self, Wal};
use super::{Keyspace, Reader, Store, StoreError, StoreOptions, WriteSet};

/// The tree's block cache: hot index, filter and data blocks of the tables.
const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// Compaction rounds after one checkpoint at most, so a shutdown never waits long behind it.
const COMPACTION_ROUNDS: usize = 32;

/// The embedded `Store`: an LSM tree in `<dir>/tree` behind the write-ahead log in
/// `<dir>/journal` (see the module doc).
pub struct EmbeddedStore {
    tree: AnyTree,
    /// The next sequence number of the tree.
    seqno: SequenceNumberCounter,
    /// Readers see what has a sequence number below this: moved only by whole commits.
    readable: SequenceNumberCounter,
    /// Held (shared) by every read for its whole length; see the module doc.
    readers: Arc<RwLock<()>>,
    log_dir: PathBuf,
    log: Mutex<Log>,
    maintenance: Mutex<Option<JoinHandle<()>>>,
    progress: Arc<Progress>,
    /// The first segment a checkpoint has not yet written out (what the next open replays from).
    first_unfolded: Arc<AtomicU64>,
    last_seq: AtomicU64,
    min_free_bytes: u64,
    /// A log segment larger than this at a sync is checkpointed and a new one started; it
    /// bounds both the memtable and what an open replays.
    log_segment_bytes: u64,
    /// Why the last commit or sync failed; cleared by the next sync that succeeds.
    failure: Mutex<Option<String>>,
    /// The first journal sequence number of each closed log segment (None: it has none), read
    /// once from the segment's head: a journal read starts at the segment that holds `from`
    /// instead of walking every segment before it.
    journal_starts: Mutex<BTreeMap<u64, Option<u64>>>,
    /// Held open for its `flock` while the store is open.
    _lock: File,
}

/// The appending side, under one lock so write sets reach the log and the memtable in one order.
struct Log {
    wal: Wal,
    /// Number of the last checkpoint asked of the maintenance thread.
    requested: u64,
    to_maintenance: Option<mpsc::Sender<Checkpoint>>,
}

/// A sealed memtable to write out: it holds the write sets of every segment before
/// `next_segment`, whose journal ends at `last_seq`.
struct Checkpoint {
    number: u64,
    next_segment: u64,
    last_seq: u64,
}

/// How far the maintenance thread has got, for `checkpoint` to wait on.
#[derive(Default)]
struct Progress {
    /// The last checkpoint handled, and its error if it failed.
    done: Mutex<(u64, Option<String>)>,
    changed: Condvar,
}

/// The checkpoint marker: the first segment not yet written out, and the last journal sequence
/// number at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) first_unfolded: u64,
    pub(crate) last_seq: u64,
}

impl Marker {
    const FILE: &'static str = "checkpoint";

    /// Reads the marker in `dir`; a store that never checkpointed starts at segment 1.
    fn read(dir: &Path) -> Result<Marker, StoreError> {
        let path = dir.join(Marker::FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Marker {
                    first_unfolded: 1,
                    last_seq: 0,
                });
            }
            Err(e) => return Err(StoreError::io(path.display().to_string(), e)),
        };
        let corrupt =
            || StoreError::corrupt(path.display().to_string(), "the checkpoint marker does not read");
        if bytes.len() != 20 || crc32fast::hash(&bytes[..16]).to_le_bytes() != bytes[16..] {
            return Err(corrupt());
        }
        let number = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Ok(Marker {
            first_unfolded: number(0),
            last_seq: number(8),
        })
    }

    /// Replaces the marker in `dir` atomically: a crash leaves the old one or the new one.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), StoreError> {
        let mut bytes = self.first_unfolded.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.last_seq.to_be_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        let temporary = dir.join("checkpoint.tmp");
        let io = |e| StoreError::io(temporary.display().to_string(), e);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(wal::FILE_MODE)
            .open(&temporary)
            .map_err(io)?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&temporary, dir.join(Marker::FILE)).map_err(io)?;
        wal::sync_dir(dir)
    }
}

pub(crate) fn full_key(keyspace: Keyspace, key: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(key.len() + 1);
    full.push(keyspace.prefix());
    full.extend_from_slice(key);
    full
}

/// Takes the store's `lock` file, or says another process has the store open.
fn lock_folder(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(wal::FILE_MODE)
        .open(&path)
        .map_err(|e| StoreError::io(path.display().to_string(), e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(StoreError::InUse {
            dir: dir.to_path_buf(),
        }),
        Err(e) => Err(StoreError::io(path.display().to_string(), e.into())),
    }
}

/// Opens the tree in `tree_dir` with the store's cache.
fn open_tree(tree_dir: &Path, seqno: &SequenceNumberCounter) -> Result<AnyTree, StoreError> {
    // The tree's own visible number: moved by its versions, never read at (see the module doc).
    let tree_visible = SequenceNumberCounter::default();
    lsm_tree::Config::new(tree_dir, seqno.clone(), tree_visible)
        .use_cache(Arc::new(lsm_tree::Cache::with_capacity_bytes(CACHE_BYTES)))
        .open()
        .map_err(|e| StoreError::Open {
            dir: tree_dir.to_path_buf(),
            source: Box::new(e),
        })
}

/// Inserts a write set into the memtable, each write under its own sequence number so a later
/// write of the same key wins; readers see none of them until `readable` passes the last, which
/// this returns.
fn insert(tree: &AnyTree, seqno: &SequenceNumberCounter, writes: &WriteSet) -> Option<u64> {
    let mut last = None;
    for (keyspace, key, value) in &writes.ops {
        let key = full_key(*keyspace, key);
        let this = seqno.next();
        match value {
            Some(value) => tree.insert(key, value.as_slice(), this),
            None => tree.remove(key, this),
        };
        last = Some(this);
    }
    last
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` with the default options.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        EmbeddedStore::open_with(dir, &StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`, replaying whatever the log holds past the last
    /// checkpoint.
    pub fn open_with(dir: &Path, options: &StoreOptions) -> Result<EmbeddedStore, StoreError> {
        let tree_dir = dir.join("tree");
        let log_dir = dir.join("journal");
        for private in [dir, &tree_dir, &log_dir] {
            wal::create_private_dir(private)?;
        }
        let lock = lock_folder(dir)?;
        let seqno = SequenceNumberCounter::default();
        let readable = SequenceNumberCounter::default();
        let tree = open_tree(&tree_dir, &seqno)?;
        let next_seqno = |tree: &AnyTree| tree.get_highest_persisted_seqno().map_or(0, |s| s + 1);
        seqno.set(next_seqno(&tree));
        super::sled_import::import_if_present(dir, &tree, &seqno)?;
        seqno.fetch_max(next_seqno(&tree));

        let marker = Marker::read(dir)?;
        let mut last_seq = marker.last_seq;
        let segments = wal::segments(&log_dir)?;
        let mut replayed = 0;
        for &segment in segments.iter().filter(|&&s| s >= marker.first_unfolded) {
            let last = Some(&segment) == segments.last();
            for record in wal::recover_segment(&log_dir, segment, last, options.damage)? {
                insert(&tree, &seqno, &record);
                if let Some((seq, _)) = record.journal.last() {
                    last_seq = last_seq.max(*seq);
                }
                replayed += 1;
            }
        }
        readable.set(seqno.get());
        let readers = Arc::new(RwLock::new(()));
        if replayed > 0 {
            tracing::info!(records = replayed, "replayed the log past the last checkpoint");
        }
        let current = segments.last().copied().unwrap_or(1).max(marker.first_unfolded);
        let progress = Arc::new(Progress::default());
        let first_unfolded = Arc::new(AtomicU64::new(marker.first_unfolded));
        let (to_maintenance, queue) = mpsc::channel();
        let maintenance = {
            let worker = Maintenance {
                tree: tree.clone(),
                readable: readable.clone(),
                readers: readers.clone(),
                dir: dir.to_path_buf(),
                progress: progress.clone(),
                first_unfolded: first_unfolded.clone(),
            };
            std::thread::Builder::new()
                .name("store-maintenance".into())
                .spawn(move || worker.run(queue))
                .map_err(|e| StoreError::io("cannot start the store maintenance thread", e))?
        };
        Ok(EmbeddedStore {
            tree,
            seqno,
            readable,
            readers,
            log: Mutex::new(Log {
                wal: Wal::open(&log_dir, current)?,
                requested: 0,
                to_maintenance: Some(to_maintenance),
            }),
            log_dir,
            maintenance: Mutex::new(Some(maintenance)),
            progress,
            first_unfolded,
            last_seq: AtomicU64::new(last_seq),
            min_free_bytes: options.min_free_bytes,
            log_segment_bytes: options.log_segment_bytes,
            failure: Mutex::new(None),
            journal_starts: Mutex::new(BTreeMap::new()),
            _lock: lock,
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

    /// The first journal sequence number of `segment`, remembered once the segment is closed
    /// (the one being written, `current`, may still get its first).
    fn journal_start(&self, segment: u64, current: u64) -> Result<Option<u64>, StoreError> {
        let mut starts = self.journal_starts.lock().map_err(|_| StoreError::Poisoned)?;
        if let Some(&known) = starts.get(&segment) {
            return Ok(known);
        }
        let first = wal::first_journal_seq(&self.log_dir, segment)?;
        if segment < current {
            starts.insert(segment, first);
        }
        Ok(first)
    }

    fn lock_log(&self) -> Result<std::sync::MutexGuard<'_, Log>, StoreError> {
        self.log.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Closes the current segment and seals the memtable with it (both under the log lock, so
    /// the sealed memtable holds exactly the closed segments' write sets), and hands it to the
    /// maintenance thread. Returns the checkpoint's number.
    fn start_checkpoint(&self, log: &mut Log) -> Result<u64, StoreError> {
        // The segment being left holds journal entries that must be durable too: rotate syncs it.
        log.wal.rotate()?;
        self.tree.rotate_memtable();
        log.requested += 1;
        let checkpoint = Checkpoint {
            number: log.requested,
            next_segment: log.wal.segment(),
            last_seq: self.last_seq.load(Ordering::SeqCst),
        };
        log.to_maintenance
            .as_ref()
            .ok_or(StoreError::Closing)?
            .send(checkpoint)
            .map_err(|_| StoreError::MaintenanceStopped)?;
        Ok(log.requested)
    }
}

/// The maintenance thread's side: writes sealed memtables out, records checkpoints, compacts.
struct Maintenance {
    tree: AnyTree,
    readable: SequenceNumberCounter,
    readers: Arc<RwLock<()>>,
    dir: PathBuf,
    progress: Arc<Progress>,
    first_unfolded: Arc<AtomicU64>,
}

impl Maintenance {
    fn run(self, queue: mpsc::Receiver<Checkpoint>) {
        for checkpoint in queue {
            let outcome = self.write_out(&checkpoint);
            if let Err(e) = &outcome {
                // Nothing is lost: the sealed memtable stays readable and is written out with
                // the next checkpoint, and until then an open replays from the previous one.
                tracing::error!(error = %e, "checkpoint failed");
            }
            if let Ok(mut done) = self.progress.done.lock() {
                *done = (checkpoint.number, outcome.err().map(|e| e.to_string()));
            }
            self.progress.changed.notify_all();
            self.compact();
        }
    }

    /// Writes every sealed memtable out as tables (the tree fsyncs them and its manifest), then
    /// moves the marker past the segments they came from.
    fn write_out(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        {
            let lock = self.tree.get_flush_lock();
            // Threshold 0: the flush keeps every version; compaction drops the shadowed ones.
            self.tree.flush(&lock, 0)?;
        }
        Marker {
            first_unfolded: checkpoint.next_segment,
            last_seq: checkpoint.last_seq,
        }
        .write(&self.dir)?;
        self.first_unfolded
            .store(checkpoint.next_segment, Ordering::SeqCst);
        Ok(())
    }

    /// Compacts until the strategy finds nothing to do (or for a bounded number of rounds).
    fn compact(&self) {
        let strategy: Arc<dyn lsm_tree::compaction::CompactionStrategy> =
            Arc::new(lsm_tree::compaction::Leveled::default());
        for _ in 0..COMPACTION_ROUNDS {
            let before = self.tree.current_version().id();
            // With no read in flight, every read from now on is at this number or above.
            let watermark = match self.readers.write() {
                Ok(_no_reads) => self.readable.get(),
                Err(_) => return,
            };
            if let Err(e) = self.tree.compact(strategy.clone(), watermark) {
                tracing::warn!(error = %e, "compaction failed; it is tried again after the next checkpoint");
                return;
            }
            if self.tree.current_version().id() == before {
                return;
            }
        }
    }
}

/// Bytes an unprivileged process may still write on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64, StoreError> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| StoreError::io(dir.display().to_string(), e.into()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if let Ok(mut log) = self.log.lock() {
            log.to_maintenance = None;
        }
        if let Some(maintenance) = self.maintenance.lock().ok().and_then(|mut m| m.take()) {
            let _ = maintenance.join();
        }
    }
}

impl Reader for EmbeddedStore {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let _reading = self.readers.read().map_err(|_| StoreError::Poisoned)?;
        let value = self.tree.get(full_key(keyspace, key), self.readable.get())?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan_prefix(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        use lsm_tree::Guard as _;
        let mut found = vec![];
        if limit == 0 {
            return Ok(found);
        }
        let _reading = self.readers.read().map_err(|_| StoreError::Poisoned)?;
        for entry in self
            .tree
            .prefix(full_key(keyspace, prefix), self.readable.get(), None)
        {
            let (key, value) = entry.into_inner()?;
            found.push((key[1..].to_vec(), value.to_vec()));
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }
}

impl Store for EmbeddedStore {
    fn scan_prefix_after(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        use lsm_tree::Guard as _;
        use std::ops::Bound;
        let mut found = vec![];
        if limit == 0 {
            return Ok(found);
        }
        let full_prefix = full_key(keyspace, prefix);
        let from = Bound::Excluded(full_key(keyspace, after));
        let _reading = self.readers.read().map_err(|_| StoreError::Poisoned)?;
        for entry in self
            .tree
            .range::<Vec<u8>, _>((from, Bound::Unbounded), self.readable.get(), None)
        {
            let (key, value) = entry.into_inner()?;
            if !key.starts_with(&full_prefix) {
                break;
            }
            found.push((key[1..].to_vec(), value.to_vec()));
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }

    fn commit(&self, writes: WriteSet) -> Result<(), StoreError> {
        let appended = self
            .check_free_space()
            .and_then(|()| self.lock_log())
            .and_then(|mut log| log.wal.append(&writes).map(|()| log));
        let log = match appended {
            Ok(log) => log,
            Err(e) => {
                self.note_failure(Some(&e));
                return Err(e);
            }
        };
        if let Some(last) = insert(&self.tree, &self.seqno, &writes) {
            self.readable.fetch_max(last + 1);
        }
        if let Some((seq, _)) = writes.journal.last() {
            self.last_seq.fetch_max(*seq, Ordering::SeqCst);
        }
        drop(log);
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        // Not under the lock: commits go on appending while this sync waits on the disk.
        let (file, segment, upto) = self.lock_log()?.wal.sync_target();
        let synced = wal::sync_file(&file);
        let done = self.lock_log().and_then(|mut log| {
            log.wal.after_sync(segment, upto, synced)?;
            if log.wal.len() > self.log_segment_bytes {
                self.start_checkpoint(&mut log)?;
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
        let number = {
            let mut log = self.lock_log()?;
            if log.wal.len() == 0 {
                return Ok(());
            }
            self.start_checkpoint(&mut log)?
        };
        let mut done = self.progress.done.lock().map_err(|_| StoreError::Poisoned)?;
        while done.0 < number {
            done = self
                .progress
                .changed
                .wait(done)
                .map_err(|_| StoreError::Poisoned)?;
        }
        match &done.1 {
            Some(error) if done.0 == number => Err(StoreError::other(format!("checkpoint failed: {error}"))),
            _ => Ok(()),
        }
    }

    fn journal(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let segments = wal::segments(&self.log_dir)?;
        let current = self.lock_log()?.wal.segment();
        // The segment to start at: the last whose first entry is at or before `from`.
        let mut start = 0;
        for (i, &segment) in segments.iter().enumerate() {
            match self.journal_start(segment, current)? {
                Some(first) if first <= from => start = i,
                Some(_) => break,
                None => {}
            }
        }
        let mut found = vec![];
        for &segment in &segments[start.min(segments.len())..] {
            wal::read_journal(&self.log_dir, segment, from, limit, &mut found)?;
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }

    fn journal_last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::SeqCst)
    }

    fn drop_journal_before(&self, cutoff: std::time::SystemTime) -> Result<(usize, u64), StoreError> {
        // Only segments a checkpoint has written out: the store no longer needs them to open.
        let first_unfolded = self.first_unfolded.load(Ordering::SeqCst);
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

    use crate::Write;

    fn put(keyspace: Keyspace, key: &[u8], value: &[u8]) -> Write {
        (keyspace, key.to_vec(), Some(value.to_vec()))
    }

    #[test]
    fn retention_drops_old_folded_segments_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
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
            let store = EmbeddedStore::open(dir.path()).unwrap();
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
            // Dropped without a checkpoint: no table was written, the log has it all.
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
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
            let store = EmbeddedStore::open(dir.path()).unwrap();
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
        let store = EmbeddedStore::open(dir.path()).unwrap();
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
            let store = EmbeddedStore::open(dir.path()).unwrap();
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
            let store = EmbeddedStore::open(dir.path()).unwrap();
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
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Keyspace::Patient, b"after").unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(store.journal(0, 10).unwrap().len(), 2);
    }

    #[test]
    fn reads_see_each_commit_whole_over_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
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
            // Over keys already written out as tables, the memtable's answer wins.
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
        let store = EmbeddedStore::open(dir.path()).unwrap();
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

    #[test]
    fn scan_prefix_after_starts_past_a_key_and_stays_inside_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut writes = WriteSet::default();
        for key in [&b"q\x001"[..], b"q\x002", b"q\x003", b"q\x004", b"r\x005"] {
            writes.ops.push(put(Keyspace::Outbox, key, b"v"));
        }
        writes.ops.push(put(Keyspace::DeadLetter, b"q\x009", b"v"));
        store.commit(writes).unwrap();
        // Taken and deleted, as a queue does: the tombstones are behind the reader.
        store
            .commit(WriteSet {
                ops: vec![
                    (Keyspace::Outbox, b"q\x001".to_vec(), None),
                    (Keyspace::Outbox, b"q\x002".to_vec(), None),
                ],
                journal: vec![],
            })
            .unwrap();
        let keys = |after: &[u8], limit| -> Vec<Vec<u8>> {
            store
                .scan_prefix_after(Keyspace::Outbox, b"q\x00", after, limit)
                .unwrap()
                .into_iter()
                .map(|(key, _)| key)
                .collect()
        };
        assert_eq!(
            keys(b"q\x00", 10),
            [b"q\x003".to_vec(), b"q\x004".to_vec()],
            "from the start"
        );
        assert_eq!(keys(b"q\x002", 10), [b"q\x003".to_vec(), b"q\x004".to_vec()]);
        assert_eq!(keys(b"q\x003", 10), [b"q\x004".to_vec()]);
        assert_eq!(keys(b"q\x003", 0), Vec::<Vec<u8>>::new());
        assert!(
            keys(b"q\x004", 10).is_empty(),
            "nothing of another prefix or keyspace"
        );
    }

    #[test]
    fn a_second_open_is_refused_while_the_store_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let refused = EmbeddedStore::open(dir.path())
            .err()
            .expect("a second open is refused");
        assert!(matches!(refused, StoreError::InUse { .. }), "{refused}");
        assert!(
            refused.to_string().contains("in use by another process"),
            "{refused}"
        );
        drop(store);
        EmbeddedStore::open(dir.path()).expect("free again once the first is closed");
    }

    #[test]
    fn a_checkpoint_moves_the_marker_and_leaves_nothing_to_replay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            for seq in 1..=100u64 {
                store
                    .commit(WriteSet {
                        ops: vec![put(Keyspace::Patient, format!("p{seq:03}").as_bytes(), b"v")],
                        journal: vec![(seq, b"e".to_vec())],
                    })
                    .unwrap();
            }
            store.checkpoint().unwrap();
            assert_eq!(
                Marker::read(dir.path()).unwrap(),
                Marker {
                    first_unfolded: 2,
                    last_seq: 100
                }
            );
        }
        // Every segment the marker covers could go: the tables alone hold the data.
        std::fs::remove_file(wal::segment_path(&dir.path().join("journal"), 1)).unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            store
                .scan_prefix(Keyspace::Patient, b"p", usize::MAX)
                .unwrap()
                .len(),
            100
        );
        assert_eq!(store.journal_last_seq(), 100);
    }

    #[test]
    fn a_journal_read_from_the_middle_of_many_segments_gets_exactly_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            log_segment_bytes: 2048,
            ..StoreOptions::default()
        };
        let store = EmbeddedStore::open_with(dir.path(), &options).unwrap();
        let mut seq = 0u64;
        for round in 0..120u64 {
            // Some records carry no journal entry (bookkeeping), some carry three.
            let entries = (round % 4) as usize;
            let journal = (0..entries)
                .map(|_| {
                    seq += 1;
                    (seq, format!("entry {seq} {}", "j".repeat(100)).into_bytes())
                })
                .collect();
            store
                .commit(WriteSet {
                    ops: vec![put(Keyspace::Meta, format!("m{round}").as_bytes(), &[7; 300])],
                    journal,
                })
                .unwrap();
            store.sync().unwrap();
        }
        assert!(wal::segments(&dir.path().join("journal")).unwrap().len() > 10);
        for from in [0, 1, 2, 57, 99, seq - 1, seq, seq + 1] {
            for limit in [1, 3, 1000] {
                let read: Vec<u64> = store
                    .journal(from, limit)
                    .unwrap()
                    .iter()
                    .map(|(s, _)| *s)
                    .collect();
                let expected: Vec<u64> = (from.max(1)..=seq).take(limit).collect();
                assert_eq!(read, expected, "from {from}, limit {limit}");
            }
        }
        let (at, bytes) = store.journal(57, 1).unwrap().remove(0);
        assert_eq!(at, 57);
        assert!(String::from_utf8(bytes).unwrap().starts_with("entry 57 "));
    }

    #[test]
    fn small_segments_checkpoint_as_they_fill_and_everything_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let journal_dir = dir.path().join("journal");
        let options = StoreOptions {
            log_segment_bytes: 4096,
            ..StoreOptions::default()
        };
        // About 500 bytes a record: a checkpoint every eight or nine commits.
        let value = |seq: u64| format!("{seq} {}", "v".repeat(200)).into_bytes();
        let patient = |seq: u64| format!("p{:02}", seq % 40);
        {
            let store = EmbeddedStore::open_with(dir.path(), &options).unwrap();
            for seq in 1..=200u64 {
                store
                    .commit(WriteSet {
                        ops: vec![
                            put(Keyspace::Patient, patient(seq).as_bytes(), &value(seq)),
                            put(Keyspace::Dedupe, format!("d{seq:03}").as_bytes(), &value(seq)),
                        ],
                        journal: vec![(seq, format!("entry {seq}").into_bytes())],
                    })
                    .unwrap();
                store.sync().unwrap();
            }
            // Below the segment size: this one stays in the log, for the next open to replay.
            store
                .commit(WriteSet {
                    ops: vec![put(Keyspace::Meta, b"last", b"201")],
                    journal: vec![(201, b"entry 201".to_vec())],
                })
                .unwrap();
            store.sync().unwrap();
            // Dropped without a checkpoint; the drop waits for the ones already started.
        }
        let segments = wal::segments(&journal_dir).unwrap();
        assert!(segments.len() >= 20, "segments: {segments:?}");
        let marker = Marker::read(dir.path()).unwrap();
        assert!(marker.first_unfolded >= 20, "{marker:?}");
        assert_eq!(
            Some(&marker.first_unfolded),
            segments.last(),
            "only the last is unfolded"
        );
        assert!(
            std::fs::read_dir(dir.path().join("tree/tables")).unwrap().count() > 0,
            "the checkpoints wrote tables"
        );

        let read_all = |store: &EmbeddedStore| {
            for seq in 1..=200u64 {
                assert_eq!(
                    store
                        .get(Keyspace::Dedupe, format!("d{seq:03}").as_bytes())
                        .unwrap(),
                    Some(value(seq)),
                    "d{seq}"
                );
            }
            // Each patient key holds its last write (written 161 to 200).
            for seq in 161..=200u64 {
                assert_eq!(
                    store.get(Keyspace::Patient, patient(seq).as_bytes()).unwrap(),
                    Some(value(seq)),
                    "{}",
                    patient(seq)
                );
            }
            assert_eq!(store.scan_prefix(Keyspace::Patient, b"", 100).unwrap().len(), 40);
            assert_eq!(store.get(Keyspace::Meta, b"last").unwrap(), Some(b"201".to_vec()));
            assert_eq!(store.journal_last_seq(), 201);
        };
        let store = EmbeddedStore::open_with(dir.path(), &options).unwrap();
        read_all(&store);
        let seqs: Vec<u64> = store.journal(0, 1000).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=201).collect::<Vec<u64>>(), "the journal is whole");

        // A cutoff in the future: every folded segment goes, the unfolded one stays.
        let future = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        let (dropped, bytes) = store.drop_journal_before(future).unwrap();
        assert_eq!(dropped as u64, marker.first_unfolded - 1);
        assert!(bytes > 0);
        assert_eq!(wal::segments(&journal_dir).unwrap(), vec![marker.first_unfolded]);
        let kept: Vec<u64> = store.journal(0, 1000).unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(kept.last(), Some(&201));
        assert!(kept.len() < 20, "only the unfolded segment's entries: {kept:?}");
        read_all(&store);
        drop(store);
        // And the tables hold it alone, across another open.
        let store = EmbeddedStore::open_with(dir.path(), &options).unwrap();
        read_all(&store);
    }

    #[test]
    fn a_damaged_marker_is_refused_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store
                .commit(WriteSet {
                    ops: vec![put(Keyspace::Patient, b"p", b"v")],
                    journal: vec![],
                })
                .unwrap();
            store.checkpoint().unwrap();
        }
        let path = dir.path().join("checkpoint");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let refused = EmbeddedStore::open(dir.path()).err().expect("refused");
        assert!(
            refused.to_string().contains("checkpoint marker does not read"),
            "{refused}"
        );
    }

    /// Readers on other threads while commits, checkpoints (flushes) and compactions go on: a
    /// scan, read at one sequence number, sees every write set whole (its three keys always
    /// equal), and no read ever fails.
    #[test]
    fn reads_see_whole_write_sets_through_flushes_and_compactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (store, done) = (store.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut scans = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        let found = store.scan_prefix(Keyspace::Patient, b"k", 10).unwrap();
                        let values: Vec<&Vec<u8>> = found.iter().map(|(_, v)| v).collect();
                        assert!(
                            values.windows(2).all(|w| w[0] == w[1]),
                            "a write set seen in part: {values:?}"
                        );
                        store.get(Keyspace::Patient, b"k1").unwrap();
                        scans += 1;
                    }
                    scans
                })
            })
            .collect();
        for round in 0..3000u64 {
            let value = round.to_be_bytes();
            store
                .commit(WriteSet {
                    ops: [b"k1", b"k2", b"k3"]
                        .map(|k| put(Keyspace::Patient, k, &value))
                        .to_vec(),
                    journal: vec![],
                })
                .unwrap();
            if round % 60 == 59 {
                // Each checkpoint flushes a memtable; every few, the tables are compacted.
                store.checkpoint().unwrap();
            }
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().expect("no read failed") > 0);
        }
        assert_eq!(
            store.get(Keyspace::Patient, b"k3").unwrap(),
            Some(2999u64.to_be_bytes().to_vec())
        );
    }
}
