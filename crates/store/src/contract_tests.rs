//! The `Store` contract, one set of tests run against every backend: the in-memory one, the
//! embedded store and PostgreSQL (a throwaway server, `test_postgres`). What only one backend
//! has (a torn log, dropped partitions, the writer lock across processes) is tested beside.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::test_postgres::TestServer;
use crate::{
    EmbeddedStore, Keyspace, MemoryStore, Overlay, PostgresOptions, PostgresStore, Reader, Store, StoreError,
    Write, WriteSet,
};

/// A backend under test: makes a fresh store, and opens it again where that means anything.
trait Backend {
    fn name(&self) -> &'static str;
    fn fresh(&mut self) -> Arc<dyn Store>;
    /// The store last made, opened again (None: it keeps nothing across an open).
    fn reopen(&mut self) -> Option<Arc<dyn Store>>;
}

struct Memory;

impl Backend for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn fresh(&mut self) -> Arc<dyn Store> {
        Arc::new(MemoryStore::new())
    }
    fn reopen(&mut self) -> Option<Arc<dyn Store>> {
        None
    }
}

#[derive(Default)]
struct Embedded {
    dirs: Vec<tempfile::TempDir>,
}

impl Backend for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }
    fn fresh(&mut self) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        self.dirs.push(dir);
        store
    }
    fn reopen(&mut self) -> Option<Arc<dyn Store>> {
        let dir = self.dirs.last()?;
        Some(Arc::new(EmbeddedStore::open(dir.path()).unwrap()))
    }
}

#[derive(Default)]
struct Postgres {
    url: Option<String>,
}

fn postgres_options(url: &str) -> PostgresOptions {
    PostgresOptions {
        url: url.to_string(),
        password: None,
        pool_size: 4,
    }
}

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn fresh(&mut self) -> Arc<dyn Store> {
        let url = TestServer::shared().new_database();
        let store = Arc::new(PostgresStore::open(&postgres_options(&url)).unwrap());
        self.url = Some(url);
        store
    }
    fn reopen(&mut self) -> Option<Arc<dyn Store>> {
        let url = self.url.as_ref()?;
        Some(Arc::new(PostgresStore::open(&postgres_options(url)).unwrap()))
    }
}

fn backends() -> Vec<Box<dyn Backend>> {
    vec![
        Box::new(Memory),
        Box::new(Embedded::default()),
        Box::new(Postgres::default()),
    ]
}

fn put(keyspace: Keyspace, key: &[u8], value: &[u8]) -> Write {
    (keyspace, key.to_vec(), Some(value.to_vec()))
}

