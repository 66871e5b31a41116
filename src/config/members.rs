//! Member accounts: the `[members]` section (token lifetimes, passphrases, where notifications
//! go, templates, the server key) and the `[[api_clients]]` that may call the `/api` endpoints,
//! each with its roles and scopes and its key stored only as a SHA-256 hash.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// `[members]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersConfig {
    /// Hours an activation token is valid from issue ("pending user expiration").
    #[serde(default = "default_pending_hours")]
    pub pending_user_expiration_hours: Spanned<u32>,
    /// Most hours a renewed or regenerated token may be given ("maximum expiration reset window").
    #[serde(default = "default_max_reset_hours")]
    pub max_expiration_reset_hours: Spanned<u32>,
    /// Activation needs the one-time passphrase set at enrollment.
    #[serde(default)]
    pub passphrase_required: bool,
    /// The activation notification carries the passphrase too (otherwise staff hand it over).
    #[serde(default)]
    pub send_passphrase: bool,
    /// `[[destinations]]` name for email notifications; none: email cannot be sent.
    #[serde(default)]
    pub email_destination: Option<Spanned<String>>,
    /// `[[destinations]]` name for text (SMS) notifications; none: texts cannot be sent.
    #[serde(default)]
    pub sms_destination: Option<Spanned<String>>,
    /// Folder of the notification templates, `<locale>/<workflow>.txt` (email: the first line is
    /// the subject) and `<locale>/<workflow>.sms.txt`.
    #[serde(default = "default_templates_dir")]
    pub templates_dir: PathBuf,
    /// Locale used when a member has none with templates.
    #[serde(default = "default_locale")]
    pub default_locale: String,
    /// The portal's address, for the links in notifications.
    #[serde(default = "default_portal_url")]
    pub portal_url: String,
    /// Hours a staff-sent password reset link stays valid.
    #[serde(default = "default_reset_hours")]
    pub password_reset_hours: u32,
    /// File holding the server key for token hashes (created with a random key when missing);
    /// relative paths are taken from the store's data folder.
    #[serde(default = "default_key_file")]
    pub secret_key_file: PathBuf,
    /// Seconds in one "hour" of the lifetimes above. Always 3600, except in tests that need a
    /// token to expire while they wait.
    #[serde(default = "default_hour_seconds")]
    pub hour_seconds: u32,
}

impl Default for MembersConfig {
    fn default() -> Self {
        MembersConfig {
            pending_user_expiration_hours: default_pending_hours(),
            max_expiration_reset_hours: default_max_reset_hours(),
            passphrase_required: false,
            send_passphrase: false,
            email_destination: None,
            sms_destination: None,
            templates_dir: default_templates_dir(),
            default_locale: default_locale(),
            portal_url: default_portal_url(),
            password_reset_hours: default_reset_hours(),
            secret_key_file: default_key_file(),
            hour_seconds: default_hour_seconds(),
        }
    }
}

fn default_pending_hours() -> Spanned<u32> {
    Spanned::new(0..0, 72)
}

fn default_max_reset_hours() -> Spanned<u32> {
    Spanned::new(0..0, 168)
}

fn default_templates_dir() -> PathBuf {
    PathBuf::from("config/templates")
}

fn default_locale() -> String {
    "en".into()
}

fn default_portal_url() -> String {
    "https://portal.example.org".into()
}

fn default_reset_hours() -> u32 {
    24
}

fn default_hour_seconds() -> u32 {
    3600
}

fn default_key_file() -> PathBuf {
    PathBuf::from("members.key")
}

/// One `[[api_clients]]` entry: a caller of `/api`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiClientConfig {
    /// Names the caller in the audit trail (`client:<name>`).
    pub name: Spanned<String>,
    /// SHA-256 of its API key, lowercase hex (`printf %s "$KEY" | sha256sum`). The key itself
    /// is never stored.
    pub key_sha256: Spanned<String>,
    /// Staff roles: `direct-enrollment-user`, `member-account-manager`,
    /// `enrollment-request-agent`, `enrollment-exception-agent`, `configuration-manager`,
    /// `integration-analyst` (the journal and the outbox), `metrics-reader` (`/metrics`);
    /// `external-system` for a system client
    /// (then `scopes` say what it may do).
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    /// For `external-system` clients: `enroll` (automated enrollment), `self-service` (the
    /// portal acting for a member: activation, self-requested enrollment, forgotten password
    /// and username).
    #[serde(default)]
    pub scopes: Vec<Spanned<String>>,
}

pub const ROLES: [&str; 8] = [
    "direct-enrollment-user",
    "member-account-manager",
    "enrollment-request-agent",
    "enrollment-exception-agent",
    "configuration-manager",
    "external-system",
    "integration-analyst",
    "metrics-reader",
];

pub const SCOPES: [&str; 6] = [
    "enroll",
    "self-service",
    "invite",
    "tasks",
    "fhir-read",
    "fhir-write",
];

impl super::Config {
    /// Checks `[members]` and `[[api_clients]]`.
    pub(super) fn validate_members(&self) -> Result<(), super::ConfigError> {
        let m = &self.members;
        let pending = *m.pending_user_expiration_hours.get_ref();
        if pending == 0 {
            return Err(self.error_at(
                m.pending_user_expiration_hours.span(),
                "members.pending_user_expiration_hours".into(),
                "must be at least 1".into(),
            ));
        }
        if *m.max_expiration_reset_hours.get_ref() == 0 {
            return Err(self.error_at(
                m.max_expiration_reset_hours.span(),
                "members.max_expiration_reset_hours".into(),
                "must be at least 1".into(),
            ));
        }
        if m.hour_seconds == 0 {
            return Err(self.error_at(
                m.pending_user_expiration_hours.span(),
                "members.hour_seconds".into(),
                "must be at least 1".into(),
            ));
        }
        for (key, destination) in [
            ("members.email_destination", &m.email_destination),
            ("members.sms_destination", &m.sms_destination),
        ] {
            if let Some(name) = destination {
                self.require_destination(key.into(), name)?;
            }
        }
        let mut names: Vec<&str> = vec![];
        let mut keys: Vec<String> = vec![];
        for (i, client) in self.api_clients.iter().enumerate() {
            let key = |k: &str| format!("api_clients[{i}].{k}");
            let name = client.name.get_ref();
            if name.is_empty() || names.contains(&name.as_str()) {
                return Err(self.error_at(
                    client.name.span(),
                    key("name"),
                    format!("`{name}` is empty or defined twice"),
                ));
            }
            names.push(name);
            let hash = client.key_sha256.get_ref().to_ascii_lowercase();
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(self.error_at(
                    client.key_sha256.span(),
                    key("key_sha256"),
                    "must be the SHA-256 of the key as 64 hex digits (printf %s \"$KEY\" | sha256sum)".into(),
                ));
            }
            if keys.contains(&hash) {
                return Err(self.error_at(
                    client.key_sha256.span(),
                    key("key_sha256"),
                    "two clients share one key".into(),
                ));
            }
            keys.push(hash);
            for role in &client.roles {
                if !ROLES.contains(&role.get_ref().as_str()) {
                    return Err(self.error_at(
                        role.span(),
                        key("roles"),
                        format!("`{}` is not a role (known: {})", role.get_ref(), ROLES.join(", ")),
                    ));
                }
            }
            for scope in &client.scopes {
                if !SCOPES.contains(&scope.get_ref().as_str()) {
                    return Err(self.error_at(
                        scope.span(),
                        key("scopes"),
                        format!(
                            "`{}` is not a scope (known: {})",
                            scope.get_ref(),
                            SCOPES.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
