//! The member store: a key-value contract (`Store`) over named keyspaces plus the journal, the
//! embedded backend (`EmbeddedStore`: an LSM tree behind a write-ahead log), the PostgreSQL one
//! for several engine nodes (`PostgresStore`) and an in-memory one for tests (`MemoryStore`). The `tributary-store` crate; the engine has it as `tributary::store`, and it
//! knows nothing of the engine, HL7 or FHIR.
//!
//! Everything above this crate speaks in keyspaces and byte keys; nothing else names the embedded
//! tree or the database's tables. Writes happen only as whole `WriteSet`s, applied atomically,
//! and become durable only at `sync` (the engine group-commits: many write sets, one sync).

#![deny(missing_docs)]

#[cfg(test)]
mod contract_tests;
mod embedded;
mod error;
mod memory;
mod overlay;
mod postgres;
mod sled_import;
#[cfg(any(test, feature = "test-postgres"))]
pub mod test_postgres;
mod wal;

pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use memory::MemoryStore;
pub use overlay::{Changed, Overlay, Staged};
pub use postgres::{PostgresOptions, PostgresStore, UrlProblem, known_schema_version};
pub use wal::Damage as LogDamage;

/// The size past which a log segment is checkpointed, unless `StoreOptions` says otherwise. The
/// memtable takes about three times a segment's bytes in memory: with 64 MiB the engine's RSS
/// swung 296-485 MiB over a 1M-message soak, with 16 MiB 298-349 MiB (within 10% of its mean),
/// for about 8% more CPU per message in checkpoints (README "Performance").
pub const DEFAULT_LOG_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// How the embedded store opens and guards its disk.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Writes are refused while the data folder's file system has less free space than this
    /// (0: no floor).
    pub min_free_bytes: u64,
    /// What recovery does with damage in the log that intact records follow.
    pub damage: LogDamage,
    /// A log segment larger than this (at a sync) is checkpointed: its write sets are written
    /// out as tables and a new segment started. It bounds the memtable (about one segment of
    /// writes) and what an open replays; smaller means more frequent checkpoints and more,
    /// smaller journal files.
    pub log_segment_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            min_free_bytes: 0,
            damage: LogDamage::default(),
            log_segment_bytes: DEFAULT_LOG_SEGMENT_BYTES,
        }
    }
}

/// The named parts of the store. Each keeps its own key layout, documented where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Keyspace {
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
    /// Deliveries waiting to go out: `destination \0 cause seq (8 bytes BE) n (4 bytes BE)`.
    Outbox,
    /// Deliveries that failed for good, same keys as the outbox.
    DeadLetter,
    /// Deliveries done (delivered or discarded), same keys as the outbox.
    Delivered,
    /// FHIR resources other than Patient: `Type/id` -> the current version.
    Resource,
    /// Every version of every resource, Patients included: `Type/id \0 version (8 bytes BE)`.
    History,
    /// Search parameter index: `Type \0 param \0 value \0 id` -> nothing.
    SearchIndex,
    /// Member accounts by patient id (src/domain/accounts/members.rs).
    Member,
    /// Member search: `kind group term \0 patient id` -> nothing (src/domain/accounts/members.rs).
    MemberIndex,
    /// Keyed hash of an activation or password-reset token -> its record (src/domain/accounts/tokens.rs).
    TokenIndex,
    /// Lowercased username -> patient id.
    UsernameIndex,
    /// Self-requested enrollment requests by id (src/domain/accounts/requests.rs).
    EnrollmentRequest,
    /// Open requests: `queue byte, request id` -> nothing.
    RequestQueue,
    /// Audit records: `seq (8 bytes BE) n (4 bytes BE)` -> the record (src/domain/accounts/audit.rs).
    Audit,
    /// `target \0 seq n` -> nothing.
    AuditByTarget,
    /// `actor \0 seq n` -> nothing.
    AuditByActor,
    /// Member settings changed at run time by a Configuration Manager.
    MemberSettings,
    /// External credentials: `issuer \0 subject` -> the link to a member (src/domain/identity/credentials.rs).
    Credential,
    /// `patient id \0 issuer \0 subject` -> nothing: a member's external credentials.
    CredentialByMember,
    /// Patient id -> failed sign-ins in a row and the last sign-in (src/domain/identity/signin.rs).
    SignInState,
    /// Keyed hash of a two-factor challenge -> its one-time code's hash and state (src/domain/identity/otp.rs).
    OtpChallenge,
    /// Keyed hash of a sign-in session token -> the session (src/domain/identity/sessions.rs).
    Session,
    /// `issuer \0 jti or token hash` -> its expiry: an external token is used once.
    TokenReplay,
    /// `remembered until (8 bytes BE, Unix seconds) issuer \0 jti or hash` -> nothing: the
    /// used tokens in the order they may be forgotten (the `token-replay-sweep` job).
    TokenReplayExpiry,
    /// Invitations to enroll by id (src/domain/engagement/invitations.rs).
    Invitation,
    /// `address \0 content key` -> the id of the last invitation sent there (duplicate window).
    InvitationByAddress,
    /// Proxy relationships by id (src/domain/proxies.rs).
    Proxy,
    /// Patient id -> the ids of the proxy relationships they take part in, either side.
    ProxyByMember,
    /// `expires at \0 relationship id` -> nothing: the active relationships, soonest to end first.
    ProxyExpiry,
    /// News feed name -> how its last fetches went and what to send back on the next
    /// (src/domain/news.rs).
    NewsFeed,
    /// `feed \0 item id` -> a news item, as the feed last gave it.
    NewsItem,
    /// `patient id \0 Communication id` -> what that member did with the message (read,
    /// archived) (src/domain/messages.rs).
    MessageState,
    /// `patient id \0 Type/id` -> when the member made that provider or group a favourite
    /// (src/domain/directory.rs).
    Favourite,
    /// The journal's index, for the console's message browser: `term kind, value \0 inverted
    /// seq (8 bytes BE)`, newest first under each term; under the term `*` the entry's summary
    /// (src/core/journal_index.rs).
    JournalIndex,
}

