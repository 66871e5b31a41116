//! The mappings in force, and their reload: on SIGHUP or when a file in the mappings folder
//! changes. A reload that fails (a broken file, a channel's mapping gone) keeps the previous
//! mappings running and logs why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::{Config, ConfigError, MessageKind};
use crate::mapping::{LoadError, MappingSet};

/// Why the mappings did not load: a file that does not compile, or a channel or destination
/// whose mapping does not fit it.
#[derive(Debug, thiserror::Error)]
pub enum MappingsError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Check(#[from] ConfigError),
}

/// How often the mappings folder is looked at for changes.
const POLL: Duration = Duration::from_secs(1);

pub struct LiveMappings {
    dir: PathBuf,
    /// The config the mappings are checked against (its channels), replaced by a reload.
    config: RwLock<Config>,
    /// What each kind of inbound message accepts from a channel's mapping.
    kinds: Vec<MessageKind>,
    current: RwLock<Arc<MappingSet>>,
}

impl LiveMappings {
    /// Loads the mappings and checks them against the channels (`kinds`: what each kind of
    /// inbound message accepts from a channel's mapping).
    pub fn load(config: &Config, kinds: Vec<MessageKind>) -> Result<LiveMappings, MappingsError> {
        let set = load_checked(config, &kinds)?;
        Ok(LiveMappings {
            dir: config.mappings.dir.clone(),
            config: RwLock::new(config.clone()),
            kinds,
            current: RwLock::new(Arc::new(set)),
        })
    }

    pub fn current(&self) -> Arc<MappingSet> {
        self.current.read().expect("mappings lock").clone()
    }

    /// Loads the folder again; on any problem the mappings in force stay.
    pub fn reload(&self) -> Result<(), MappingsError> {
        let config = self.config.read().expect("mappings config lock").clone();
        let set = load_checked(&config, &self.kinds)?;
        *self.current.write().expect("mappings lock") = Arc::new(set);
        Ok(())
    }

    /// The mappings folder loaded and checked against a reloaded config's channels; nothing is
    /// put in force.
    pub fn check(&self, config: &Config) -> Result<MappingSet, MappingsError> {
        load_checked(config, &self.kinds)
    }

    /// Puts a reloaded config in force with the mappings `check` loaded for it: later reloads
    /// of the folder are checked against its channels.
    pub fn reconfigure(&self, config: &Config, mappings: MappingSet) {
        *self.config.write().expect("mappings config lock") = config.clone();
        *self.current.write().expect("mappings lock") = Arc::new(mappings);
    }

    /// Reloads on SIGHUP and when the folder changes, until `stopped` resolves.
    pub async fn watch(self: Arc<Self>, stopped: impl std::future::Future<Output = ()>) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => Some(hangup),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler; reloading on file changes only");
                None
            }
        };
        let mut seen = folder_state(&self.dir);
        let mut poll = tokio::time::interval(POLL);
        tokio::pin!(stopped);
        loop {
            let why = tokio::select! {
                _ = &mut stopped => return,
                _ = async { hangup.as_mut().expect("checked").recv().await }, if hangup.is_some() => "SIGHUP",
                _ = poll.tick() => {
                    let now = folder_state(&self.dir);
                    if now == seen { continue; }
                    seen = now;
                    "a file changed"
                }
            };
            match self.reload() {
                Ok(()) => tracing::info!(reason = why, "mappings reloaded"),
                Err(e) => {
                    tracing::error!(reason = why, error = %e, "mappings not reloaded; the previous ones stay in force")
                }
            }
        }
    }
}

fn load_checked(config: &Config, kinds: &[MessageKind]) -> Result<MappingSet, MappingsError> {
    let set = MappingSet::load(&config.mappings.dir)?;
    config.check_mappings(&set, kinds)?;
    Ok(set)
}

/// Every file below `dir` with its size and modification time, sorted: a change to any of them
/// changes this.
fn folder_state(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut state = vec![];
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                folders.push(path);
            } else {
                state.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    state.sort();
    state
}
