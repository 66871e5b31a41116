//! The one-time import of a data folder written by an earlier release, whose store kept its
//! tables in sled (`<dir>/sled`) behind the same write-ahead log.
//!
//! The sled tree is read whole into the LSM tree and written out as tables; the checkpoint marker
//! sled kept as a `Meta` key (the first segment not yet folded into sled, and the last journal
//! sequence number then) becomes the store's `checkpoint` file, so the open that follows replays
//! the log from the same segment the earlier release would have. Then `sled/` is renamed
//! `sled.imported/` (kept for the operator to delete). A crash before the marker is written
//! imports again on the next open (whole values: nothing changes twice); a crash after it only
//! renames.

use std::path::Path;

use lsm_tree::{AbstractTree, AnyTree, SequenceNumberCounter};

use super::embedded::{Marker, full_key};
use super::{Keyspace, StoreError, wal};

/// The `Meta` key under which the sled store kept its checkpoint marker.
const SLED_CHECKPOINT_KEY: &[u8] = b"checkpoint";

/// Imports `<dir>/sled` into `tree` when it is there (see the module doc).
pub(crate) fn import_if_present(
    dir: &Path,
    tree: &AnyTree,
    seqno: &SequenceNumberCounter,
) -> Result<(), StoreError> {
    let sled_dir = dir.join("sled");
    if !sled_dir.is_dir() {
        return Ok(());
    }
    if !dir.join("checkpoint").exists() {
        import(dir, &sled_dir, tree, seqno)?;
    }
    let imported = dir.join("sled.imported");
    std::fs::rename(&sled_dir, &imported)
        .map_err(|e| StoreError::io(format!("renaming {} after its import", sled_dir.display()), e))?;
    wal::sync_dir(dir)?;
    tracing::info!(folder = %imported.display(), "the sled store of an earlier release was imported; its folder can be deleted");
    Ok(())
}

fn import(
    dir: &Path,
    sled_dir: &Path,
    tree: &AnyTree,
    seqno: &SequenceNumberCounter,
) -> Result<(), StoreError> {
    let open_error = |e: sled::Error| StoreError::Open {
        dir: sled_dir.to_path_buf(),
        source: Box::new(e),
    };
    let db = sled::Config::new().path(sled_dir).open().map_err(open_error)?;
    let checkpoint_key = full_key(Keyspace::Meta, SLED_CHECKPOINT_KEY);
    let mut marker = Marker {
        first_unfolded: 1,
        last_seq: 0,
    };
    let mut entries = 0u64;
    for entry in db.iter() {
        let (key, value) = entry.map_err(open_error)?;
        if *key == *checkpoint_key {
            if value.len() == 16 {
                marker = Marker {
                    first_unfolded: u64::from_be_bytes(value[..8].try_into().expect("8 bytes")),
                    last_seq: u64::from_be_bytes(value[8..].try_into().expect("8 bytes")),
                };
            }
            continue;
        }
        tree.insert(&*key, &*value, seqno.next());
        entries += 1;
    }
    drop(db);
    tree.rotate_memtable();
    {
        let lock = tree.get_flush_lock();
        tree.flush(&lock, 0)?;
    }
    marker.write(dir)?;
    tracing::info!(
        entries,
        replay_from_segment = marker.first_unfolded,
        "imported the sled store"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{EmbeddedStore, Reader, Store, WriteSet};

    use super::*;

    /// A folder as the earlier release left it: sled with two keys and its checkpoint marker at
    /// segment 2, and a log whose segment 2 holds a write sled never got.
    #[test]
    fn a_sled_folder_is_imported_once_and_the_log_replayed_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path().join("sled")).open().unwrap();
            db.insert(full_key(Keyspace::Patient, b"p1"), &b"one"[..])
                .unwrap();
            db.insert(full_key(Keyspace::EmailIndex, b"a@b\0p1"), &b""[..])
                .unwrap();
            let mut marker = 2u64.to_be_bytes().to_vec();
            marker.extend_from_slice(&7u64.to_be_bytes());
            db.insert(full_key(Keyspace::Meta, SLED_CHECKPOINT_KEY), marker)
                .unwrap();
            db.flush().unwrap();
        }
        let log_dir = dir.path().join("journal");
        {
            // Segment 1 was folded into sled: a stale write there must not be replayed.
            let mut wal = wal::Wal::open(&log_dir, 1).unwrap();
            wal.append(&WriteSet {
                ops: vec![(Keyspace::Patient, b"p1".to_vec(), Some(b"stale".to_vec()))],
                journal: vec![(7, b"seven".to_vec())],
            })
            .unwrap();
            wal.rotate().unwrap();
            wal.append(&WriteSet {
                ops: vec![(Keyspace::Patient, b"p2".to_vec(), Some(b"two".to_vec()))],
                journal: vec![(8, b"eight".to_vec())],
            })
            .unwrap();
            wal.sync().unwrap();
        }
        for _ in 0..2 {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            assert_eq!(
                store.get(Keyspace::Patient, b"p1").unwrap(),
                Some(b"one".to_vec())
            );
            assert_eq!(
                store.get(Keyspace::Patient, b"p2").unwrap(),
                Some(b"two".to_vec())
            );
            assert_eq!(
                store.scan_prefix(Keyspace::EmailIndex, b"a@b", 10).unwrap().len(),
                1
            );
            assert_eq!(store.scan_prefix(Keyspace::Meta, b"", 10).unwrap(), vec![]);
            assert_eq!(store.journal_last_seq(), 8);
            assert!(!dir.path().join("sled").exists());
            assert!(dir.path().join("sled.imported").is_dir());
        }
    }
}
