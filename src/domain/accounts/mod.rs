//! Member accounts: members and their search entries, enrollment, activation and reset tokens,
//! self-requested enrollment, roles, notifications and their templates, the audit trail.
//!
//! [`Accounts`] is the member-accounts service as the engine holds it: the `[members]` settings, the server key
//! for token hashes, the notification templates and the API clients. Built once at start (a
//! missing template or an unreadable key file stops the engine with the reason) and shared by
//! every request.

pub(crate) mod audit;
pub(crate) mod enrollment;
pub(crate) mod members;
pub(crate) mod notify;
pub(crate) mod requests;
pub(crate) mod roles;
pub(crate) mod templates;
pub(crate) mod tokens;

#[cfg(test)]
mod props_tests;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError, MembersConfig};
use crate::domain::accounts::roles::{Clients, LiveClients};
use crate::domain::accounts::templates::Templates;
use crate::domain::identity::secrets::TokenKey;
use crate::domain::identity::throttle::{RequestLimiter, SignInThrottle};
use crate::domain::refusal::Refusal;
use crate::domain::saved_settings;
use crate::store::Reader;

#[derive(Debug)]
pub struct Accounts {
    pub config: MembersConfig,
    pub key: TokenKey,
    pub templates: Templates,
    pub clients: LiveClients,
    /// `[credentials]`: sign-in, two-factor, the waits after failures (issues #6, #12).
    pub credentials: crate::config::CredentialsConfig,
    /// `[[identity_providers]]`, with their fetched keys.
    pub providers: crate::domain::identity::oidc::Providers,
    /// `[proxies]`: the relationship types.
    pub proxies: crate::config::ProxiesConfig,
    /// The waits after failed sign-ins, per account and per client address (issue #12).
    pub sign_in_throttle: SignInThrottle,
    /// `[http.rate_limit]`: every API request's budget per client address (issue #12). Held
    /// here beside the API clients, which every authenticated endpoint reaches already.
    pub request_limit: RequestLimiter,
}

/// The settings a Configuration Manager may change while the engine runs; the config file gives
/// their starting values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub pending_user_expiration_hours: u32,
    pub max_expiration_reset_hours: u32,
    pub passphrase_required: bool,
}

const SETTINGS_KEY: &[u8] = b"members";

impl Accounts {
    /// Reads the key file (created when missing) and the templates.
    pub fn load(config: &Config) -> Result<Accounts, ConfigError> {
        let members = config.members.clone();
        let key_path = if members.secret_key_file.is_absolute() {
            members.secret_key_file.clone()
        } else {
            config.store.data_dir.join(&members.secret_key_file)
        };
        let problem = |key: &str, message: String| ConfigError {
            file: "-".into(),
            line: 0,
            key: key.into(),
            message,
        };
        let key = TokenKey::load_or_create(&key_path).map_err(|e| problem("members.secret_key_file", e))?;
        let templates = Templates::load(&members.templates_dir, &members.default_locale)
            .map_err(|e| problem("members.templates_dir", e))?;
        Ok(Accounts {
            clients: LiveClients::new(Clients::from_config(&config.api_clients)),
            credentials: config.credentials.clone(),
            providers: crate::domain::identity::oidc::Providers::new(&config.identity_providers),
            proxies: config.proxies.clone(),
            sign_in_throttle: SignInThrottle::new(&config.credentials),
            request_limit: RequestLimiter::new(&config.http.rate_limit),
            config: members,
            key,
            templates,
        })
    }

    /// For tests and the benchmark: given parts, no files.
    pub fn with(config: MembersConfig, key: TokenKey, templates_dir: &Path) -> Result<Accounts, String> {
        let templates = Templates::load(templates_dir, &config.default_locale)?;
        Ok(Accounts {
            config,
            key,
            templates,
            clients: LiveClients::default(),
            credentials: Default::default(),
            providers: crate::domain::identity::oidc::Providers::new(&[]),
            proxies: Default::default(),
            sign_in_throttle: SignInThrottle::new(&Default::default()),
            request_limit: RequestLimiter::new(&Default::default()),
        })
    }

    /// The settings in force: the last ones a Configuration Manager saved, else the config's.
    pub fn settings(&self, reader: &dyn Reader) -> Result<Settings, Refusal> {
        Ok(saved_settings::load(
            reader,
            SETTINGS_KEY,
            &self.configured_settings(),
        )?)
    }

    fn configured_settings(&self) -> Settings {
        Settings {
            pending_user_expiration_hours: *self.config.pending_user_expiration_hours.get_ref(),
            max_expiration_reset_hours: *self.config.max_expiration_reset_hours.get_ref(),
            passphrase_required: self.config.passphrase_required,
        }
    }

    /// Saves new settings (in the command's write set, with its audit record).
    pub fn save_settings(
        &self,
        op: &mut crate::domain::op::Op<'_, '_>,
        settings: Settings,
        reason: &str,
    ) -> Result<Settings, Refusal> {
        if settings.pending_user_expiration_hours == 0 || settings.max_expiration_reset_hours == 0 {
            return Err(Refusal::invalid("hours must be at least 1"));
        }
        saved_settings::save(
            op,
            SETTINGS_KEY,
            &self.configured_settings(),
            settings,
            "settings.update",
            "settings/members",
            reason,
        )
    }
}
