//! [`FileOutbound`]: the outbound adapter, one file per envelope, written atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tributary_adapter_core::{BoxFuture, DeliveryError, Envelope, Outbound};

use crate::config::FileConfig;
use crate::name::{check_id, extension_for};

/// Tells apart the temporary files of deliveries running at the same time.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes each envelope's payload to `<dir>/<id>.<ext>`: to a temporary file first, then renamed
/// over the final name, so a reader sees the old file or the whole new one, never a part. The
/// same id always gives the same name, so a retry replaces what an earlier attempt wrote.
/// Returns the path written, as UTF-8 bytes.
#[derive(Debug)]
pub struct FileOutbound {
    dir: PathBuf,
    create_dir: bool,
    fsync: bool,
}

impl FileOutbound {
    /// Checks `config` and builds the adapter; the error names the setting that is wrong.
    pub fn from_config(config: &FileConfig) -> Result<FileOutbound, String> {
        if config.dir.as_os_str().is_empty() {
            return Err("dir: is empty".into());
        }
        if config.dir.exists() && !config.dir.is_dir() {
            return Err(format!(
                "dir: `{}` exists and is not a folder",
                config.dir.display()
            ));
        }
        Ok(FileOutbound {
            dir: config.dir.clone(),
            create_dir: config.create_dir,
            fsync: config.fsync,
        })
    }

    /// The folder this adapter writes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn write(&self, envelope: &Envelope) -> Result<Bytes, DeliveryError> {
        check_id(&envelope.id).map_err(DeliveryError::Permanent)?;
        let name = format!("{}.{}", envelope.id, extension_for(&envelope.content_type));
        let dir = self.dir.clone();
        let payload = envelope.payload.clone();
        let (create_dir, fsync) = (self.create_dir, self.fsync);
        let written =
            tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &payload, create_dir, fsync))
                .await
                .map_err(|error| DeliveryError::Transient(format!("the file write task failed: {error}")))?;
        // Nothing here is the envelope's fault: a full disk, a missing share or a permission is
        // fixed outside, and the same envelope then goes through.
        let path = written.map_err(|(path, error)| {
            DeliveryError::Transient(format!("cannot write {}: {error}", path.display()))
        })?;
        Ok(Bytes::from(path.to_string_lossy().into_owned()))
    }
}

impl Outbound for FileOutbound {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn deliver<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Bytes, DeliveryError>> {
        Box::pin(self.write(envelope))
    }
}

/// Temporary file, fsync, rename, fsync of the folder: after a crash the final name holds either
/// the previous content or the new content whole. A failure removes the temporary file.
fn write_atomically(
    dir: &Path,
    name: &str,
    payload: &[u8],
    create_dir: bool,
    fsync: bool,
) -> Result<PathBuf, (PathBuf, io::Error)> {
    if create_dir {
        fs::create_dir_all(dir).map_err(|error| (dir.to_path_buf(), error))?;
    }
    let target = dir.join(name);
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let attempt = || -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(payload)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&temp, &target)?;
        if fsync {
            // The rename is durable only once the folder's entry is on disk too.
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    match attempt() {
        Ok(()) => Ok(target),
        Err(error) => {
            let _ = fs::remove_file(&temp);
            Err((target, error))
        }
    }
}
