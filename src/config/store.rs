//! `[store]`: which store the engine keeps its data in. The embedded store (the default) is a
//! folder on this machine; PostgreSQL is one database several engine nodes share (README
//! "Scaling out"). The password for PostgreSQL comes from an environment variable or a file,
//! never from the config or the URL, so it reaches no log.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;

/// Which store the engine keeps its data in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// `data_dir` on this machine, for one engine process.
    #[default]
    Embedded,
    /// One PostgreSQL database, shared by every engine node that names it.
    Postgres,
}

/// Where PostgreSQL is and how to sign in, with the password read.
pub struct PostgresConnection {
    pub options: crate::store::PostgresOptions,
}

/// Why the PostgreSQL password could not be read at start.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("store.password_env names {0}, which is not set")]
    EnvUnset(String),
    #[error("store.password_file {}: {source}", path.display())]
    File { path: PathBuf, source: std::io::Error },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `embedded` (the default) or `postgres`.
    #[serde(default = "default_kind")]
    pub kind: Spanned<StoreKind>,
    /// PostgreSQL: the connection URL (`postgres://user@host:5432/database`), without a password.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// PostgreSQL: the environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    /// PostgreSQL: a file whose first line is the password (relative to the working directory).
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    /// PostgreSQL: connections each node keeps open at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: Spanned<usize>,
    /// Folder of the embedded store; relative paths are taken from the working directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Writes are refused (AE, 503) while the data folder's disk has less free space than this,
    /// so a full disk is met before a write fails half-way; 0 turns the floor off.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
    /// A log segment past this many bytes is checkpointed (written out as tables) and a new one
    /// started: smaller means more frequent checkpoints and journal files and less to replay on
    /// start; the memtable holds up to one segment of writes.
    #[serde(default = "default_log_segment_bytes")]
    pub log_segment_bytes: Spanned<u64>,
    /// Set by `serve --cut-damaged-log` only: recovery cuts the log at damage that intact
    /// records follow instead of refusing to open.
    #[serde(skip)]
    pub cut_damaged_log: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: default_kind(),
            url: None,
            password_env: None,
            password_file: None,
            pool_size: default_pool_size(),
            data_dir: default_data_dir(),
            min_free_bytes: default_min_free_bytes(),
            log_segment_bytes: default_log_segment_bytes(),
            cut_damaged_log: false,
        }
    }
}

impl StoreConfig {
    /// Checks the settings of the store named by `kind`; `located` places an error in the file.
    pub(crate) fn validate(
        &self,
        located: &dyn Fn(std::ops::Range<usize>, String, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let segment = &self.log_segment_bytes;
        if !(LOG_SEGMENT_BYTES_MIN..=LOG_SEGMENT_BYTES_MAX).contains(segment.get_ref()) {
            return Err(located(
                segment.span(),
                "store.log_segment_bytes".into(),
                format!(
                    "must be between {LOG_SEGMENT_BYTES_MIN} and {LOG_SEGMENT_BYTES_MAX} (64 KiB to 1 GiB)"
                ),
            ));
        }
        if *self.kind.get_ref() != StoreKind::Postgres {
            return Ok(());
        }
        let Some(url) = &self.url else {
            return Err(located(
                self.kind.span(),
                "store.url".into(),
                "kind = \"postgres\" needs url = \"postgres://user@host:5432/database\"".into(),
            ));
        };
        if let Err(problem) = crate::store::PostgresOptions::check_url(url.get_ref()) {
            return Err(located(url.span(), "store.url".into(), problem.to_string()));
        }
        if let (Some(_), Some(file)) = (&self.password_env, &self.password_file) {
            return Err(located(
                file.span(),
                "store.password_file".into(),
                "give the password by password_env or password_file, not both".into(),
            ));
        }
        if *self.pool_size.get_ref() < 2 {
            return Err(located(
                self.pool_size.span(),
                "store.pool_size".into(),
                "must be at least 2 (the writer and a reader)".into(),
            ));
        }
        Ok(())
    }

    /// PostgreSQL's connection, with the password read from where the config says; None for
    /// the embedded store.
    pub fn postgres(&self) -> Result<Option<PostgresConnection>, PasswordError> {
        if *self.kind.get_ref() != StoreKind::Postgres {
            return Ok(None);
        }
        let password = if let Some(name) = &self.password_env {
            Some(std::env::var(name.get_ref()).map_err(|_| PasswordError::EnvUnset(name.get_ref().clone()))?)
        } else if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path.get_ref()).map_err(|source| PasswordError::File {
                path: path.get_ref().clone(),
                source,
            })?;
            Some(text.lines().next().unwrap_or_default().to_string())
        } else {
            None
        };
        Ok(Some(PostgresConnection {
            options: crate::store::PostgresOptions {
                url: self.url.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default(),
                password,
                pool_size: *self.pool_size.get_ref(),
            },
        }))
    }

    /// The embedded store's options.
    pub fn options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            min_free_bytes: self.min_free_bytes,
            log_segment_bytes: *self.log_segment_bytes.get_ref(),
            damage: if self.cut_damaged_log {
                crate::store::LogDamage::Cut
            } else {
                crate::store::LogDamage::Refuse
            },
        }
    }
}

fn default_kind() -> Spanned<StoreKind> {
    Spanned::new(0..0, StoreKind::Embedded)
}

fn default_pool_size() -> Spanned<usize> {
    Spanned::new(0..0, 16)
}

fn default_min_free_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_log_segment_bytes() -> Spanned<u64> {
    Spanned::new(0..0, crate::store::DEFAULT_LOG_SEGMENT_BYTES)
}

/// The bounds of `store.log_segment_bytes`: below 64 KiB a checkpoint would come every few
/// commits; above 1 GiB the memtable (one segment of writes) and the replay on start grow too big.
const LOG_SEGMENT_BYTES_MIN: u64 = 64 * 1024;
const LOG_SEGMENT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