impl Keyspace {
    /// Every keyspace.
    pub const ALL: [Keyspace; 39] = [
        Keyspace::Dedupe,
        Keyspace::Patient,
        Keyspace::IdentifierIndex,
        Keyspace::EmailIndex,
        Keyspace::PhoneIndex,
        Keyspace::Meta,
        Keyspace::Outbox,
        Keyspace::DeadLetter,
        Keyspace::Delivered,
        Keyspace::Resource,
        Keyspace::History,
        Keyspace::SearchIndex,
        Keyspace::Member,
        Keyspace::MemberIndex,
        Keyspace::TokenIndex,
        Keyspace::UsernameIndex,
        Keyspace::EnrollmentRequest,
        Keyspace::RequestQueue,
        Keyspace::Audit,
        Keyspace::AuditByTarget,
        Keyspace::AuditByActor,
        Keyspace::MemberSettings,
        Keyspace::Credential,
        Keyspace::CredentialByMember,
        Keyspace::SignInState,
        Keyspace::OtpChallenge,
        Keyspace::Session,
        Keyspace::TokenReplay,
        Keyspace::TokenReplayExpiry,
        Keyspace::Invitation,
        Keyspace::InvitationByAddress,
        Keyspace::Proxy,
        Keyspace::ProxyByMember,
        Keyspace::ProxyExpiry,
        Keyspace::NewsFeed,
        Keyspace::NewsItem,
        Keyspace::MessageState,
        Keyspace::Favourite,
        Keyspace::JournalIndex,
    ];

    /// The one-byte prefix that keeps keyspaces apart in a single ordered key space (and the
    /// `keyspace` column on PostgreSQL).
    pub(crate) fn prefix(self) -> u8 {
        match self {
            Keyspace::Dedupe => b'd',
            Keyspace::Patient => b'p',
            Keyspace::IdentifierIndex => b'i',
            Keyspace::EmailIndex => b'e',
            Keyspace::PhoneIndex => b't',
            Keyspace::Meta => b'm',
            Keyspace::Outbox => b'o',
            Keyspace::DeadLetter => b'x',
            Keyspace::Delivered => b'y',
            Keyspace::Resource => b'r',
            Keyspace::History => b'h',
            Keyspace::SearchIndex => b's',
            Keyspace::Member => b'M',
            Keyspace::MemberIndex => b'N',
            Keyspace::TokenIndex => b'K',
            Keyspace::UsernameIndex => b'U',
            Keyspace::EnrollmentRequest => b'Q',
            Keyspace::RequestQueue => b'J',
            Keyspace::Audit => b'A',
            Keyspace::AuditByTarget => b'B',
            Keyspace::AuditByActor => b'C',
            Keyspace::MemberSettings => b'S',
            Keyspace::Credential => b'c',
            Keyspace::CredentialByMember => b'l',
            Keyspace::SignInState => b'g',
            Keyspace::OtpChallenge => b'f',
            Keyspace::Session => b'z',
            Keyspace::TokenReplay => b'j',
            Keyspace::TokenReplayExpiry => b'k',
            Keyspace::Invitation => b'V',
            Keyspace::InvitationByAddress => b'W',
            Keyspace::Proxy => b'X',
            Keyspace::ProxyByMember => b'Y',
            Keyspace::ProxyExpiry => b'Z',
            Keyspace::NewsFeed => b'F',
            Keyspace::NewsItem => b'n',
            Keyspace::MessageState => b'G',
            Keyspace::Favourite => b'v',
            Keyspace::JournalIndex => b'q',
        }
    }
}

