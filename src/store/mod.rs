//! The member store: a key-value contract (`Store`) over named keyspaces, and the sled backend.
//!
//! Everything above this module speaks in keyspaces and byte keys; nothing else names sled, so a
//! PostgreSQL backend can come later. Writes happen only as whole `WriteSet`s, applied atomically,
//! and become durable only at `sync` (the engine group-commits: many write sets, one sync).

mod overlay;
mod sled_store;

pub use overlay::Overlay;
pub use sled_store::SledStore;

/// The named parts of the store. Each keeps its own key layout, documented where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Keyspace {
    /// Every inbound message, keyed by its journal sequence number.
    Journal,
    /// Sender + control id of each applied message, to answer a resend with its first reply.
    Dedupe,
    /// FHIR Patient resources by logical id.
    Patient,
    /// `value \0 system` of each patient identifier -> patient id.
    IdentifierIndex,
    /// `email \0 patient id` -> nothing.
    EmailIndex,
    /// `digits \0 patient id` -> nothing.
    PhoneIndex,
    /// Counters and other engine bookkeeping.
    Meta,
}

impl Keyspace {
    /// The one-byte prefix that keeps keyspaces apart in a single ordered key space.
    fn prefix(self) -> u8 {
        match self {
            Keyspace::Journal => b'j',
            Keyspace::Dedupe => b'd',
            Keyspace::Patient => b'p',
            Keyspace::IdentifierIndex => b'i',
            Keyspace::EmailIndex => b'e',
            Keyspace::PhoneIndex => b't',
            Keyspace::Meta => b'm',
        }
    }
}

/// A failure of the storage layer itself (disk, corruption), never a business rule.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// A set of writes applied all together or not at all. `None` deletes the key.
#[derive(Debug, Default)]
pub struct WriteSet {
    pub ops: Vec<(Keyspace, Vec<u8>, Option<Vec<u8>>)>,
}

/// Point reads, shared by the store itself and by overlays stacked on it.
pub trait Reader {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

/// The storage contract the engine and the API rely on.
pub trait Store: Reader + Send + Sync {
    /// Entries whose key starts with `prefix`, in key order, at most `limit` of them.
    #[allow(clippy::type_complexity)]
    fn scan_prefix(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// The entry with the greatest key in the keyspace.
    #[allow(clippy::type_complexity)]
    fn last(&self, keyspace: Keyspace) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// Apply every write atomically (visible to readers at once, durable only after `sync`).
    fn commit(&self, writes: WriteSet) -> Result<(), StoreError>;
    /// Make everything committed so far durable on disk.
    fn sync(&self) -> Result<(), StoreError>;
}
