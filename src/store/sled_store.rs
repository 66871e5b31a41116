//! The embedded sled backend of `Store`.
//!
//! All keyspaces live in sled's default tree behind a one-byte prefix, so one `apply_batch` commits
//! a whole write set atomically. sled's `flush` uses `sync_file_range` on Linux, which is not a
//! durable commit (sled issue 1452), so `sync` follows it with `fdatasync` on the database file
//! through our own handle.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use super::{Keyspace, Reader, Store, StoreError, WriteSet};

pub struct SledStore {
    db: sled::Db,
    /// Our own handle on sled's data file, for the fdatasync that makes a flush durable.
    data_file: Mutex<File>,
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

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(512 * 1024 * 1024)
            .open()
            .map_err(|e| StoreError(format!("cannot open the store in {}: {e}", dir.display())))?;
        let data_file = File::open(dir.join("db")).map_err(err)?;
        Ok(SledStore {
            db,
            data_file: Mutex::new(data_file),
        })
    }
}

impl Reader for SledStore {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
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
        self.db
            .scan_prefix(full_key(keyspace, prefix))
            .take(limit)
            .map(|entry| {
                let (k, v) = entry.map_err(err)?;
                Ok((k[1..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn last(&self, keyspace: Keyspace) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let start = [keyspace.prefix()];
        let end = [keyspace.prefix() + 1];
        match self.db.range(start..end).next_back() {
            Some(entry) => {
                let (k, v) = entry.map_err(err)?;
                Ok(Some((k[1..].to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn commit(&self, writes: WriteSet) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (keyspace, key, value) in writes.ops {
            match value {
                Some(value) => batch.insert(full_key(keyspace, &key), value),
                None => batch.remove(full_key(keyspace, &key)),
            }
        }
        self.db.apply_batch(batch).map_err(err)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(err)?;
        let file = self.data_file.lock().map_err(err)?;
        file.sync_data().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_survive_reopen_after_sync() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let mut writes = WriteSet::default();
            writes
                .ops
                .push((Keyspace::Patient, b"p1".to_vec(), Some(b"one".to_vec())));
            writes
                .ops
                .push((Keyspace::Journal, b"k".to_vec(), Some(b"j".to_vec())));
            store.commit(writes).unwrap();
            store.sync().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Keyspace::Patient, b"p1").unwrap(),
            Some(b"one".to_vec())
        );
        assert_eq!(
            store.get(Keyspace::Journal, b"p1").unwrap(),
            None,
            "keyspaces are apart"
        );
        assert_eq!(
            store.last(Keyspace::Journal).unwrap(),
            Some((b"k".to_vec(), b"j".to_vec()))
        );
    }

    #[test]
    fn scan_prefix_stays_inside_its_keyspace() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut writes = WriteSet::default();
        for key in [&b"a\x001"[..], b"a\x002", b"ab\x003"] {
            writes
                .ops
                .push((Keyspace::EmailIndex, key.to_vec(), Some(vec![])));
        }
        writes
            .ops
            .push((Keyspace::PhoneIndex, b"a\x009".to_vec(), Some(vec![])));
        store.commit(writes).unwrap();
        let found = store.scan_prefix(Keyspace::EmailIndex, b"a\x00", 10).unwrap();
        assert_eq!(found.len(), 2);
        let mut delete = WriteSet::default();
        delete.ops.push((Keyspace::EmailIndex, b"a\x001".to_vec(), None));
        store.commit(delete).unwrap();
        assert_eq!(
            store.scan_prefix(Keyspace::EmailIndex, b"a", 10).unwrap().len(),
            2
        );
    }
}
