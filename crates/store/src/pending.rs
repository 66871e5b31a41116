//! Writes that are durable in the log but not yet applied to the sled tree.
//!
//! A commit costs a log append and a place in this map; a background thread applies each write
//! set to sled (about 5-10 us a key, the largest cost of a commit when done inline) and then
//! drops it from here. Readers look here first, then in sled, so a write is visible the moment
//! its commit returns. An entry leaves only after sled has it, and readers check here before
//! sled, so no read can fall between the two.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, RwLock};

use super::{Keyspace, Write};

type Key = (Keyspace, Vec<u8>);
/// The write set that last wrote a key, and the value it wrote (None: deleted).
type Slot = (u64, Option<Vec<u8>>);

#[derive(Default)]
pub struct Pending {
    /// Each key's newest pending value (None: deleted) and the write set that wrote it.
    entries: RwLock<BTreeMap<Key, Slot>>,
    /// The last write set applied to sled.
    applied: Mutex<u64>,
    applied_changed: Condvar,
}

impl Pending {
    pub fn add(&self, write_set: u64, ops: &[Write]) {
        let mut entries = self.entries.write().expect("pending lock");
        for (keyspace, key, value) in ops {
            entries.insert((*keyspace, key.clone()), (write_set, value.clone()));
        }
    }

    /// Some(value) when the key has a pending write (Some(None) when that write deletes it).
    pub fn get(&self, keyspace: Keyspace, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let entries = self.entries.read().expect("pending lock");
        entries
            .get(&(keyspace, key.to_vec()))
            .map(|(_, value)| value.clone())
    }

    /// Pending writes of keys starting with `prefix`, in key order.
    #[allow(clippy::type_complexity)]
    pub fn with_prefix(&self, keyspace: Keyspace, prefix: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let entries = self.entries.read().expect("pending lock");
        entries
            .range((keyspace, prefix.to_vec())..)
            .take_while(|((k, key), _)| *k == keyspace && key.starts_with(prefix))
            .map(|((_, key), (_, value))| (key.clone(), value.clone()))
            .collect()
    }

    /// Write set `write_set` is in sled now: its entries that no later write replaced leave.
    pub fn applied(&self, write_set: u64, ops: &[Write]) {
        {
            let mut entries = self.entries.write().expect("pending lock");
            for (keyspace, key, _) in ops {
                let entry = (*keyspace, key.clone());
                if entries.get(&entry).is_some_and(|(n, _)| *n == write_set) {
                    entries.remove(&entry);
                }
            }
        }
        *self.applied.lock().expect("pending lock") = write_set;
        self.applied_changed.notify_all();
    }

    /// Waits until sled has every write set up to `write_set`.
    pub fn wait_applied(&self, write_set: u64) {
        let mut applied = self.applied.lock().expect("pending lock");
        while *applied < write_set {
            applied = self.applied_changed.wait(applied).expect("pending lock");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_write_stays_when_an_older_one_is_applied() {
        let pending = Pending::default();
        let first = vec![(Keyspace::Patient, b"a".to_vec(), Some(b"1".to_vec()))];
        let second = vec![(Keyspace::Patient, b"a".to_vec(), None)];
        pending.add(1, &first);
        pending.add(2, &second);
        pending.applied(1, &first);
        assert_eq!(pending.get(Keyspace::Patient, b"a"), Some(None));
        pending.applied(2, &second);
        assert_eq!(pending.get(Keyspace::Patient, b"a"), None);
        pending.wait_applied(2);
    }

    #[test]
    fn prefix_reads_stay_in_their_keyspace() {
        let pending = Pending::default();
        pending.add(
            1,
            &[
                (Keyspace::EmailIndex, b"ab".to_vec(), Some(vec![])),
                (Keyspace::EmailIndex, b"b".to_vec(), Some(vec![])),
                (Keyspace::PhoneIndex, b"a".to_vec(), Some(vec![])),
            ],
        );
        let found = pending.with_prefix(Keyspace::EmailIndex, b"a");
        assert_eq!(found, vec![(b"ab".to_vec(), Some(vec![]))]);
    }
}
