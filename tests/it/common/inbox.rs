//! A folder the `file` adapter delivers into, read as the gateway behind it would have received
//! it: `<destination>-<cause>-<n>.txt` files in the order their causes were committed.

use std::path::PathBuf;
use std::time::Duration;

/// A folder the file adapter delivers notifications into: what a gateway would have received.
pub struct Inbox {
    pub dir: PathBuf,
}

impl Inbox {
    /// Every message delivered so far, in the order their causes were committed.
    pub fn received(&self) -> Vec<String> {
        let mut files: Vec<(u64, u32, PathBuf)> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let stem = name.strip_suffix(".txt")?;
                        let mut parts = stem.rsplitn(3, '-');
                        let n = parts.next()?.parse().ok()?;
                        let cause = parts.next()?.parse().ok()?;
                        Some((cause, n, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            // A file is renamed into place whole; one that cannot be read now is read next time.
            .filter_map(|(_, _, path)| std::fs::read_to_string(path).ok())
            .collect()
    }

    /// Waits until at least `n` messages are there (panics after 20 s) and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} messages arrived in {}, not {n}: {received:?}",
                received.len(),
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
