//! Settings of a file destination, as written in the engine's config (TOML) and checked by
//! [`crate::from_config`].

use std::path::PathBuf;

use serde::Deserialize;

/// Where and how a file destination writes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The folder the files go to.
    pub dir: PathBuf,
    /// Create `dir` (and its parents) when it is missing. Default true; with false, a missing
    /// folder (an unmounted share, say) is a Transient failure until it is back.
    #[serde(default = "yes")]
    pub create_dir: bool,
    /// Flush each file and the folder entry to disk before reporting success, so a delivered
    /// file survives a crash. Default true.
    #[serde(default = "yes")]
    pub fsync: bool,
}

impl FileConfig {
    /// A config writing to `dir` with the defaults.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileConfig {
            dir: dir.into(),
            create_dir: true,
            fsync: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_create_the_folder_and_fsync() {
        let config: FileConfig = serde_json::from_str(r#"{"dir": "/var/spool/out"}"#).unwrap();
        assert_eq!(config, FileConfig::new("/var/spool/out"));
        assert!(config.create_dir && config.fsync);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = serde_json::from_str::<FileConfig>(r#"{"dir": "x", "path": "y"}"#).unwrap_err();
        assert!(error.to_string().contains("path"), "{error}");
    }
}
