-- Tributary's store on PostgreSQL, schema version 1 (crates/store/src/postgres/migrations.rs
-- applies it once, in a transaction, and records it in tributary_schema).

-- Every keyspace in one table: the keyspace's one-byte prefix (`Keyspace::prefix`), the key and
-- its value. bytea sorts byte by byte, as the embedded store's keys do, so prefix scans read in
-- the same order on both backends.
CREATE TABLE tributary_kv (
    keyspace smallint NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (keyspace, key)
);

-- The journal, one partition per UTC day (created by the engine as days begin): retention drops
-- whole partitions, never deletes rows.
CREATE TABLE tributary_journal (
    seq bigint NOT NULL,
    written_at timestamptz NOT NULL,
    entry bytea NOT NULL,
    PRIMARY KEY (seq, written_at)
) PARTITION BY RANGE (written_at);

-- The last journal sequence number handed out: kept apart from the journal, so retention that
-- drops every partition never lets a number be used twice.
CREATE TABLE tributary_state (
    id smallint PRIMARY KEY CHECK (id = 1),
    journal_last_seq bigint NOT NULL
);
INSERT INTO tributary_state (id, journal_last_seq) VALUES (1, 0);