fn keys(found: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Vec<u8>> {
    found.into_iter().map(|(key, _)| key).collect()
}

fn ops(ops: Vec<Write>) -> WriteSet {
    WriteSet { ops, journal: vec![] }
}

/// Runs `check` against a fresh store of every backend, naming the backend when it fails.
fn on_every_backend(check: impl Fn(&mut dyn Backend, Arc<dyn Store>)) {
    for mut backend in backends() {
        let store = backend.fresh();
        let name = backend.name();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(backend.as_mut(), store)));
        if let Err(panic) = outcome {
            eprintln!("failed on the {name} backend");
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn a_commit_is_read_back_the_later_write_wins_and_a_delete_removes() {
    on_every_backend(|_, store| {
        assert_eq!(store.get(Keyspace::Patient, b"p1").unwrap(), None);
        store
            .commit(ops(vec![
                put(Keyspace::Patient, b"p1", b"one"),
                put(Keyspace::Patient, b"p1", b"two"),
                put(Keyspace::Patient, b"p2", b""),
            ]))
            .unwrap();
        assert_eq!(
            store.get(Keyspace::Patient, b"p1").unwrap(),
            Some(b"two".to_vec())
        );
        assert_eq!(
            store.get(Keyspace::Patient, b"p2").unwrap(),
            Some(vec![]),
            "an empty value"
        );
        assert_eq!(
            store.get(Keyspace::Dedupe, b"p1").unwrap(),
            None,
            "keyspaces are apart"
        );
        store
            .commit(ops(vec![
                (Keyspace::Patient, b"p1".to_vec(), None),
                put(Keyspace::Patient, b"p2", b"back"),
                (Keyspace::Patient, b"p2".to_vec(), None),
                put(Keyspace::Patient, b"p2", b"again"),
            ]))
            .unwrap();
        assert_eq!(store.get(Keyspace::Patient, b"p1").unwrap(), None);
        assert_eq!(
            store.get(Keyspace::Patient, b"p2").unwrap(),
            Some(b"again".to_vec())
        );
    });
}

#[test]
fn prefix_scans_read_in_byte_order_inside_their_keyspace() {
    on_every_backend(|_, store| {
        store
            .commit(ops(vec![
                put(Keyspace::EmailIndex, b"b\x001", b""),
                put(Keyspace::EmailIndex, b"a\x002", b"2"),
                put(Keyspace::EmailIndex, b"a\x001", b"1"),
                put(Keyspace::EmailIndex, b"ab\x003", b""),
                put(Keyspace::EmailIndex, b"a\xff\xff", b""),
                put(Keyspace::EmailIndex, b"\xff", b""),
                put(Keyspace::PhoneIndex, b"a\x009", b""),
            ]))
            .unwrap();
        let scan =
            |prefix: &[u8], limit| keys(store.scan_prefix(Keyspace::EmailIndex, prefix, limit).unwrap());
        assert_eq!(scan(b"a\x00", 10), [b"a\x001".to_vec(), b"a\x002".to_vec()]);
        assert_eq!(
            scan(b"a", 10),
            [
                b"a\x001".to_vec(),
                b"a\x002".to_vec(),
                b"ab\x003".to_vec(),
                b"a\xff\xff".to_vec()
            ]
        );
        assert_eq!(scan(b"a\xff", 10), [b"a\xff\xff".to_vec()]);
        assert_eq!(scan(b"", 10).len(), 6);
        assert_eq!(scan(b"", usize::MAX).last(), Some(&b"\xff".to_vec()));
        assert_eq!(scan(b"a", 1), [b"a\x001".to_vec()]);
        assert!(scan(b"a", 0).is_empty());
        assert!(scan(b"c", 10).is_empty());
        assert_eq!(
            store.scan_prefix(Keyspace::EmailIndex, b"a\x00", 1).unwrap(),
            [(b"a\x001".to_vec(), b"1".to_vec())],
            "with the values"
        );
        let after = |prefix: &[u8], after: &[u8]| {
            keys(
                store
                    .scan_prefix_after(Keyspace::EmailIndex, prefix, after, 10)
                    .unwrap(),
            )
        };
        assert_eq!(
            after(b"a", b"a\x001"),
            [b"a\x002".to_vec(), b"ab\x003".to_vec(), b"a\xff\xff".to_vec()]
        );
        assert_eq!(
            after(b"a", b"a"),
            scan(b"a", 10),
            "after the prefix itself: all of it"
        );
        assert!(after(b"a\x00", b"a\x002").is_empty());
        assert!(after(b"", b"\xff").is_empty());
    });
}

#[test]
fn the_journal_reads_in_order_from_a_sequence_number_and_keeps_its_last() {
    on_every_backend(|backend, store| {
        assert_eq!(store.journal_last_seq(), 0);
        assert_eq!(store.begin_batch().unwrap(), 0);
        for seq in [1u64, 2, 3] {
            store
                .commit(WriteSet {
                    ops: vec![put(Keyspace::Dedupe, format!("m{seq}").as_bytes(), b"AA")],
                    journal: vec![(seq, format!("entry {seq}").into_bytes())],
                })
                .unwrap();
        }
        store.checkpoint().unwrap();
        store
            .commit(WriteSet {
                ops: vec![],
                journal: vec![(4, b"entry 4".to_vec()), (5, b"entry 5".to_vec())],
            })
            .unwrap();
        store.sync().unwrap();
        let seqs = |store: &dyn Store, from, limit| -> Vec<u64> {
            store
                .journal(from, limit)
                .unwrap()
                .iter()
                .map(|(s, _)| *s)
                .collect()
        };
        assert_eq!(seqs(store.as_ref(), 0, 100), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(store.as_ref(), 2, 2), [2, 3]);
        assert!(seqs(store.as_ref(), 6, 100).is_empty());
        assert_eq!(store.journal(1, 1).unwrap(), [(1, b"entry 1".to_vec())]);
        assert_eq!(store.journal_last_seq(), 5);
        assert_eq!(store.begin_batch().unwrap(), 5);
        store.commit(WriteSet::default()).unwrap();
        drop(store);
        if let Some(store) = backend.reopen() {
            assert_eq!(store.journal_last_seq(), 5, "{}: after an open", backend.name());
            assert_eq!(seqs(store.as_ref(), 0, 100), [1, 2, 3, 4, 5]);
            assert_eq!(store.get(Keyspace::Dedupe, b"m3").unwrap(), Some(b"AA".to_vec()));
        }
    });
}

#[test]
fn overlays_stack_on_every_backend() {
    on_every_backend(|_, store| {
        store
            .commit(ops(vec![put(Keyspace::Member, b"m1", b"old")]))
            .unwrap();
        let mut tx = Overlay::new(store.as_ref());
        tx.put(Keyspace::Member, b"m1".to_vec(), b"new".to_vec());
        tx.delete(Keyspace::Member, b"m2".to_vec());
        assert_eq!(tx.get(Keyspace::Member, b"m1").unwrap(), Some(b"new".to_vec()));
        assert_eq!(store.get(Keyspace::Member, b"m1").unwrap(), Some(b"old".to_vec()));
        store.commit(tx.into_writes()).unwrap();
        assert_eq!(store.get(Keyspace::Member, b"m1").unwrap(), Some(b"new".to_vec()));
    });
}

#[test]
fn retention_never_drops_what_is_being_written() {
    on_every_backend(|_, store| {
        store
            .commit(WriteSet {
                ops: vec![put(Keyspace::Patient, b"p1", b"x")],
                journal: vec![(1, b"entry 1".to_vec())],
            })
            .unwrap();
        store.sync().unwrap();
        assert_eq!(store.drop_journal_before(SystemTime::UNIX_EPOCH).unwrap(), (0, 0));
        store
            .drop_journal_before(SystemTime::now() + Duration::from_secs(86_400))
            .unwrap();
        assert_eq!(store.journal(0, 10).unwrap(), [(1, b"entry 1".to_vec())]);
        assert_eq!(store.get(Keyspace::Patient, b"p1").unwrap(), Some(b"x".to_vec()));
    });
}

#[test]
fn a_store_of_one_process_grants_every_lease() {
    for mut backend in [
        Box::new(Memory) as Box<dyn Backend>,
        Box::new(Embedded::default()),
    ] {
        let store = backend.fresh();
        assert!(!store.shared());
        let first = store.try_lease("outbox:pix").unwrap();
        assert!(first.is_some() && store.try_lease("outbox:pix").unwrap().is_some());
    }
}

// PostgreSQL only: what several processes on one database need.

/// Two stores on one new database, as two nodes have them, and the database's name.
fn two_nodes() -> (PostgresStore, PostgresStore, String) {
    let url = TestServer::shared().new_database();
    let a = PostgresStore::open(&postgres_options(&url)).unwrap();
    let b = PostgresStore::open(&postgres_options(&url)).unwrap();
    let name = url.rsplit('/').next().unwrap().to_string();
    (a, b, name)
}

fn run_sql(database: &str, sql: &str) {
    TestServer::shared().run_sql(database, sql).unwrap();
}

#[test]
fn postgres_a_lease_is_held_by_one_node_until_dropped() {
    let (a, b, _) = two_nodes();
    assert!(a.shared());
    let held = a.try_lease("outbox:pix").unwrap().expect("free at first");
    assert!(
        b.try_lease("outbox:pix").unwrap().is_none(),
        "held by the other node"
    );
    assert!(b.try_lease("job:news").unwrap().is_some(), "another name is free");
    drop(held);
    assert!(b.try_lease("outbox:pix").unwrap().is_some(), "freed when dropped");
}

#[test]
fn postgres_batches_of_two_nodes_take_turns_and_number_on() {
    let (a, b, _) = two_nodes();
    assert_eq!(a.begin_batch().unwrap(), 0);
    let b = Arc::new(b);
    let waiting = std::thread::spawn({
        let b = b.clone();
        move || {
            // Waits for a's batch: then it sees what a committed.
            let last = b.begin_batch().unwrap();
            let seen = b.get(Keyspace::Patient, b"p1").unwrap();
            b.commit(WriteSet {
                ops: vec![put(Keyspace::Patient, b"p1", b"from b")],
                journal: vec![(last + 1, b"b".to_vec())],
            })
            .unwrap();
            (last, seen)
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "b waits while a's batch is open");
    a.commit(WriteSet {
        ops: vec![put(Keyspace::Patient, b"p1", b"from a")],
        journal: vec![(1, b"a".to_vec())],
    })
    .unwrap();
    let (last, seen) = waiting.join().unwrap();
    assert_eq!(last, 1);
    assert_eq!(seen, Some(b"from a".to_vec()));
    assert_eq!(a.get(Keyspace::Patient, b"p1").unwrap(), Some(b"from b".to_vec()));
    assert_eq!(
        a.journal(0, 10).unwrap(),
        [(1, b"a".to_vec()), (2, b"b".to_vec())]
    );
    assert_eq!(a.begin_batch().unwrap(), 2, "a's next batch numbers on from b's");
    a.commit(WriteSet::default()).unwrap();
}

#[test]
fn postgres_a_failed_commit_leaves_nothing_and_the_next_one_works() {
    let (a, _, _) = two_nodes();
    a.begin_batch().unwrap();
    let duplicate = WriteSet {
        ops: vec![put(Keyspace::Patient, b"p1", b"x")],
        journal: vec![(1, b"one".to_vec()), (1, b"again".to_vec())],
    };
    // The same sequence number twice breaks the journal's key: the whole batch is refused.
    assert!(matches!(a.commit(duplicate), Err(StoreError::Database { .. })));
    assert!(a.write_failure().is_some());
    assert_eq!(a.get(Keyspace::Patient, b"p1").unwrap(), None);
    a.commit(WriteSet {
        ops: vec![put(Keyspace::Patient, b"p1", b"y")],
        journal: vec![(1, b"one".to_vec())],
    })
    .unwrap();
    assert_eq!(a.write_failure(), None);
    assert_eq!(a.get(Keyspace::Patient, b"p1").unwrap(), Some(b"y".to_vec()));
}

#[test]
fn postgres_retention_drops_whole_days_before_the_cutoff() {
    let (a, _, database) = two_nodes();
    a.commit(WriteSet {
        ops: vec![],
        journal: vec![(3, b"today".to_vec())],
    })
    .unwrap();
    // Two old days, as an engine running then would have written them.
    let sql = "CREATE TABLE tributary_journal_20200101 PARTITION OF tributary_journal \
                   FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2020-01-02 00:00:00+00');
               CREATE TABLE tributary_journal_20200102 PARTITION OF tributary_journal \
                   FOR VALUES FROM ('2020-01-02 00:00:00+00') TO ('2020-01-03 00:00:00+00');
               INSERT INTO tributary_journal VALUES (1, '2020-01-01 12:00:00+00', 'one'),
                   (2, '2020-01-02 12:00:00+00', 'two');";
    run_sql(&database, sql);
    assert_eq!(a.journal(0, 10).unwrap().len(), 3);
    let jan_2_noon = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_966_400);
    let (dropped, bytes) = a.drop_journal_before(jan_2_noon).unwrap();
    assert_eq!(dropped, 1, "only the day that ended before the cutoff");
    assert!(bytes > 0);
    assert_eq!(
        a.journal(0, 10).unwrap(),
        [(2, b"two".to_vec()), (3, b"today".to_vec())]
    );
    let (dropped, _) = a
        .drop_journal_before(SystemTime::now() + Duration::from_secs(86_400))
        .unwrap();
    assert_eq!(dropped, 1, "never today's");
    assert_eq!(a.journal(0, 10).unwrap(), [(3, b"today".to_vec())]);
    assert_eq!(a.begin_batch().unwrap(), 3, "numbers are never reused");
    a.commit(WriteSet::default()).unwrap();
}

#[test]
fn postgres_a_newer_schema_is_refused() {
    let (a, _, database) = two_nodes();
    drop(a);
    run_sql(&database, "INSERT INTO tributary_schema (version) VALUES (99)");
    match PostgresStore::open(&postgres_options(&TestServer::shared().url(&database))) {
        Err(e @ StoreError::SchemaTooNew { found: 99, .. }) => {
            assert!(e.to_string().contains("newer than the"), "{e}")
        }
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("opened"),
    }
}

#[test]
fn postgres_unreachable_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://tributary@127.0.0.1:{port}/nothing");
    match PostgresStore::open(&postgres_options(&url)) {
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with("store: PostgreSQL: connect: "), "{text}");
            assert!(text.contains("refused"), "{text}");
        }
        Ok(_) => panic!("opened with no server"),
    }
}
