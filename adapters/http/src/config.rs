//! Settings of an HTTP destination, as written in the engine's config (TOML) and checked by
//! [`crate::from_config`] before anything is sent.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use tributary_adapter_core::tls::ClientTlsConfig;

/// Default bound on one delivery, from connect to the last byte of the answer.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default cap on the answer body kept and handed back; the rest is read and dropped.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Where and how an HTTP destination delivers.
///
/// ```toml
/// url = "https://partner.example/fhir/Patient"
/// method = "POST"            # default
/// timeout_secs = 30          # default
/// headers = { Accept = "application/fhir+json" }
/// auth = { type = "oauth2_client_credentials", token_url = "https://idp.example/token",
///          client_id = "tributary", client_secret = "...", scope = "patient.write" }
/// tls = { ca = "partner-ca.pem", client_cert = "me.pem", client_key = "me.key" }  # optional
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The receiver's address, `http://` or `https://`.
    pub url: String,
    /// The request method, `POST` by default (`PUT` for FHIR updates, for instance).
    #[serde(default = "default_method")]
    pub method: String,
    /// Headers sent with every request (`Accept`, an API version, ...). An envelope header of the
    /// same name replaces the one given here.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How the adapter proves who it is; none by default.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Bounds one delivery (and one token request), from connect to the end of the answer.
    /// Default [`DEFAULT_TIMEOUT_SECS`].
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The most of a success answer's body kept and returned to the outbox. Default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`] (1 MiB); a longer body is cut there.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// For an `https://` receiver on a private PKI: the CA its certificate chains to (instead of
    /// the system's roots) and a client certificate for mTLS. `server_name` is not taken: the
    /// URL's host is what the certificate must name.
    #[serde(default)]
    pub tls: Option<ClientTlsConfig>,
}

impl HttpConfig {
    /// A config for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        HttpConfig {
            url: url.into(),
            method: default_method(),
            headers: BTreeMap::new(),
            auth: AuthConfig::None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            tls: None,
        }
    }
}

/// Header values may be API keys: the debug form shows header names only.
impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("auth", &self.auth)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("tls", &self.tls)
            .finish()
    }
}

/// How requests are authenticated, chosen by `type`.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// No credentials (`type = "none"`, the default).
    #[default]
    None,
    /// One fixed header on every request, e.g. `name = "X-Api-Key"` or `name = "Authorization"`
    /// with `value = "Basic ..."` (`type = "header"`).
    Header { name: String, value: String },
    /// OAuth 2.0 client credentials grant (RFC 6749 section 4.4): a bearer token fetched from
    /// `token_url`, kept until shortly before it expires, and fetched again once when the
    /// receiver answers 401 (`type = "oauth2_client_credentials"`).
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        /// Space-separated scopes to ask for; none when absent.
        #[serde(default)]
        scope: Option<String>,
        /// How the client authenticates to the token endpoint: `basic` (HTTP Basic, the
        /// default and what RFC 6749 recommends) or `body` (`client_id` and `client_secret`
        /// as form fields, for servers that accept only that).
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

/// Where the OAuth client credentials go in the token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Basic,
    Body,
}

/// Secrets stay out of logs: the debug form names the kind of auth and nothing secret.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthConfig::None => f.write_str("None"),
            AuthConfig::Header { name, .. } => f
                .debug_struct("Header")
                .field("name", name)
                .finish_non_exhaustive(),
            AuthConfig::Oauth2ClientCredentials {
                token_url,
                client_id,
                scope,
                client_auth,
                ..
            } => f
                .debug_struct("Oauth2ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("scope", scope)
                .field("client_auth", client_auth)
                .finish_non_exhaustive(),
        }
    }
}

fn default_method() -> String {
    "POST".into()
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_max_response_bytes() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_only_the_url_is_given() {
        let config: HttpConfig = serde_json::from_str(r#"{"url": "http://127.0.0.1:1/in"}"#).unwrap();
        assert_eq!(config, HttpConfig::new("http://127.0.0.1:1/in"));
        assert_eq!(config.method, "POST");
        assert_eq!(config.timeout_secs, 30);
        assert_eq!(config.max_response_bytes, 1024 * 1024);
        assert_eq!(config.auth, AuthConfig::None);
    }

    #[test]
    fn auth_kinds_are_chosen_by_type() {
        let config: HttpConfig = serde_json::from_str(
            r#"{"url": "http://x", "auth": {"type": "oauth2_client_credentials", "token_url": "http://t",
                "client_id": "id", "client_secret": "s3cret", "client_auth": "body"}}"#,
        )
        .unwrap();
        assert_eq!(
            config.auth,
            AuthConfig::Oauth2ClientCredentials {
                token_url: "http://t".into(),
                client_id: "id".into(),
                client_secret: "s3cret".into(),
                scope: None,
                client_auth: ClientAuth::Body,
            }
        );
        let header: AuthConfig =
            serde_json::from_str(r#"{"type": "header", "name": "X-Key", "value": "k"}"#).unwrap();
        assert!(matches!(header, AuthConfig::Header { .. }));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = serde_json::from_str::<HttpConfig>(r#"{"url": "http://x", "methd": "PUT"}"#).unwrap_err();
        assert!(error.to_string().contains("methd"), "{error}");
        let error = serde_json::from_str::<AuthConfig>(
            r#"{"type": "header", "name": "a", "value": "b", "extra": 1}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("extra"), "{error}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut config = HttpConfig::new("http://x");
        config
            .headers
            .insert("X-Api-Key".into(), "topsecret-header".into());
        config.auth = AuthConfig::Oauth2ClientCredentials {
            token_url: "http://t".into(),
            client_id: "id".into(),
            client_secret: "topsecret-client".into(),
            scope: Some("a b".into()),
            client_auth: ClientAuth::Basic,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(
            shown.contains("X-Api-Key") && shown.contains("token_url"),
            "{shown}"
        );
    }
}
