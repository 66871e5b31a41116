//! Pending writes stacked over a reader: reads see the pending writes first.
//!
//! The committer applies a batch of messages into one overlay over the store, and each message
//! into its own overlay over the batch's, so a message that fails leaves nothing behind while
//! later messages in the same batch still see earlier ones.

use std::collections::BTreeMap;

use super::{Keyspace, Reader, StoreError, WriteSet};

pub struct Overlay<'r> {
    below: &'r dyn Reader,
    pending: BTreeMap<(Keyspace, Vec<u8>), Option<Vec<u8>>>,
}

impl<'r> Overlay<'r> {
    pub fn new(below: &'r dyn Reader) -> Self {
        Overlay {
            below,
            pending: BTreeMap::new(),
        }
    }

    pub fn put(&mut self, keyspace: Keyspace, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert((keyspace, key), Some(value));
    }

    pub fn delete(&mut self, keyspace: Keyspace, key: Vec<u8>) {
        self.pending.insert((keyspace, key), None);
    }

    /// Takes another overlay's pending writes on top of this one's.
    pub fn absorb(&mut self, writes: WriteSet) {
        for (keyspace, key, value) in writes.ops {
            self.pending.insert((keyspace, key), value);
        }
    }

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
}
