//! The PostgreSQL backend of `Store`: several engine nodes sharing one database, which brings
//! its own replication and failover (README "Scaling out").
//!
//! Every keyspace is one table, `tributary_kv (keyspace, key, value)`, keyed the same way as the
//! embedded store, so prefix scans read in the same order. The journal is
//! `tributary_journal`, partitioned by UTC day: retention drops whole partitions.
//!
//! **One writer at a time, cluster-wide.** Each node's committer opens a transaction at the start
//! of a batch ([`Store::begin_batch`]) that takes the cluster's writer lock (an advisory
//! transaction lock) and reads the last journal sequence number; its commit writes the batch and
//! commits with `synchronous_commit` on, which releases the lock. While a node holds it no other
//! commits, so everything its jobs read is current: a resend that reaches another node finds the
//! first answer, two nodes changing one patient apply one after the other, and journal numbers
//! rise across the cluster. A node that dies mid-batch loses its connection, and PostgreSQL rolls
//! the transaction back and frees the lock. A commit is durable when it returns: `sync` has
//! nothing left to do, and nothing is visible before it is durable.
//!
//! **Leases** ([`Store::try_lease`]) are session advisory locks on a connection of their own,
//! freed when the lease is dropped or the node's connection ends.
//!
//! The `Store` contract is synchronous, and its callers include async tasks: the store runs
//! its own small runtime for the client and the pool, and each call waits for its answer on a
//! plain channel, so it may be called from any thread, inside a runtime or not.

mod migrations;

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::{Keyspace, Lease, Reader, Store, StoreError, WriteSet};

pub use migrations::known_version as known_schema_version;

/// How long a node waits for the writer lock before its batch fails (answered AE, and retried by
/// the sender), so a stuck node cannot stall the others without anyone hearing of it.
const WRITER_LOCK_TIMEOUT: &str = "10s";

/// How long a new connection may take, and how long a call waits for a free one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Where and how to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// A libpq-style URL or key=value string, without the password.
    pub url: String,
    /// The password, from the environment or a file; never logged.
    pub password: Option<String>,
    /// Connections in the pool (readers, the writer, leases).
    pub pool_size: usize,
}

/// What is wrong with a `store.url`.
#[derive(Debug, thiserror::Error)]
pub enum UrlProblem {
    /// It does not read as a PostgreSQL URL or key=value string.
    #[error("not a PostgreSQL URL: {0}")]
    Unreadable(tokio_postgres::Error),
    /// It holds a password, which would then reach logs and process listings.
    #[error("holds a password: give it by store.password_env or store.password_file, so it reaches no log")]
    HoldsPassword,
}

impl PostgresOptions {
    /// Checks a URL as the config gives it: readable, and without a password.
    pub fn check_url(url: &str) -> Result<(), UrlProblem> {
        let config = tokio_postgres::Config::from_str(url).map_err(UrlProblem::Unreadable)?;
        if config.get_password().is_some() {
            return Err(UrlProblem::HoldsPassword);
        }
        Ok(())
    }
}

/// The PostgreSQL `Store` (see the module doc).
pub struct PostgresStore {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    /// The connection holding this node's open batch: its transaction holds the writer lock.
    writer: Arc<tokio::sync::Mutex<Option<Object>>>,
    /// The journal's partitions known to exist, as days since the epoch.
    partitions: Arc<Mutex<HashSet<i64>>>,
    last_seq: Arc<AtomicU64>,
    /// Why the last commit failed; cleared by the next that succeeds.
    failure: Arc<Mutex<Option<String>>>,
}

/// A key of PostgreSQL's advisory locks for `name`, the same in every process (FNV-1a).
pub(crate) fn advisory_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"tributary:".iter().chain(name.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// Maps a client or pool error to a `StoreError` naming the step.
pub(crate) fn database<E>(what: impl Into<String>) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let what = what.into();
    move |source| StoreError::database(what, source)
}

