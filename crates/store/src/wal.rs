//! The write-ahead log: where a commit becomes durable, and where the journal is kept.
//!
//! Each commit appends one record (the store writes and the journal entries of a batch) to the
//! current segment file; one `fdatasync` of that file makes the whole batch durable. The store's
//! tables are updated in memory at the same time and flushed only at checkpoints, so a commit
//! costs one small append and one sync instead of a flush of the tables plus a sync (measured
//! with the first backend: its flush ~136 us + fdatasync ~68 us per commit, against ~90-130 us
//! for an append + fdatasync here). On open, the records after the last checkpoint are applied
//! again (they hold whole values, so applying one twice changes nothing); a torn record at the
//! tail, from a crash mid-write, was never acknowledged and is cut off.
//!
//! Segments are preallocated: space ahead of the last record is reserved in chunks
//! (`PREALLOC_CHUNK`) with `fallocate`, which grows the file and reads back as zeros, and records
//! are written at their offset inside it. An append then changes no file size, so `fdatasync`
//! need not write the inode too (measured: 114 us p50 against 168 us on a growing file). The end
//! of a segment is therefore the end of its last intact record, not the file size: a tail of
//! zeros after it is clean, never damage, and a zero-length record cannot decode, so zeros never
//! read as a record. Where `fallocate` fails (a full disk, a file system without it) the record is
//! written past the end and the file grows, as without preallocation. A segment left behind by
//! `rotate` is cut back to its last record, so closed segments hold no zeros (but one left by a
//! crash before that cut still has its zero tail, and reads the same).
//!
//! The segments are also the journal (`Store::journal` reads them), so they are not deleted when
//! a checkpoint has folded them into the store's tables. They go only by journal retention
//! (`drop_journal_before`, run by the `journal-retention` job with its `keep_days`): whole
//! segments, oldest first, that a checkpoint has already folded into the tables (the next open
//! does not replay them) and that were last written before the cutoff; never the segment being
//! written. What it drops is gone from journal reads; the store's data stays.
//!
//! A failed write never leaves a hole that later records sit behind (a full disk once did: the
//! partial record was taken for a torn tail on restart and the acknowledged records after it were
//! cut). A failed append cuts the file back to its last good offset before anything else is
//! written. A failed `fdatasync` is never retried on the same file (after one the kernel may have
//! dropped the dirty pages and report success next time: "fsyncgate"): the segment is cut back
//! to what was last synced, and the records appended since are written again into a fresh segment
//! and synced there. Until that succeeds nothing else is appended. Recovery refuses a log whose
//! damage is followed by intact records, rather than cutting acknowledged records.
//!
//! Files are created 0600 and folders 0700: the journal holds patient data.
//!
//! Record: `u32 payload length | u32 crc32 of payload | payload`, little-endian. Payload:
//! `u32 op count`, each op `u8 keyspace | u32 key length | key | u8 0 (delete) or 1 | [u32 value
//! length | value]`; then `u32 journal count`, each `u64 seq | u32 length | entry bytes`. A
//! segment is records back to back, then possibly zeros up to the end of the file.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Keyspace, StoreError, WriteSet};

/// A record larger than this is corrupt, not real.
const MAX_RECORD: usize = 1 << 30;

/// Records appended but not yet synced are kept in memory (to be written again if their sync
/// fails); past this many bytes an append syncs at once instead of letting them grow.
const MAX_UNSYNCED_BYTES: usize = 16 * 1024 * 1024;

/// How far ahead of the last record a segment is preallocated at a time. Small enough that a
/// chunk fits beside the rest on a small disk (the engine's tests run on a 30 MB tmpfs that fills
/// and frees; a whole segment at once would not fit) and that a crash leaves at most this
/// many zeros to read past; large enough that the file size, and so the inode that `fdatasync`
/// must then write, changes only once per 4 MiB of records (thousands of commits).
const PREALLOC_CHUNK: u64 = 4 * 1024 * 1024;

/// A failed preallocation is reported once at warn, then at debug: on a file system without
/// `fallocate` it fails for every chunk, and nothing is lost by it.
static PREALLOC_FAILED: AtomicBool = AtomicBool::new(false);

/// Mode of every file the store creates: the owner only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder the store creates.
pub const DIR_MODE: u32 = 0o700;

