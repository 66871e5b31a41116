//! Settings of an SMTP destination, as written in the engine's config (TOML) and checked by
//! [`crate::from_config`] before anything is sent.

use std::fmt;

use serde::Deserialize;

/// Default bound on one delivery, from connect to the server's answer to the message.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text throughout: only for a relay on the same host or a trusted network.
    None,
    /// Plain connect, then STARTTLS, which must succeed before credentials or mail are sent
    /// (no silent downgrade). Default port 587. The default mode.
    #[default]
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS). Default port 465.
    Tls,
}

impl TlsMode {
    /// The usual port for this mode: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
        }
    }
}

/// Where and how an SMTP destination sends.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name (also the name its TLS certificate must carry).
    pub host: String,
    /// The relay's port; by default the usual one for `tls` (25, 587 or 465).
    #[serde(default)]
    pub port: Option<u16>,
    /// `none`, `starttls` (the default) or `tls`.
    #[serde(default)]
    pub tls: TlsMode,
    /// Login at the relay (AUTH PLAIN or LOGIN); give both or neither.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, `noreply@portal.example` or `Portal <noreply@portal.example>`.
    pub from: String,
    /// The domain after `@` in the Message-ID; by default the `from` address's domain.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    /// The name this side gives in EHLO; by default the machine's host name.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// Bounds one delivery, from connect to the relay's answer to the message. Default
    /// [`DEFAULT_TIMEOUT_SECS`].
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl SmtpConfig {
    /// A config for the relay at `host` sending as `from`, everything else at its default.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        SmtpConfig {
            host: host.into(),
            port: None,
            tls: TlsMode::default(),
            username: None,
            password: None,
            from: from.into(),
            message_id_domain: None,
            hello_name: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// The password stays out of logs.
impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("from", &self.from)
            .field("message_id_domain", &self.message_id_domain)
            .field("hello_name", &self.hello_name)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_starttls_on_587_and_30_seconds() {
        let config: SmtpConfig =
            serde_json::from_str(r#"{"host": "mail.example", "from": "noreply@portal.example"}"#).unwrap();
        assert_eq!(config, SmtpConfig::new("mail.example", "noreply@portal.example"));
        assert_eq!(config.tls, TlsMode::Starttls);
        assert_eq!(config.tls.default_port(), 587);
        assert_eq!(config.timeout_secs, 30);
        assert_eq!(TlsMode::None.default_port(), 25);
        assert_eq!(TlsMode::Tls.default_port(), 465);
    }

    #[test]
    fn unknown_fields_and_modes_are_refused() {
        let error =
            serde_json::from_str::<SmtpConfig>(r#"{"host": "h", "from": "a@b", "user": "x"}"#).unwrap_err();
        assert!(error.to_string().contains("user"), "{error}");
        let error =
            serde_json::from_str::<SmtpConfig>(r#"{"host": "h", "from": "a@b", "tls": "ssl"}"#).unwrap_err();
        assert!(error.to_string().contains("ssl"), "{error}");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mut config = SmtpConfig::new("h", "a@b");
        config.password = Some("hunter2".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
