//! The SMTP outbound adapter: each envelope becomes one e-mail sent through a relay.
//!
//! - `config`: [`SmtpConfig`] and [`TlsMode`], the settings as written in the engine's config.
//! - `message`: the e-mail built from an envelope (recipients, subject, body, Message-ID).
//! - `outbound`: [`SmtpOutbound`], the [`Outbound`](tributary_adapter_core::Outbound) adapter.
//!
//! # What is sent
//!
//! | envelope | e-mail |
//! | --- | --- |
//! | header `To` (required) | `To`, one address or a comma-separated list; missing or invalid is Permanent |
//! | header `Subject` | `Subject`, non-ASCII encoded as RFC 2047 words; line breaks become spaces |
//! | `payload` (UTF-8, else Permanent) | the body, `text/plain; charset=utf-8`, or `text/html` when `content_type` is `text/html` |
//! | `id` | `Message-ID: <id@domain>` (the same on every retry, so receivers can drop duplicates) |
//!
//! Non-ASCII bodies go out quoted-printable or base64, so they pass relays without 8BITMIME.
//! Success returns the relay's answer, e.g. `250 2.0.0 Ok: queued as 4F2B`.
//!
//! # How failures are classified
//!
//! SMTP 5xx replies are Permanent (the relay refused this message for good); 4xx replies,
//! connection, TLS and timeout failures are Transient. Login refusals (530, 534, 535, 538) are
//! Transient: they are fixed in the config, not by dead-lettering every message.
//!
//! # Config
//!
//! ```toml
//! host = "smtp.example.org"              # required; also the name its certificate must carry
//! port = 587                             # default: 25, 587 or 465 following `tls`
//! tls = "starttls"                       # "none" | "starttls" (default, must succeed) | "tls"
//! username = "portal"                    # optional; give both or neither
//! password = "..."
//! from = "Portal <noreply@portal.example>"  # required
//! message_id_domain = "portal.example"   # default: the domain of `from`
//! hello_name = "tributary.portal.example" # default: this machine's host name
//! timeout_secs = 30                      # default 30: the whole delivery
//! ```
//!
//! Build the adapter with [`from_config`]. TLS is rustls with the platform's trusted roots.

mod config;
mod message;
mod outbound;

pub use config::{DEFAULT_TIMEOUT_SECS, SmtpConfig, TlsMode};
pub use outbound::SmtpOutbound;

/// Checks `config` and builds the adapter; the error says which setting is wrong and why.
pub fn from_config(config: SmtpConfig) -> Result<SmtpOutbound, String> {
    SmtpOutbound::from_config(&config)
}