pub struct Wal {
    dir: PathBuf,
    segment: u64,
    /// Shared so a sync can run without holding up appends (see `file`).
    file: Arc<File>,
    /// Where the last record ends, and the next one is written: not the file size, which
    /// includes the preallocated zeros past it.
    len: u64,
    /// How far the file is preallocated: an append that would pass it preallocates the next
    /// chunk first. After a failed preallocation it is moved on anyway, so the next attempt
    /// comes a chunk later instead of at every append.
    prealloc_end: u64,
    /// The offset up to which a sync of this segment has succeeded.
    synced: u64,
    /// The records appended after `synced`, each with the offset it ends at.
    unsynced: VecDeque<(u64, Vec<u8>)>,
    /// A sync failed, or a failed append could not be cut back: this file's tail past `synced`
    /// is not trusted, and `unsynced` must be written into a new segment before anything else.
    untrusted: bool,
}

fn io(context: &str, e: std::io::Error) -> StoreError {
    StoreError::io(context, e)
}

/// Creates `dir` (and its parents) owner-only, and makes an existing one owner-only too.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| io(&dir.display().to_string(), e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| io(&dir.display().to_string(), e))
}

impl Wal {
    /// Opens the log in `dir` for appending to `segment` (created when missing), after its last
    /// intact record. Recovery (`recover_segment`) has already cut a torn tail off it: anything
    /// but zeros after the last record is refused here rather than written over.
    pub fn open(dir: &Path, segment: u64) -> Result<Wal, StoreError> {
        create_private_dir(dir)?;
        let path = segment_path(dir, segment);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| io(&path.display().to_string(), e))?;
        let mut bytes = vec![];
        file.read_to_end(&mut bytes)
            .map_err(|e| io(&path.display().to_string(), e))?;
        let end = decode_all(&bytes).1;
        if !is_zero_tail(&bytes[end..]) {
            let found = format!(
                "bytes that are neither records nor preallocated zeros follow the last record, \
                 at byte {end} of {}; recovery should have cut or refused them",
                bytes.len()
            );
            return Err(io(
                &path.display().to_string(),
                std::io::Error::new(std::io::ErrorKind::InvalidData, found),
            ));
        }
        sync_dir(dir)?;
        Ok(Wal::at(dir, segment, file, end as u64, bytes.len() as u64))
    }

    /// Creates `segment` empty, cutting whatever an earlier attempt left in it.
    fn create(dir: &Path, segment: u64) -> Result<Wal, StoreError> {
        create_private_dir(dir)?;
        let path = segment_path(dir, segment);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| io(&path.display().to_string(), e))?;
        sync_dir(dir)?;
        Ok(Wal::at(dir, segment, file, 0, 0))
    }

    fn at(dir: &Path, segment: u64, file: File, len: u64, file_size: u64) -> Wal {
        Wal {
            dir: dir.to_path_buf(),
            segment,
            file: Arc::new(file),
            len,
            prealloc_end: file_size,
            synced: len,
            unsynced: VecDeque::new(),
            untrusted: false,
        }
    }

    pub fn segment(&self) -> u64 {
        self.segment
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends one record (not yet durable: see `sync`). On failure the file is as it was.
    pub fn append(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        self.restore()?;
        let record = encode(writes);
        if let Err(e) = self.write_record(&record) {
            // Part of the record may be in the file: cut it off (with the preallocated tail), or
            // later records would sit behind a damaged one.
            self.prealloc_end = self.len;
            if let Err(cut) = self.file.set_len(self.len) {
                tracing::error!(error = %cut, segment = self.segment, "cannot cut a failed append off the log");
                self.untrusted = true;
            }
            return Err(io("wal append", e));
        }
        self.unsynced.push_back((self.len, record));
        if self.len - self.synced > MAX_UNSYNCED_BYTES as u64 {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes `record` at `len` (preallocating the next chunk first when it would pass the
    /// preallocated end) and moves `len` past it.
    fn write_record(&mut self, record: &[u8]) -> std::io::Result<()> {
        let end = self.len + record.len() as u64;
        if end > self.prealloc_end {
            self.preallocate(end);
        }
        self.file.write_all_at(record, self.len)?;
        self.len = end;
        Ok(())
    }

    /// Preallocates from `len` to the chunk boundary past `end`. A failure costs only speed: the
    /// write then goes past the end of the file, which grows as it would without this.
    fn preallocate(&mut self, end: u64) {
        let upto = end.div_ceil(PREALLOC_CHUNK) * PREALLOC_CHUNK;
        // Default mode: the file size grows to `upto` and the blocks are allocated, reading as
        // zeros. After that the next `fdatasync` writes the new size too, once. (ext4 and xfs
        // allocate them as unwritten extents: a first write into one still marks it written.)
        let reserved = rustix::fs::fallocate(
            &*self.file,
            rustix::fs::FallocateFlags::empty(),
            self.len,
            upto - self.len,
        );
        if let Err(e) = reserved {
            let e = std::io::Error::from(e);
            if PREALLOC_FAILED.swap(true, Ordering::Relaxed) {
                tracing::debug!(error = %e, segment = self.segment, "cannot preallocate the log");
            } else {
                tracing::warn!(
                    error = %e,
                    segment = self.segment,
                    "cannot preallocate the log; writing past its end instead (slower syncs, \
                     nothing lost; later failures are logged at debug)"
                );
            }
        }
        self.prealloc_end = upto;
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        let (segment, upto) = (self.segment, self.len);
        let synced = sync_file(&self.file);
        self.after_sync(segment, upto, synced)
    }

    /// What to sync without holding the log: the current file, its segment and how far it goes.
    /// Records appended meanwhile may or may not be covered; pass the three and the outcome of
    /// the sync to `after_sync`.
    pub fn sync_target(&self) -> (Arc<File>, u64, u64) {
        (self.file.clone(), self.segment, self.len)
    }

    /// Records the outcome of a sync of `segment` up to `upto`. A failed sync is answered by
    /// writing the records it should have covered into a fresh segment: Ok means every record
    /// appended so far is durable, one way or the other.
    pub fn after_sync(
        &mut self,
        segment: u64,
        upto: u64,
        synced: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if segment != self.segment {
            // The log has moved on since; it only moves on once the old segment is synced.
            return Ok(());
        }
        match synced {
            Ok(()) if !self.untrusted => {
                self.synced = self.synced.max(upto);
                while self.unsynced.front().is_some_and(|(end, _)| *end <= upto) {
                    self.unsynced.pop_front();
                }
                Ok(())
            }
            Ok(()) => self.restore(),
            Err(e) => {
                tracing::error!(error = %e, segment, "log sync failed; writing its records again in a new segment");
                self.untrusted = true;
                self.restore()
            }
        }
    }

    /// When the current file's tail is not trusted: cuts it back to what was synced, starts a
    /// new segment, writes the unsynced records there and syncs it. Nothing else is appended
    /// until this succeeds.
    fn restore(&mut self) -> Result<(), StoreError> {
        if !self.untrusted {
            return Ok(());
        }
        self.file
            .set_len(self.synced)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| io("wal: cutting an unsynced tail", e))?;
        // Created empty: a segment left by an earlier failed attempt holds nothing trusted either.
        let mut next = Wal::create(&self.dir, self.segment + 1)?;
        let written = self
            .unsynced
            .iter()
            .try_for_each(|(_, record)| next.write_record(record))
            .map_err(|e| io("wal: writing unsynced records again", e))
            .and_then(|()| sync_file(&next.file));
        if let Err(e) = written {
            // Moved on all the same: the next attempt cuts this segment back and starts another.
            *self = Wal {
                synced: 0,
                unsynced: std::mem::take(&mut self.unsynced),
                untrusted: true,
                ..next
            };
            return Err(e);
        }
        tracing::info!(
            segment = next.segment,
            records = self.unsynced.len(),
            "unsynced records written again and synced"
        );
        next.synced = next.len;
        *self = next;
        Ok(())
    }

    /// Continues in a new segment; the current one must be synced first.
    pub fn rotate(&mut self) -> Result<(), StoreError> {
        self.sync()?;
        // A closed segment keeps no preallocated zeros. Only tidiness: they read as the end
        // anyway, so a failure (or a crash before this) loses nothing and is no reason to stop.
        if let Err(e) = self.file.set_len(self.len) {
            tracing::warn!(
                error = %e,
                segment = self.segment,
                "cannot trim the preallocated tail of the log"
            );
        }
        *self = Wal::open(&self.dir, self.segment + 1)?;
        Ok(())
    }
}

pub fn sync_file(file: &File) -> Result<(), StoreError> {
    file.sync_data().map_err(|e| io("wal sync", e))
}

pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:012}.wal"))
}

