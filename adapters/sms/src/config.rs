//! Settings of an SMS gateway destination, as written in the engine's config (TOML) and checked
//! by [`crate::from_config`] before anything is sent.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use tributary_adapter_http::AuthConfig;

/// How the request body is written, and so how placeholder values are escaped in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `application/json`: each placeholder stands inside a JSON string and is replaced by the
    /// value escaped for one, so quotes and line breaks still give valid JSON. The default.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`: each placeholder is replaced by the value
    /// percent-encoded for a form field.
    Form,
}

/// Where and how an SMS gateway destination sends.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The gateway's address, `http://` or `https://`.
    pub url: String,
    /// The request method, `POST` by default.
    #[serde(default = "default_method")]
    pub method: String,
    /// Headers sent with every request. A `Content-Type` here replaces the one `format` implies.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How the adapter proves who it is, as for the HTTP adapter; none by default.
    #[serde(default)]
    pub auth: AuthConfig,
    /// The request body, with the placeholders `{{to}}` (the envelope's `To` header), `{{body}}`
    /// (the payload as text) and `{{id}}` (the envelope id). `{{to}}` and `{{body}}` are
    /// required.
    pub body: String,
    /// `json` (the default) or `form`.
    #[serde(default)]
    pub format: BodyFormat,
    /// Bounds one delivery, from connect to the end of the answer. Default 30.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The most of the gateway's answer kept and returned. Default 1 MiB.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

impl SmsConfig {
    /// A config for the gateway at `url` with this body template, everything else default.
    pub fn new(url: impl Into<String>, body: impl Into<String>) -> Self {
        SmsConfig {
            url: url.into(),
            method: default_method(),
            headers: BTreeMap::new(),
            auth: AuthConfig::None,
            body: body.into(),
            format: BodyFormat::Json,
            timeout_secs: default_timeout_secs(),
            max_response_bytes: default_max_response_bytes(),
        }
    }
}

/// Header values may be API keys: the debug form shows header names only.
impl fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("auth", &self.auth)
            .field("body", &self.body)
            .field("format", &self.format)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

fn default_method() -> String {
    "POST".into()
}

fn default_timeout_secs() -> u64 {
    tributary_adapter_http::DEFAULT_TIMEOUT_SECS
}

fn default_max_response_bytes() -> usize {
    tributary_adapter_http::DEFAULT_MAX_RESPONSE_BYTES
}
