//! The PostgreSQL schema's versions: the migrations kept in `crates/store/migrations/postgres`,
//! applied in order at start, each once and in its own transaction, and recorded in
//! `tributary_schema`. Nodes starting together take turns (an advisory lock), and an engine
//! refuses a database whose schema is newer than the newest migration it knows.

use tokio_postgres::Client;

use super::{advisory_key, database};
use crate::StoreError;

/// Every migration, oldest first: version and SQL. A new one is added at the end, never edited
/// once released.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../../migrations/postgres/0001_store.sql"))];

/// The newest PostgreSQL schema version this engine knows.
pub fn known_version() -> i32 {
    MIGRATIONS.last().map(|(version, _)| *version).unwrap_or(0)
}

/// Brings the schema up to [`known_version`], or refuses one that is newer. Returns the version
/// found before.
pub(crate) async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let lock = advisory_key("schema");
    client
        .execute("SELECT pg_advisory_lock($1)", &[&lock])
        .await
        .map_err(database("take the schema lock"))?;
    let result = apply(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&lock])
        .await
        .map_err(database("release the schema lock"));
    let found = result?;
    unlocked?;
    Ok(found)
}

async fn apply(client: &mut Client) -> Result<i32, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS tributary_schema (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(database("create tributary_schema"))?;
    let found: i32 = client
        .query_one("SELECT coalesce(max(version), 0) FROM tributary_schema", &[])
        .await
        .map_err(database("read the schema version"))?
        .get(0);
    if found > known_version() {
        return Err(StoreError::SchemaTooNew {
            found,
            known: known_version(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        let what = format!("apply schema migration {version}");
        let tx = client.transaction().await.map_err(database(&what))?;
        tx.batch_execute(sql).await.map_err(database(&what))?;
        tx.execute("INSERT INTO tributary_schema (version) VALUES ($1)", &[version])
            .await
            .map_err(database(&what))?;
        tx.commit().await.map_err(database(&what))?;
        tracing::info!(version, "applied a PostgreSQL schema migration");
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_rise_one_at_a_time_from_one() {
        for (i, (version, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i32 + 1);
            assert!(!sql.trim().is_empty());
        }
        assert_eq!(known_version(), MIGRATIONS.len() as i32);
    }
}