/// The segment numbers in `dir`, in order.
pub fn segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut found = vec![];
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io(&dir.display().to_string(), e)),
    };
    for entry in entries {
        let name = entry.map_err(|e| io("wal", e))?.file_name();
        if let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse().ok())
        {
            found.push(number);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Reads every whole record of a segment, in order, up to the first damaged one.
#[cfg(test)]
pub fn read_segment(dir: &Path, segment: u64) -> Result<Vec<WriteSet>, StoreError> {
    Ok(decode_all(&read_file(&segment_path(dir, segment))?).0)
}

fn read_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![];
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io(&path.display().to_string(), e))?;
    Ok(bytes)
}

/// Adds to `found` the journal entries of a segment's whole records with a sequence number of
/// at least `from`, until `found` holds `limit`. The records' writes are stepped over, not
/// copied: a journal read costs one file read and a walk of its records.
pub fn read_journal(
    dir: &Path,
    segment: u64,
    from: u64,
    limit: usize,
    found: &mut Vec<(u64, Vec<u8>)>,
) -> Result<(), StoreError> {
    let bytes = read_file(&segment_path(dir, segment))?;
    let mut at = 0;
    while found.len() < limit {
        let Some((payload, used)) = intact_payload(&bytes[at..]) else {
            break;
        };
        at += used;
        let Some(entries) = journal_of(payload) else {
            break;
        };
        for (seq, entry) in entries {
            if seq >= from && found.len() < limit {
                found.push((seq, entry.to_vec()));
            }
        }
    }
    Ok(())
}

