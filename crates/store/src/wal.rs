//! The write-ahead log: where a commit becomes durable, and where the journal is kept.
//!
//! Each commit appends one record (the store writes and the journal entries of a batch) to the
//! current segment file; one `fdatasync` of that file makes the whole batch durable. The sled
//! tree is updated in memory at the same time and flushed only at checkpoints, so a commit costs
//! one small append and one sync instead of a sled flush plus a sync (measured: sled's flush
//! ~136 us + fdatasync ~68 us per commit, against ~90-130 us for an append + fdatasync here).
//! On open, the records after the last checkpoint are applied again (they hold whole values, so
//! applying one twice changes nothing); a torn record at the tail, from a crash mid-write, was
//! never acknowledged and is cut off.
//!
//! The segments are also the journal (`Store::journal` reads them), so they are not deleted when
//! a checkpoint has folded them into sled. They go only by journal retention
//! (`drop_journal_before`, run by the `journal-retention` job with its `keep_days`): whole
//! segments, oldest first, that a checkpoint has already folded into sled (the next open does not
//! replay them) and that were last written before the cutoff; never the segment being written.
//! What it drops is gone from journal reads; the store's data stays.
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
//! length | value]`; then `u32 journal count`, each `u64 seq | u32 length | entry bytes`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Keyspace, StoreError, WriteSet};

/// A record larger than this is corrupt, not real.
const MAX_RECORD: usize = 1 << 30;

/// Records appended but not yet synced are kept in memory (to be written again if their sync
/// fails); past this many bytes an append syncs at once instead of letting them grow.
const MAX_UNSYNCED_BYTES: usize = 16 * 1024 * 1024;

/// Mode of every file the store creates: the owner only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder the store creates.
pub const DIR_MODE: u32 = 0o700;

pub struct Wal {
    dir: PathBuf,
    segment: u64,
    /// Shared so a sync can run without holding up appends (see `file`).
    file: Arc<File>,
    len: u64,
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
    /// Opens the log in `dir` for appending to `segment` (created when missing).
    pub fn open(dir: &Path, segment: u64) -> Result<Wal, StoreError> {
        create_private_dir(dir)?;
        let path = segment_path(dir, segment);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| io(&path.display().to_string(), e))?;
        let len = file.metadata().map_err(|e| io("wal", e))?.len();
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment,
            file: Arc::new(file),
            len,
            synced: len,
            unsynced: VecDeque::new(),
            untrusted: false,
        })
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
        if let Err(e) = (&*self.file).write_all(&record) {
            // Part of the record may be in the file: cut it off, or later records would sit
            // behind a damaged one.
            if let Err(cut) = self.file.set_len(self.len) {
                tracing::error!(error = %cut, segment = self.segment, "cannot cut a failed append off the log");
                self.untrusted = true;
            }
            return Err(io("wal append", e));
        }
        self.len += record.len() as u64;
        self.unsynced.push_back((self.len, record));
        if self.len - self.synced > MAX_UNSYNCED_BYTES as u64 {
            self.sync()?;
        }
        Ok(())
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
        let mut next = Wal::open(&self.dir, self.segment + 1)?;
        // A segment left by an earlier failed attempt holds nothing trusted either.
        next.file.set_len(0).map_err(|e| io("wal: new segment", e))?;
        next.len = 0;
        next.synced = 0;
        for (_, record) in &self.unsynced {
            let written = (&*next.file).write_all(record);
            if let Err(e) = written {
                // The next attempt cuts this segment back and starts another.
                self.segment = next.segment;
                self.file = next.file;
                self.len = next.len;
                self.synced = 0;
                return Err(io("wal: writing unsynced records again", e));
            }
            next.len += record.len() as u64;
        }
        if let Err(e) = sync_file(&next.file) {
            self.segment = next.segment;
            self.file = next.file;
            self.len = next.len;
            self.synced = 0;
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

/// Reads a segment for recovery. A damaged tail of the last segment, with nothing intact after
/// it, is a record torn by a crash: it was never acknowledged and is cut off the file. Damage
/// that intact records follow, or damage in a segment that later segments follow, is refused
/// (unless `damage` says to cut), because cutting there would drop acknowledged records.
pub fn recover_segment(
    dir: &Path,
    segment: u64,
    last: bool,
    damage: Damage,
) -> Result<Vec<WriteSet>, StoreError> {
    let path = segment_path(dir, segment);
    let bytes = read_file(&path)?;
    let (records, valid) = decode_all(&bytes);
    if valid == bytes.len() {
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

/// How many intact records start somewhere in `damaged` (which begins with a damaged one): a
/// record is found at any offset, since a damaged one says nothing reliable about its length.
fn count_intact_after(damaged: &[u8]) -> usize {
    let mut found = 0;
    let mut at = 1;
    while at + 8 <= damaged.len() {
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
    // The smallest payload holds two counts.
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
        // The old segment holds only what was synced; the new one the rest, synced.
        assert_eq!(read_segment(dir.path(), 1).unwrap(), vec![set(b"a", 1)]);
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
        let torn = encode(&set(b"b", 2));
        let bytes = [
            encode(&set(b"a", 1)),
            torn[..torn.len() / 2].to_vec(),
            encode(&set(b"c", 3)),
        ]
        .concat();
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