impl Keyspace {
    pub(crate) fn from_prefix(prefix: u8) -> Option<Keyspace> {
        Keyspace::ALL.into_iter().find(|k| k.prefix() == prefix)
    }
}

/// One write: keyspace, key, and the new value (None deletes the key).
pub type Write = (Keyspace, Vec<u8>, Option<Vec<u8>>);

/// A set of writes applied all together or not at all. `None` deletes the key. Journal entries
/// (sequence number, bytes) are appended to the journal in the same commit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteSet {
    /// The writes, in order: a later write of a key wins.
    pub ops: Vec<Write>,
    /// Journal entries: sequence number and bytes.
    pub journal: Vec<(u64, Vec<u8>)>,
}

/// Reads, shared by the store itself and by overlays stacked on it.
pub trait Reader {
    /// The value of `key` in `keyspace`, None when there is none.
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Entries whose key starts with `prefix`, in key order, at most `limit` of them.
    #[allow(clippy::type_complexity)]
    fn scan_prefix(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
}

/// The storage contract the engine and the API rely on.
pub trait Store: Reader + Send + Sync {
    /// Apply every write atomically (visible to readers at once, durable only after `sync`).
    /// Journal sequence numbers only increase, from entry to entry and commit to commit.
    fn commit(&self, writes: WriteSet) -> Result<(), StoreError>;
    /// Entries whose key starts with `prefix` and sorts after `after` (itself under `prefix`),
    /// in key order, at most `limit`: a queue read from where its reader left off, without
    /// walking what was taken before (an LSM keeps deleted keys as tombstones until compaction).
    #[allow(clippy::type_complexity)]
    fn scan_prefix_after(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// Make everything committed so far durable on disk.
    fn sync(&self) -> Result<(), StoreError>;
    /// Fold the log into the store's own files, so the next open has nothing to replay.
    fn checkpoint(&self) -> Result<(), StoreError>;
    /// Journal entries with a sequence number of at least `from`, in order, at most `limit`.
    fn journal(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// The greatest journal sequence number committed so far (0 for none).
    fn journal_last_seq(&self) -> u64;
    /// Journal retention: drops whole journal segments last written before `cutoff`, of those
    /// already folded into the store (never the one being written). Returns the segments and
    /// bytes dropped.
    fn drop_journal_before(&self, cutoff: std::time::SystemTime) -> Result<(usize, u64), StoreError>;
    /// Why writes fail right now (the last commit or sync failed, or the disk is below its
    /// free-space floor); None while they succeed.
    fn write_failure(&self) -> Option<String> {
        None
    }
    /// Starts the committer's next batch, whose `commit` ends it, and returns the last journal
    /// sequence number committed by anyone. On a shared store no other process commits in
    /// between, so what the batch reads is current (PostgreSQL: the cluster's writer lock); one
    /// process alone has nothing to do.
    fn begin_batch(&self) -> Result<u64, StoreError> {
        Ok(self.journal_last_seq())
    }
    /// Whether other processes commit to this store too (several engine nodes on PostgreSQL):
    /// nothing read outside a batch may be taken as unchanged at commit, and what a read shows
    /// is already durable.
    fn shared(&self) -> bool {
        false
    }
    /// Takes the lease `name` when no other process holds it (an outbox destination's queue, a
    /// scheduled job's run): held until the `Lease` is dropped, or the process dies. None when
    /// another process holds it. A store of one process always grants it.
    fn try_lease(&self, _name: &str) -> Result<Option<Lease>, StoreError> {
        Ok(Some(Lease::local()))
    }
}

/// A lease from [`Store::try_lease`]: released when dropped.
pub struct Lease {
    _held: Option<Box<dyn std::any::Any + Send>>,
}

impl Lease {
    /// A lease no other process could contend for.
    pub fn local() -> Lease {
        Lease { _held: None }
    }

    /// A lease that `held` keeps (a connection whose session holds a lock) until dropped.
    pub(crate) fn held(held: Box<dyn std::any::Any + Send>) -> Lease {
        Lease { _held: Some(held) }
    }
}