/// The sequence number of a segment's first journal entry (None: it has none), reading its
/// records one at a time from the start, so only the head of the file is read.
pub fn first_journal_seq(dir: &Path, segment: u64) -> Result<Option<u64>, StoreError> {
    let path = segment_path(dir, segment);
    let io_error = |e| io(&path.display().to_string(), e);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    let mut at = 0u64;
    let mut record = vec![];
    loop {
        let mut header = [0u8; 8];
        if file.read_exact_at(&mut header, at).is_err() {
            return Ok(None);
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        if !(8..=MAX_RECORD).contains(&len) {
            return Ok(None);
        }
        record.resize(8 + len, 0);
        if file.read_exact_at(&mut record, at).is_err() {
            return Ok(None);
        }
        let Some((payload, used)) = intact_payload(&record) else {
            return Ok(None);
        };
        match journal_of(payload) {
            Some(entries) if !entries.is_empty() => return Ok(Some(entries[0].0)),
            Some(_) => at += used as u64,
            None => return Ok(None),
        }
    }
}

/// The payload of the intact record at the start of `bytes`, and the bytes the record spans.
fn intact_payload(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let mut header = Cursor { bytes, at: 0 };
    let len = header.u32()? as usize;
    let crc = header.u32()?;
    if !(8..=MAX_RECORD).contains(&len) {
        return None;
    }
    let payload = bytes.get(8..8 + len)?;
    (crc32fast::hash(payload) == crc).then_some((payload, 8 + len))
}

/// The journal entries of a record's payload, its writes stepped over.
fn journal_of(payload: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut cursor = Cursor {
        bytes: payload,
        at: 0,
    };
    for _ in 0..cursor.u32()? {
        cursor.u8()?;
        cursor.bytes()?;
        match cursor.u8()? {
            0 => {}
            1 => {
                cursor.bytes()?;
            }
            _ => return None,
        }
    }
    let mut entries = vec![];
    for _ in 0..cursor.u32()? {
        let seq = cursor.u64()?;
        entries.push((seq, cursor.bytes()?));
    }
    (cursor.at == payload.len()).then_some(entries)
}

/// What recovery does with a damaged record that intact records follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Damage {
    /// Refuse to open: the records after it may have been acknowledged.
    #[default]
    Refuse,
    /// Cut the log at the damage (the operator knows the records after it were never
    /// acknowledged, e.g. after a power loss).
    Cut,
}

/// Reads a segment for recovery. Zeros after the last intact record are the preallocated rest of
/// the file (or of one a crash left before `rotate` trimmed it): clean, in any segment. A damaged
/// tail of the last segment, with nothing intact after it (zeros aside), is a record torn by a
/// crash: it was never acknowledged and is cut off the file, zeros and all. Damage that intact
/// records follow, or damage in a segment that later segments follow, is refused (unless `damage`
/// says to cut), because cutting there would drop acknowledged records.
pub fn recover_segment(
    dir: &Path,
    segment: u64,
    last: bool,
    damage: Damage,
) -> Result<Vec<WriteSet>, StoreError> {
    let path = segment_path(dir, segment);
    let bytes = read_file(&path)?;
    let (records, valid) = decode_all(&bytes);
    if is_zero_tail(&bytes[valid..]) {
        return Ok(records);
    }
    let intact_after = count_intact_after(&bytes[valid..]);
    if damage == Damage::Refuse && (!last || intact_after > 0) {
        return Err(StoreError::DamagedLog {
            segment: path,
            at: valid,
            len: bytes.len(),
            intact_after,
        });
    }
    tracing::warn!(
        segment = %path.display(),
        kept = valid,
        cut = bytes.len() - valid,
        intact_records_cut = intact_after,
        "cutting a torn record off the end of the log"
    );
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| io(&path.display().to_string(), e))?;
    file.set_len(valid as u64).map_err(|e| io("wal repair", e))?;
    file.sync_all().map_err(|e| io("wal repair", e))?;
    Ok(records)
}