impl PostgresStore {
    /// Connects, brings the schema up to date (or refuses a newer one) and reads the journal's
    /// last sequence number.
    pub fn open(options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut config =
            tokio_postgres::Config::from_str(&options.url).map_err(database("read store.url"))?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("tributary");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("start the PostgreSQL client's threads", e))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(database("build the connection pool"))?;
        let store = PostgresStore {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
            writer: Arc::default(),
            partitions: Arc::default(),
            last_seq: Arc::default(),
            failure: Arc::default(),
        };
        let pool = store.pool.clone();
        let last = store.block(async move {
            let mut client = pool.get().await.map_err(database("connect"))?;
            migrations::migrate(&mut client).await?;
            let last: i64 = client
                .query_one("SELECT journal_last_seq FROM tributary_state", &[])
                .await
                .map_err(database("read the journal's last sequence number"))?
                .get(0);
            Ok(last as u64)
        })?;
        store.last_seq.store(last, Ordering::Release);
        Ok(store)
    }

    /// Runs `work` on the store's runtime and waits for it, from any thread.
    fn block<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = answer.send(work.await);
        });
        answered.recv().map_err(|_| StoreError::Closing)?
    }

    #[allow(clippy::type_complexity)]
    fn scan(
        &self,
        keyspace: Keyspace,
        from: Vec<u8>,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let pool = self.pool.clone();
        let keyspace = i16::from(keyspace.prefix());
        let upper = prefix_end(prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.block(async move {
            let client = pool.get().await.map_err(database("connect"))?;
            let rows = match upper {
                Some(upper) => {
                    let sql = "SELECT key, value FROM tributary_kv WHERE keyspace = $1 \
                               AND key >= $2 AND key < $3 ORDER BY key LIMIT $4";
                    let statement = client.prepare_cached(sql).await.map_err(database("scan"))?;
                    client
                        .query(&statement, &[&keyspace, &from, &upper, &limit])
                        .await
                }
                None => {
                    let sql = "SELECT key, value FROM tributary_kv WHERE keyspace = $1 \
                               AND key >= $2 ORDER BY key LIMIT $3";
                    let statement = client.prepare_cached(sql).await.map_err(database("scan"))?;
                    client.query(&statement, &[&keyspace, &from, &limit]).await
                }
            }
            .map_err(database("scan"))?;
            Ok(rows.into_iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Dropped maybe inside another runtime, where waiting for this one is not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The first key past every key that starts with `prefix`; None when there is none.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Opens a batch on a connection of its own: a transaction that holds the writer lock.
async fn begin(pool: &Pool) -> Result<Object, StoreError> {
    let client = pool.get().await.map_err(database("connect"))?;
    let begun = client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL synchronous_commit TO on; SET LOCAL lock_timeout = '{WRITER_LOCK_TIMEOUT}'; \
             SELECT pg_advisory_xact_lock({})",
            advisory_key("writer")
        ))
        .await;
    match begun {
        Ok(()) => Ok(client),
        Err(e) => {
            // Never back in the pool with a transaction open.
            drop(Object::take(client));
            Err(StoreError::database("take the writer lock", e))
        }
    }
}

/// The writes of one commit, last write of each key winning, as the columns the statements take.
#[derive(Default)]
struct Columns {
    put_keyspaces: Vec<i16>,
    put_keys: Vec<Vec<u8>>,
    put_values: Vec<Vec<u8>>,
    delete_keyspaces: Vec<i16>,
    delete_keys: Vec<Vec<u8>>,
    seqs: Vec<i64>,
    entries: Vec<Vec<u8>>,
}

impl Columns {
    fn of(writes: WriteSet) -> Columns {
        let mut last = BTreeMap::new();
        for (keyspace, key, value) in writes.ops {
            last.insert((i16::from(keyspace.prefix()), key), value);
        }
        let mut columns = Columns::default();
        for ((keyspace, key), value) in last {
            match value {
                Some(value) => {
                    columns.put_keyspaces.push(keyspace);
                    columns.put_keys.push(key);
                    columns.put_values.push(value);
                }
                None => {
                    columns.delete_keyspaces.push(keyspace);
                    columns.delete_keys.push(key);
                }
            }
        }
        for (seq, entry) in writes.journal {
            columns.seqs.push(seq as i64);
            columns.entries.push(entry);
        }
        columns
    }

    fn is_empty(&self) -> bool {
        self.put_keys.is_empty() && self.delete_keys.is_empty() && self.seqs.is_empty()
    }
}

const DAY_SECONDS: u64 = 86_400;

fn partition_name(day: i64) -> String {
    let date = chrono::DateTime::from_timestamp(day * DAY_SECONDS as i64, 0).unwrap_or_default();
    format!("tributary_journal_{}", date.format("%Y%m%d"))
}

/// The day a partition holds, from its name; None for a name not of ours.
fn partition_day(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("tributary_journal_")?;
    let date = chrono::NaiveDate::parse_from_str(digits, "%Y%m%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp() / DAY_SECONDS as i64)
}

/// Writes `columns` in the batch's transaction and commits it.
async fn write_and_commit(
    client: &Object,
    columns: &Columns,
    now: f64,
    day: i64,
    partition_known: bool,
) -> Result<(), StoreError> {
    if !columns.seqs.is_empty() && !partition_known {
        let from = chrono::DateTime::from_timestamp(day * DAY_SECONDS as i64, 0).unwrap_or_default();
        let to = from + chrono::Duration::days(1);
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF tributary_journal \
                 FOR VALUES FROM ('{}') TO ('{}')",
                partition_name(day),
                from.format("%Y-%m-%d %H:%M:%S+00"),
                to.format("%Y-%m-%d %H:%M:%S+00"),
            ))
            .await
            .map_err(database("create the journal's partition"))?;
    }
    if !columns.put_keys.is_empty() {
        let statement = client
            .prepare_cached(
                "INSERT INTO tributary_kv (keyspace, key, value) \
                 SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (keyspace, key) DO UPDATE SET value = EXCLUDED.value",
            )
            .await
            .map_err(database("write"))?;
        client
            .execute(
                &statement,
                &[&columns.put_keyspaces, &columns.put_keys, &columns.put_values],
            )
            .await
            .map_err(database("write"))?;
    }
    if !columns.delete_keys.is_empty() {
        let statement = client
            .prepare_cached(
                "DELETE FROM tributary_kv AS t \
                 USING unnest($1::smallint[], $2::bytea[]) AS d(keyspace, key) \
                 WHERE t.keyspace = d.keyspace AND t.key = d.key",
            )
            .await
            .map_err(database("delete"))?;
        client
            .execute(&statement, &[&columns.delete_keyspaces, &columns.delete_keys])
            .await
            .map_err(database("delete"))?;
    }
    if let Some(last) = columns.seqs.iter().max() {
        let statement = client
            .prepare_cached(
                "INSERT INTO tributary_journal (seq, written_at, entry) \
                 SELECT seq, to_timestamp($2::float8), entry \
                 FROM unnest($1::bigint[], $3::bytea[]) AS j(seq, entry)",
            )
            .await
            .map_err(database("journal"))?;
        client
            .execute(&statement, &[&columns.seqs, &now, &columns.entries])
            .await
            .map_err(database("journal"))?;
        client
            .execute(
                "UPDATE tributary_state SET journal_last_seq = greatest(journal_last_seq, $1)",
                &[last],
            )
            .await
            .map_err(database("journal"))?;
    }
    client.batch_execute("COMMIT").await.map_err(database("commit"))
}

impl Reader for PostgresStore {
    fn get(&self, keyspace: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let pool = self.pool.clone();
        let keyspace = i16::from(keyspace.prefix());
        let key = key.to_vec();
        self.block(async move {
            let client = pool.get().await.map_err(database("connect"))?;
            let statement = client
                .prepare_cached("SELECT value FROM tributary_kv WHERE keyspace = $1 AND key = $2")
                .await
                .map_err(database("read"))?;
            let row = client
                .query_opt(&statement, &[&keyspace, &key])
                .await
                .map_err(database("read"))?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn scan_prefix(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.scan(keyspace, prefix.to_vec(), prefix, limit)
    }
}

impl Store for PostgresStore {
    fn scan_prefix_after(
        &self,
        keyspace: Keyspace,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        // The first key past `after` is `after` followed by a zero byte.
        let mut from = after.to_vec();
        from.push(0);
        let from = from.max(prefix.to_vec());
        self.scan(keyspace, from, prefix, limit)
    }

    fn begin_batch(&self) -> Result<u64, StoreError> {
        let (pool, writer) = (self.pool.clone(), self.writer.clone());
        let last = self.block(async move {
            let mut open = writer.lock().await;
            if let Some(abandoned) = open.take() {
                // A batch begun and never committed: its transaction goes with its connection.
                drop(Object::take(abandoned));
            }
            let client = begin(&pool).await?;
            let last = client
                .query_one("SELECT journal_last_seq FROM tributary_state", &[])
                .await;
            match last {
                Ok(row) => {
                    *open = Some(client);
                    Ok(row.get::<_, i64>(0) as u64)
                }
                Err(e) => {
                    drop(Object::take(client));
                    Err(StoreError::database("read the journal's last sequence number", e))
                }
            }
        })?;
        self.last_seq.fetch_max(last, Ordering::AcqRel);
        Ok(last)
    }

    fn commit(&self, writes: WriteSet) -> Result<(), StoreError> {
        let columns = Columns::of(writes);
        let (pool, writer) = (self.pool.clone(), self.writer.clone());
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let day = (since_epoch.as_secs() / DAY_SECONDS) as i64;
        let partition_known = self.partitions.lock().map(|p| p.contains(&day)).unwrap_or(false);
        let last = columns.seqs.iter().max().map(|seq| *seq as u64);
        let result = self.block(async move {
            let mut open = writer.lock().await;
            let client = match open.take() {
                Some(client) => client,
                None if columns.is_empty() => return Ok(()),
                None => begin(&pool).await?,
            };
            let written =
                write_and_commit(&client, &columns, since_epoch.as_secs_f64(), day, partition_known).await;
            if written.is_err() {
                // Its transaction failed or its state is unknown: the connection goes.
                drop(Object::take(client));
            }
            written
        });
        if let Ok(mut failure) = self.failure.lock() {
            *failure = result.as_ref().err().map(ToString::to_string);
        }
        result?;
        if let Some(last) = last {
            self.last_seq.fetch_max(last, Ordering::AcqRel);
            if let Ok(mut partitions) = self.partitions.lock() {
                partitions.insert(day);
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        // Each commit was durable when it returned (synchronous_commit on).
        Ok(())
    }

    fn write_failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|failure| failure.clone())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn journal(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let pool = self.pool.clone();
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.block(async move {
            let client = pool.get().await.map_err(database("connect"))?;
            let statement = client
                .prepare_cached(
                    "SELECT seq, entry FROM tributary_journal WHERE seq >= $1 ORDER BY seq LIMIT $2",
                )
                .await
                .map_err(database("read the journal"))?;
            let rows = client
                .query(&statement, &[&from, &limit])
                .await
                .map_err(database("read the journal"))?;
            Ok(rows
                .into_iter()
                .map(|row| (row.get::<_, i64>(0) as u64, row.get(1)))
                .collect())
        })
    }

    fn journal_last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    fn drop_journal_before(&self, cutoff: SystemTime) -> Result<(usize, u64), StoreError> {
        let pool = self.pool.clone();
        let cutoff = cutoff.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let today = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            / DAY_SECONDS;
        let dropped = self.block(async move {
            let client = pool.get().await.map_err(database("connect"))?;
            let rows = client
                .query(
                    "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_inherits i \
                     JOIN pg_class c ON c.oid = i.inhrelid \
                     WHERE i.inhparent = 'tributary_journal'::regclass",
                    &[],
                )
                .await
                .map_err(database("list the journal's partitions"))?;
            let mut dropped = vec![];
            let mut bytes = 0u64;
            for row in rows {
                let name: String = row.get(0);
                let Some(day) = partition_day(&name) else {
                    continue;
                };
                // A whole day written before the cutoff, and never today's.
                let ends = (day as u64 + 1) * DAY_SECONDS;
                if ends > cutoff || day as u64 >= today {
                    continue;
                }
                client
                    .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                    .await
                    .map_err(database(format!("drop the journal partition {name}")))?;
                bytes += row.get::<_, i64>(1) as u64;
                dropped.push(day);
            }
            Ok((dropped, bytes))
        })?;
        if let Ok(mut partitions) = self.partitions.lock() {
            for day in &dropped.0 {
                partitions.remove(day);
            }
        }
        Ok((dropped.0.len(), dropped.1))
    }

    fn shared(&self) -> bool {
        true
    }

    fn try_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let pool = self.pool.clone();
        let key = advisory_key(name);
        self.block(async move {
            let client = pool.get().await.map_err(database("connect"))?;
            let granted: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(database("take a lease"))?
                .get(0);
            if !granted {
                return Ok(None);
            }
            // Held by this connection's session: it leaves the pool, and closing it frees the
            // lock, when the lease is dropped.
            let held: Box<dyn Any + Send> = Box::new(Object::take(client));
            Ok(Some(Lease::held(held)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_past_every_key_that_starts_with_it() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn partition_names_read_back_as_their_day() {
        for day in [0, 20_425, 30_000] {
            assert_eq!(partition_day(&partition_name(day)), Some(day));
        }
        assert_eq!(partition_day("tributary_journal"), None);
        assert_eq!(partition_day("other_20261203"), None);
    }

    #[test]
    fn a_url_with_a_password_is_refused() {
        assert!(PostgresOptions::check_url("postgres://tributary@db:5432/tributary").is_ok());
        assert!(PostgresOptions::check_url("host=db user=tributary dbname=t").is_ok());
        assert!(matches!(
            PostgresOptions::check_url("postgres://tributary:secret@db/tributary"),
            Err(UrlProblem::HoldsPassword)
        ));
        assert!(matches!(
            PostgresOptions::check_url("postgres://db:notaport/x"),
            Err(UrlProblem::Unreadable(_))
        ));
    }

    #[test]
    fn advisory_keys_are_stable_and_distinct() {
        assert_eq!(advisory_key("writer"), advisory_key("writer"));
        assert_ne!(advisory_key("writer"), advisory_key("schema"));
    }
}
