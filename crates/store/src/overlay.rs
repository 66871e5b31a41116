//! Pending writes stacked over a reader: reads see the pending writes first.
//!
//! The committer applies a batch of messages into one overlay over the store, and each message
//! into its own overlay over the batch's, so a message that fails leaves nothing behind while
//! later messages in the same batch still see earlier ones.

use std::collections::BTreeMap;

use super::{Keyspace, Reader, StoreError, WriteSet};

/// Pending writes over a reader (the store, or another overlay); see the module doc.
pub struct Overlay<'r> {
    below: &'r dyn Reader,
    pending: BTreeMap<(Keyspace, Vec<u8>), Option<Vec<u8>>>,
    changed: Vec<Changed>,
}

/// An overlay's writes and the records they changed, taken off the reader below it.
pub struct Staged {
    writes: WriteSet,
    changed: Vec<Changed>,
}

/// A record this overlay's writes changed, by its kind (a FHIR resource type, or `Member`) and
/// id: what the core's projections follow. The writer that knows what a record is notes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// A FHIR resource type, or `Member`.
    pub kind: String,
    /// The record's id within its kind.
    pub id: String,
    /// The version written, for a record that keeps versions (a FHIR resource).
    pub version: Option<u64>,
}

impl<'r> Overlay<'r> {
    /// An overlay with nothing pending over `below`.
    pub fn new(below: &'r dyn Reader) -> Self {
        Overlay {
            below,
            pending: BTreeMap::new(),
            changed: vec![],
        }
    }

    /// The reader under this overlay's pending writes (the state before them).
    pub fn below(&self) -> &'r dyn Reader {
        self.below
    }

    /// Notes that the record `kind`/`id` changed (each once).
    pub fn note_changed(&mut self, kind: &str, id: &str) {
        self.note(kind, id, None);
    }

    /// Notes that version `version` of the record `kind`/`id` was written (each record once,
    /// with the last version written).
    pub fn note_version(&mut self, kind: &str, id: &str, version: u64) {
        self.note(kind, id, Some(version));
    }

    fn note(&mut self, kind: &str, id: &str, version: Option<u64>) {
        match self.changed.iter_mut().find(|c| c.kind == kind && c.id == id) {
            Some(known) => known.version = version.or(known.version),
            None => self.changed.push(Changed {
                kind: kind.to_string(),
                id: id.to_string(),
                version,
            }),
        }
    }

    /// The records changed so far, in the order first noted.
    pub fn changed(&self) -> &[Changed] {
        &self.changed
    }

    /// Whether this overlay itself (not the reader below it) has a pending write of `key`.
    pub fn is_pending(&self, keyspace: Keyspace, key: &[u8]) -> bool {
        self.pending.contains_key(&(keyspace, key.to_vec()))
    }

    /// Sets `key` to `value`, for the reads through this overlay and for the writes it becomes.
    pub fn put(&mut self, keyspace: Keyspace, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert((keyspace, key), Some(value));
    }

    /// Deletes `key`, for the reads through this overlay and for the writes it becomes.
    pub fn delete(&mut self, keyspace: Keyspace, key: Vec<u8>) {
        self.pending.insert((keyspace, key), None);
    }

    /// Takes another overlay's pending writes on top of this one's.
    pub fn absorb(&mut self, writes: WriteSet) {
        for (keyspace, key, value) in writes.ops {
            self.pending.insert((keyspace, key), value);
        }
    }

    /// This overlay's writes and the records they changed, to take on top of the overlay
    /// below it with [`Overlay::absorb_staged`].
    pub fn into_staged(mut self) -> Staged {
        let changed = std::mem::take(&mut self.changed);
        Staged {
            writes: self.into_writes(),
            changed,
        }
    }

    /// Takes a staged overlay's writes on top of this one's, and notes what they changed.
    pub fn absorb_staged(&mut self, staged: Staged) {
        self.absorb(staged.writes);
        for changed in staged.changed {
            self.note(&changed.kind, &changed.id, changed.version);
        }
    }

    /// The pending writes, in key order, as a write set to commit (or for another overlay to
    /// absorb).
    pub fn into_writes(self) -> WriteSet {
        WriteSet {
            ops: self
                .pending
                .into_iter()
                .map(|((keyspace, key), value)| (keyspace, key, value))
                .collect(),
            journal: vec![],
        }
    }
}

impl Reader for Overlay<'_> {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending.get(&(keyspace, key.to_vec())) {
            Some(value) => Ok(value.clone()),
            None => self.below.get(keyspace, key),
        }
    }

    /// The reader below's entries with this overlay's pending writes and deletions laid over
    /// them, in key order.
    fn scan_prefix(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let pending: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = self
            .pending
            .range((keyspace, prefix.to_vec())..)
            .take_while(|((k, key), _)| *k == keyspace && key.starts_with(prefix))
            .map(|((_, key), value)| (key, value))
            .collect();
        // Each pending deletion may hide one entry below: ask for that many more.
        let deleted = pending.iter().filter(|(_, value)| value.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self
            .below
            .scan_prefix(keyspace, prefix, limit.saturating_add(deleted))?
            .into_iter()
            .collect();
        for (key, value) in pending {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, Store};

    #[test]
    fn a_scan_sees_pending_writes_and_not_pending_deletions() {
        let store = MemoryStore::default();
        let mut writes = WriteSet::default();
        for key in ["a/1", "a/2", "a/3", "b/1"] {
            writes
                .ops
                .push((Keyspace::Resource, key.into(), Some(b"below".to_vec())));
        }
        store.commit(writes).unwrap();
        let mut overlay = Overlay::new(&store);
        overlay.delete(Keyspace::Resource, b"a/1".to_vec());
        overlay.put(Keyspace::Resource, b"a/2".to_vec(), b"pending".to_vec());
        overlay.put(Keyspace::Resource, b"a/4".to_vec(), b"pending".to_vec());
        overlay.put(Keyspace::SearchIndex, b"a/5".to_vec(), b"other keyspace".to_vec());
        let mut nested = Overlay::new(&overlay);
        nested.delete(Keyspace::Resource, b"a/3".to_vec());
        let found = nested.scan_prefix(Keyspace::Resource, b"a/", 10).unwrap();
        let keys: Vec<(&[u8], &[u8])> = found.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        assert_eq!(
            keys,
            vec![(&b"a/2"[..], &b"pending"[..]), (&b"a/4"[..], &b"pending"[..])]
        );
        let first = nested.scan_prefix(Keyspace::Resource, b"a/", 1).unwrap();
        assert_eq!(first.len(), 1, "a deleted entry below does not use up the limit");
        assert_eq!(first[0].0, b"a/2");
    }
}