/// Whether what follows the last record is only preallocated space (or nothing).
fn is_zero_tail(tail: &[u8]) -> bool {
    tail.iter().all(|&b| b == 0)
}

/// How many intact records start somewhere in `damaged` (which begins with a damaged one): a
/// record is found at any offset, since a damaged one says nothing reliable about its length.
fn count_intact_after(damaged: &[u8]) -> usize {
    let mut found = 0;
    let mut at = 1;
    while at + 8 <= damaged.len() {
        // Megabytes of preallocated zeros may follow: skip them in one pass instead of trying a
        // record at every byte. A record's length is at least 8, so one of its first four bytes
        // is not zero: none starts more than three bytes before the end of a zero run.
        let zeros = damaged[at..].iter().take_while(|&&b| b == 0).count();
        if zeros > 3 {
            at += zeros - 3;
            continue;
        }
        match decode_one(&damaged[at..]) {
            Some((_, used)) => {
                found += 1;
                at += used;
            }
            None => at += 1,
        }
    }
    found
}

pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(&dir.display().to_string(), e))
}

pub fn encode(writes: &WriteSet) -> Vec<u8> {
    let mut payload = Vec::with_capacity(256);
    payload.extend_from_slice(&(writes.ops.len() as u32).to_le_bytes());
    for (keyspace, key, value) in &writes.ops {
        payload.push(keyspace.prefix());
        put_bytes(&mut payload, key);
        match value {
            Some(value) => {
                payload.push(1);
                put_bytes(&mut payload, value);
            }
            None => payload.push(0),
        }
    }
    payload.extend_from_slice(&(writes.journal.len() as u32).to_le_bytes());
    for (seq, entry) in &writes.journal {
        payload.extend_from_slice(&seq.to_le_bytes());
        put_bytes(&mut payload, entry);
    }
    let mut record = Vec::with_capacity(payload.len() + 8);
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// The length of `encode(writes)`, without building it.
pub fn encoded_len(writes: &WriteSet) -> usize {
    let ops: usize = writes
        .ops
        .iter()
        .map(|(_, key, value)| 1 + 4 + key.len() + 1 + value.as_ref().map_or(0, |v| 4 + v.len()))
        .sum();
    let journal: usize = writes.journal.iter().map(|(_, entry)| 8 + 4 + entry.len()).sum();
    8 + 4 + ops + 4 + journal
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Every whole, intact record at the start of `bytes`, and how many bytes they span.
pub fn decode_all(bytes: &[u8]) -> (Vec<WriteSet>, usize) {
    let mut records = vec![];
    let mut at = 0;
    while let Some((record, used)) = decode_one(&bytes[at..]) {
        records.push(record);
        at += used;
    }
    (records, at)
}

fn decode_one(bytes: &[u8]) -> Option<(WriteSet, usize)> {
    let mut header = Cursor { bytes, at: 0 };
    let len = header.u32()? as usize;
    let crc = header.u32()?;
    if len > MAX_RECORD {
        return None;
    }
    // The smallest payload holds two counts. This also keeps zeros from ever reading as a
    // record (length 0), which the preallocated tail of a segment relies on: keep it so.
    if len < 8 {
        return None;
    }
    let payload = bytes.get(8..8 + len)?;
    let mut cursor = Cursor {
        bytes: payload,
        at: 0,
    };
    let mut writes = WriteSet::default();
    for _ in 0..cursor.u32()? {
        let keyspace = Keyspace::from_prefix(cursor.u8()?)?;
        let key = cursor.bytes()?.to_vec();
        let value = match cursor.u8()? {
            0 => None,
            1 => Some(cursor.bytes()?.to_vec()),
            _ => return None,
        };
        writes.ops.push((keyspace, key, value));
    }
    for _ in 0..cursor.u32()? {
        let seq = cursor.u64()?;
        writes.journal.push((seq, cursor.bytes()?.to_vec()));
    }
    // The checksum last: the structure rejects most non-records faster (see `count_intact_after`).
    (cursor.at == payload.len() && crc32fast::hash(payload) == crc).then_some((writes, 8 + len))
}

/// Bounds-checked reads over a byte slice: every read that would run past the end is None.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keyspace() -> impl Strategy<Value = Keyspace> {
        prop::sample::select(Keyspace::ALL.to_vec())
    }

    fn write_set() -> impl Strategy<Value = WriteSet> {
        let op = (
            keyspace(),
            prop::collection::vec(any::<u8>(), 0..20),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        );
        let entry = (any::<u64>(), prop::collection::vec(any::<u8>(), 0..40));
        (
            prop::collection::vec(op, 0..6),
            prop::collection::vec(entry, 0..3),
        )
            .prop_map(|(ops, journal)| WriteSet { ops, journal })
    }

    proptest! {
        #[test]
        fn records_round_trip(sets in prop::collection::vec(write_set(), 0..5)) {
            for set in &sets {
                prop_assert_eq!(encoded_len(set), encode(set).len());
            }
            let bytes: Vec<u8> = sets.iter().flat_map(encode).collect();
            let (decoded, used) = decode_all(&bytes);
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(decoded, sets);
        }

        #[test]
        fn a_torn_tail_keeps_every_whole_record_before_it(sets in prop::collection::vec(write_set(), 1..5), cut in 1usize..64) {
            let bytes: Vec<u8> = sets.iter().flat_map(encode).collect();
            let last = encode(sets.last().unwrap()).len();
            let cut = cut.min(last);
            let (decoded, used) = decode_all(&bytes[..bytes.len() - cut]);
            prop_assert_eq!(decoded.len(), sets.len() - 1);
            prop_assert_eq!(used, bytes.len() - last);
        }

        #[test]
        fn records_then_zeros_read_as_every_record(
            sets in prop::collection::vec(write_set(), 0..5),
            zeros in 0usize..20_000,
        ) {
            let records: Vec<u8> = sets.iter().flat_map(encode).collect();
            let bytes = [records.clone(), vec![0; zeros]].concat();
            let (decoded, used) = decode_all(&bytes);
            prop_assert_eq!(used, records.len());
            prop_assert_eq!(&decoded, &sets);
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(segment_path(dir.path(), 1), &bytes).unwrap();
            prop_assert_eq!(recovered(dir.path(), Damage::Refuse).unwrap(), sets);
            let after = std::fs::read(segment_path(dir.path(), 1)).unwrap();
            prop_assert_eq!(after, bytes, "a clean tail is left as it is");
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let (_, used) = decode_all(&bytes);
            prop_assert!(used <= bytes.len());
        }
    }

    fn set(key: &[u8], seq: u64) -> WriteSet {
        WriteSet {
            ops: vec![(Keyspace::Patient, key.to_vec(), Some(b"v".to_vec()))],
            journal: vec![(seq, b"entry".to_vec())],
        }
    }

    /// The first half of a record: what a crash mid-append leaves.
    fn torn_half(key: &[u8], seq: u64) -> Vec<u8> {
        let whole = encode(&set(key, seq));
        whole[..whole.len() / 2].to_vec()
    }

    fn recovered(dir: &Path, damage: Damage) -> Result<Vec<WriteSet>, StoreError> {
        let all = segments(dir)?;
        let mut records = vec![];
        for &segment in &all {
            records.extend(recover_segment(
                dir,
                segment,
                Some(&segment) == all.last(),
                damage,
            )?);
        }
        Ok(records)
    }

    // A failed fdatasync cannot be caused on demand here, so its outcome is handed in.
    #[test]
    fn a_failed_sync_writes_the_unsynced_records_again_in_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), 1).unwrap();
        wal.append(&set(b"a", 1)).unwrap();
        wal.sync().unwrap();
        wal.append(&set(b"b", 2)).unwrap();
        let (_, segment, upto) = wal.sync_target();
        wal.append(&set(b"c", 3)).unwrap();
        let eio = std::io::Error::from_raw_os_error(5);
        wal.after_sync(segment, upto, Err(StoreError::io("wal sync", eio)))
            .unwrap();
        assert_eq!(wal.segment(), 2, "never again on the file whose sync failed");
        // The old segment holds only what was synced (no preallocated tail either); the new one
        // the rest, written from its start and synced.
        assert_eq!(read_segment(dir.path(), 1).unwrap(), vec![set(b"a", 1)]);
        assert_eq!(
            file_size(&segment_path(dir.path(), 1)),
            encode(&set(b"a", 1)).len() as u64
        );
        let moved = [set(b"b", 2), set(b"c", 3)];
        assert_eq!(
            wal.len(),
            moved.iter().map(|s| encode(s).len() as u64).sum::<u64>()
        );
        assert_eq!(
            read_segment(dir.path(), 2).unwrap(),
            vec![set(b"b", 2), set(b"c", 3)]
        );
        wal.append(&set(b"d", 4)).unwrap();
        wal.sync().unwrap();
        let all = recovered(dir.path(), Damage::Refuse).unwrap();
        assert_eq!(all, vec![set(b"a", 1), set(b"b", 2), set(b"c", 3), set(b"d", 4)]);
    }

    #[test]
    fn damage_that_intact_records_follow_is_refused_unless_told_to_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let bytes = [encode(&set(b"a", 1)), torn_half(b"b", 2), encode(&set(b"c", 3))].concat();
        std::fs::write(&path, &bytes).unwrap();
        let refused = recovered(dir.path(), Damage::Refuse).unwrap_err().to_string();
        assert!(refused.contains("1 intact record(s) follow it"), "{refused}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "a refusal changes nothing");
        assert_eq!(recovered(dir.path(), Damage::Cut).unwrap(), vec![set(b"a", 1)]);
    }

    #[test]
    fn a_torn_tail_of_the_last_segment_is_cut_but_not_of_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let torn = encode(&set(b"b", 2));
        let first = [encode(&set(b"a", 1)), torn[..5].to_vec()].concat();
        std::fs::write(segment_path(dir.path(), 1), &first).unwrap();
        assert_eq!(recovered(dir.path(), Damage::Refuse).unwrap(), vec![set(b"a", 1)]);
        let kept = std::fs::metadata(segment_path(dir.path(), 1)).unwrap().len();
        assert_eq!(
            kept,
            encode(&set(b"a", 1)).len() as u64,
            "the torn tail is cut off the file"
        );
        std::fs::write(segment_path(dir.path(), 1), &first).unwrap();
        std::fs::write(segment_path(dir.path(), 2), encode(&set(b"c", 3))).unwrap();
        let refused = recovered(dir.path(), Damage::Refuse).unwrap_err().to_string();
        assert!(refused.contains("later segments follow it"), "{refused}");
    }

    fn zeros(n: usize) -> Vec<u8> {
        vec![0; n]
    }

    fn file_size(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    /// Whether this file system preallocates at all (tmpfs, ext4 and xfs do; some do not).
    fn can_preallocate(dir: &Path) -> bool {
        let probe = File::create(dir.join("probe")).unwrap();
        rustix::fs::fallocate(&probe, rustix::fs::FallocateFlags::empty(), 0, 4096).is_ok()
    }

    #[test]
    fn zeros_are_never_a_record() {
        assert_eq!(decode_all(&zeros(64)), (vec![], 0));
        assert_eq!(count_intact_after(&zeros(1 << 20)), 0);
    }

    #[test]
    fn a_zero_tail_is_the_end_and_appends_go_after_the_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let records = [encode(&set(b"a", 1)), encode(&set(b"b", 2))].concat();
        std::fs::write(&path, [records.clone(), zeros(100_000)].concat()).unwrap();
        assert_eq!(
            recovered(dir.path(), Damage::Refuse).unwrap(),
            vec![set(b"a", 1), set(b"b", 2)]
        );
        let mut wal = Wal::open(dir.path(), 1).unwrap();
        assert_eq!(
            wal.len(),
            records.len() as u64,
            "the end is the last record's, not the file's"
        );
        wal.append(&set(b"c", 3)).unwrap();
        wal.sync().unwrap();
        let all = vec![set(b"a", 1), set(b"b", 2), set(b"c", 3)];
        assert_eq!(read_segment(dir.path(), 1).unwrap(), all);
        assert_eq!(recovered(dir.path(), Damage::Refuse).unwrap(), all);
        let end = wal.len();
        drop(wal);
        assert_eq!(Wal::open(dir.path(), 1).unwrap().len(), end);
    }

    #[test]
    fn appends_past_a_chunk_preallocate_the_next_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), 1).unwrap();
        let big = |seq: u64| WriteSet {
            ops: vec![(
                Keyspace::Patient,
                seq.to_le_bytes().to_vec(),
                Some(vec![7; 300_000]),
            )],
            journal: vec![(seq, b"entry".to_vec())],
        };
        let sets: Vec<WriteSet> = (1..=30).map(big).collect();
        for set in &sets {
            wal.append(set).unwrap();
            wal.sync().unwrap();
        }
        let end = sets.iter().map(encoded_len).sum::<usize>() as u64;
        assert!(end > 2 * PREALLOC_CHUNK);
        assert_eq!(wal.len(), end);
        let size = file_size(&segment_path(dir.path(), 1));
        if can_preallocate(dir.path()) {
            assert_eq!(
                size,
                end.div_ceil(PREALLOC_CHUNK) * PREALLOC_CHUNK,
                "preallocated in chunks"
            );
        } else {
            assert_eq!(size, end);
        }
        assert_eq!(read_segment(dir.path(), 1).unwrap(), sets);
        drop(wal);
        assert_eq!(recovered(dir.path(), Damage::Refuse).unwrap(), sets);
        assert_eq!(Wal::open(dir.path(), 1).unwrap().len(), end);
    }

    #[test]
    fn a_torn_record_followed_by_zeros_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let kept = encode(&set(b"a", 1));
        let bytes = [kept.clone(), torn_half(b"b", 2), zeros(4 << 20)].concat();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(recovered(dir.path(), Damage::Refuse).unwrap(), vec![set(b"a", 1)]);
        assert_eq!(
            file_size(&path),
            kept.len() as u64,
            "the torn record and the zeros are cut off"
        );
        let mut wal = Wal::open(dir.path(), 1).unwrap();
        wal.append(&set(b"c", 3)).unwrap();
        wal.sync().unwrap();
        assert_eq!(
            read_segment(dir.path(), 1).unwrap(),
            vec![set(b"a", 1), set(b"c", 3)]
        );
    }

    #[test]
    fn damage_then_zeros_then_an_intact_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let bytes = [
            encode(&set(b"a", 1)),
            torn_half(b"b", 2),
            zeros(1 << 20),
            encode(&set(b"c", 3)),
            zeros(1000),
        ]
        .concat();
        std::fs::write(&path, &bytes).unwrap();
        let refused = recovered(dir.path(), Damage::Refuse).unwrap_err().to_string();
        assert!(refused.contains("1 intact record(s) follow it"), "{refused}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "a refusal changes nothing");
        assert!(Wal::open(dir.path(), 1).is_err(), "nor is it written over");
        assert_eq!(recovered(dir.path(), Damage::Cut).unwrap(), vec![set(b"a", 1)]);
    }

    #[test]
    fn a_zero_tailed_earlier_segment_and_a_later_one_recover_clean() {
        let dir = tempfile::tempdir().unwrap();
        // A crash between `rotate`'s sync and its trim leaves the earlier segment's zeros.
        let first = [encode(&set(b"a", 1)), zeros(PREALLOC_CHUNK as usize - 100)].concat();
        std::fs::write(segment_path(dir.path(), 1), &first).unwrap();
        std::fs::write(segment_path(dir.path(), 2), encode(&set(b"b", 2))).unwrap();
        assert_eq!(
            recovered(dir.path(), Damage::Refuse).unwrap(),
            vec![set(b"a", 1), set(b"b", 2)]
        );
        assert_eq!(std::fs::read(segment_path(dir.path(), 1)).unwrap(), first);
    }

    #[test]
    fn a_rotated_segment_has_no_zero_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), 1).unwrap();
        wal.append(&set(b"a", 1)).unwrap();
        wal.sync().unwrap();
        let path = segment_path(dir.path(), 1);
        if can_preallocate(dir.path()) {
            assert_eq!(
                file_size(&path),
                PREALLOC_CHUNK,
                "the segment being written is preallocated"
            );
        }
        wal.rotate().unwrap();
        assert_eq!(wal.segment(), 2);
        assert_eq!(file_size(&path), encode(&set(b"a", 1)).len() as u64);
        wal.append(&set(b"b", 2)).unwrap();
        wal.sync().unwrap();
        assert_eq!(
            recovered(dir.path(), Damage::Refuse).unwrap(),
            vec![set(b"a", 1), set(b"b", 2)]
        );
    }

    #[test]
    fn the_log_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("journal");
        let mut wal = Wal::open(&log, 1).unwrap();
        wal.append(&set(b"a", 1)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&log), 0o700);
        assert_eq!(mode(&segment_path(&log, 1)), 0o600);
    }

    #[test]
    fn a_flipped_bit_ends_the_log_there() {
        let mut set = WriteSet::default();
        set.ops
            .push((Keyspace::Patient, b"p".to_vec(), Some(b"v".to_vec())));
        let mut bytes = [encode(&set), encode(&set)].concat();
        let second = bytes.len() / 2;
        bytes[second + 10] ^= 1;
        assert_eq!(decode_all(&bytes).0.len(), 1);
    }
}
