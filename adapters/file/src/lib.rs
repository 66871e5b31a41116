//! The file outbound adapter: each envelope becomes one file in a folder, for systems that pick
//! up files (a shared drive, an SFTP drop folder synchronised by another tool).
//!
//! - `config`: [`FileConfig`], the settings as written in the engine's config.
//! - `name`: [`extension_for`] (content type to extension) and [`check_id`] (ids that may
//!   become a file name).
//! - `outbound`: [`FileOutbound`], the [`Outbound`](tributary_adapter_core::Outbound) adapter.
//!
//! # What is written
//!
//! The payload, byte for byte, to `<dir>/<id>.<ext>`, where `ext` follows the content type:
//! `hl7` (HL7 v2), `json` (`application/json`, `*+json`), `xml` (`application/xml`, `text/xml`,
//! `*+xml`), `eml` (`message/rfc822`), `txt` (other `text/*`), `bin` (anything else). The file
//! is written under a temporary name starting with `.` and renamed into place, so a reader
//! never sees half a file; with `fsync` it is on disk before success is reported. A retry of the
//! same envelope writes the same name again and so replaces the earlier file.
//!
//! An id that could leave the folder or hide the file (a `/` or `\`, `..`, a leading `.`, a
//! control character, empty, over 200 bytes) is Permanent. Failures to write (a full disk, a
//! missing folder with `create_dir = false`, permissions) are Transient. Success returns the
//! path written.
//!
//! # Config
//!
//! ```toml
//! dir = "/var/spool/tributary/out"   # required
//! create_dir = true                  # default true: create the folder when missing
//! fsync = true                       # default true: durable before success
//! ```
//!
//! Build the adapter with [`from_config`].

mod config;
mod name;
mod outbound;

pub use config::FileConfig;
pub use name::{MAX_ID_BYTES, check_id, extension_for};
pub use outbound::FileOutbound;

/// Checks `config` and builds the adapter; the error says which setting is wrong and why.
pub fn from_config(config: FileConfig) -> Result<FileOutbound, String> {
    FileOutbound::from_config(&config)
}
