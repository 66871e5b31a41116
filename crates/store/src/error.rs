//! Why the store failed: the disk, the embedded database, the log, or a stored value that no
//! longer reads. Never a business rule: those are the domain's refusals.
//!
//! A failure that has a cause (an I/O error, the tree's error, the JSON error of a value that does not
//! read) keeps it as its `source()`, and its text follows the variant's own. Every text starts
//! with `store: `; the free-space floor's and a damaged log's are what operators see in an AE, on
//! `/health` and in the log, so they name the setting or the command that helps.

use std::path::PathBuf;

/// A failure of the storage layer itself (disk, corruption), never a business rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file or folder of the store could not be read, written, synced or listed.
    #[error("store: {what}: {source}")]
    Io {
        /// The file or folder, or the step (`wal sync`, `wal append`), concerned.
        what: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The embedded LSM tree failed to read or write its tables.
    #[error("store: the tree failed: {0}")]
    Tree(#[from] lsm_tree::Error),
    /// The tables in `dir` did not open (unreadable, or written by an unknown format).
    #[error("store: cannot open the store in {}: {source}", dir.display())]
    Open {
        /// The folder of the tables.
        dir: PathBuf,
        /// Why they did not open.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process has the store in `dir` open.
    #[error(
        "store: the store in {} is in use by another process (its `lock` file is held): stop \
         that engine, or give this one another data_dir",
        dir.display()
    )]
    InUse {
        /// The data folder.
        dir: PathBuf,
    },
    /// Recovery found damage in the log that intact records, or later segments, follow.
    #[error(
        "store: {}: the log is damaged at byte {at} of {len}, and {}: they may hold \
         acknowledged messages, so the store will not cut them off. Keep a copy of the data \
         folder. If the machine lost power (records after the last sync were never \
         acknowledged), start once with `serve --cut-damaged-log` to cut the log there",
        segment.display(),
        what_follows(*intact_after)
    )]
    DamagedLog {
        /// The segment file.
        segment: PathBuf,
        /// Where the first damaged record starts.
        at: usize,
        /// The size of the segment file.
        len: usize,
        /// How many intact records follow the damage in this segment (0: later segments do).
        intact_after: usize,
    },
    /// The data folder's disk has less free space than the configured floor.
    #[error(
        "store: only {free} bytes free on the disk of {}, below the floor of {floor} \
         (store.min_free_bytes): writes are refused until space is freed",
        dir.display()
    )]
    DiskFloor {
        /// Bytes still free for an unprivileged process.
        free: u64,
        /// `store.min_free_bytes`.
        floor: u64,
        /// The folder whose disk it is (the log's).
        dir: PathBuf,
    },
    /// A stored value that does not read back as what was written there.
    #[error("store: {what}: {source}")]
    Corrupt {
        /// Which value (`patient 12 is not valid JSON`).
        what: String,
        /// Why it does not read.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// PostgreSQL refused or could not be reached (`what` names the step: `connect`, `commit`).
    #[error("store: PostgreSQL: {what}: {}", chain(source.as_ref()))]
    Database {
        /// The step that failed.
        what: String,
        /// The client's or the pool's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database's schema was migrated by a newer engine than this one.
    #[error(
        "store: the PostgreSQL schema is at version {found}, newer than the {known} this engine \
         knows: run the newer engine, or restore a database of this version"
    )]
    SchemaTooNew {
        /// The version recorded in `tributary_schema`.
        found: i32,
        /// The newest this engine has migrations for.
        known: i32,
    },
    /// A failure met on the way to the store rather than in it (the engine stopping, a commit
    /// that did not happen), for a caller that answers in `StoreError`s.
    #[error("store: {0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
    /// The store is being closed: nothing more is written.
    #[error("store: the store is closing")]
    Closing,
    /// The thread that writes checkpoints out as tables has stopped.
    #[error("store: the store maintenance thread has stopped")]
    MaintenanceStopped,
    /// A thread panicked while holding the log.
    #[error("store: the log lock is poisoned")]
    Poisoned,
}

impl StoreError {
    /// A stored value that does not read: `what` says which (`member 12 is not valid`), `source`
    /// why (the JSON error).
    pub fn corrupt(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            source: source.into(),
        }
    }

    /// A failure met on the way to the store: `cause` is an error, or a text.
    pub fn other(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
        StoreError::Other(cause.into())
    }

    /// A PostgreSQL step (`what`) that failed.
    pub fn database(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Database {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// A file operation on `what` (a path, or the step) that failed.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            what: what.into(),
            source,
        }
    }
}

/// An error's text followed by its causes' (a client error's own text is often only `db error`).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let more = next.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = next.source();
    }
    text
}

fn what_follows(intact_after: usize) -> String {
    if intact_after > 0 {
        format!("{intact_after} intact record(s) follow it")
    } else {
        "later segments follow it".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::path::Path;

    use super::*;

    // Operators read these in an AE, on /health and in the log; tests over the wire look for
    // their words (`min_free_bytes`, `below the floor`, `intact record(s) follow it`).
    #[test]
    fn the_texts_operators_see_name_what_helps() {
        let floor = StoreError::DiskFloor {
            free: 10,
            floor: 20,
            dir: PathBuf::from("/data/journal"),
        };
        assert_eq!(
            floor.to_string(),
            "store: only 10 bytes free on the disk of /data/journal, below the floor of 20 \
             (store.min_free_bytes): writes are refused until space is freed"
        );
        let damaged = |intact_after| StoreError::DamagedLog {
            segment: PathBuf::from("/data/journal/000000000001.wal"),
            at: 40,
            len: 90,
            intact_after,
        };
        let text = damaged(2).to_string();
        assert!(
            text.starts_with(
                "store: /data/journal/000000000001.wal: the log is damaged at byte 40 of 90, and 2 \
                 intact record(s) follow it: they may hold acknowledged messages"
            ),
            "{text}"
        );
        assert!(text.ends_with("start once with `serve --cut-damaged-log` to cut the log there"));
        assert!(
            damaged(0)
                .to_string()
                .contains(", and later segments follow it: ")
        );
    }

    #[test]
    fn the_cause_is_kept() {
        let e = StoreError::io(
            Path::new("/data/journal").display().to_string(),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.to_string(), "store: /data/journal: permission denied");
        let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::PermissionDenied)
        );

        let json = "{".parse::<u8>().unwrap_err();
        let e = StoreError::corrupt("patient 7 is not valid JSON", json.clone());
        assert_eq!(
            e.to_string(),
            format!("store: patient 7 is not valid JSON: {json}")
        );
        assert!(e.source().is_some_and(|s| s.is::<std::num::ParseIntError>()));
    }
}
