//! The SMS outbound adapter: each envelope becomes one text message, sent as one request to an
//! HTTP SMS gateway whose body is written from a template.
//!
//! - `config`: [`SmsConfig`] and [`BodyFormat`], the settings as written in the engine's config.
//! - `template`: the body template with `{{to}}`, `{{body}}` and `{{id}}`, escaped per format.
//! - `outbound`: [`SmsOutbound`], the [`Outbound`](tributary_adapter_core::Outbound) adapter.
//!
//! The HTTP side (auth, timeouts, `X-Delivery-Id`, and which answers are Transient or
//! Permanent) is [`tributary_adapter_http::HttpClient`]'s, so both adapters behave alike.
//!
//! # What is sent
//!
//! The recipient is the envelope's `To` header (Permanent when missing), the text its payload
//! (UTF-8, else Permanent). With `format = "json"` each placeholder sits inside a JSON string and
//! is replaced by the value escaped for one, so quotes, backslashes and line breaks in a message
//! still give valid JSON (the template is checked for that when the adapter is built). With
//! `format = "form"` each is replaced by the value percent-encoded for a form field.
//!
//! # Config
//!
//! ```toml
//! url = "https://sms.example/api/messages"   # required, http:// or https://
//! method = "POST"                             # default POST
//! format = "json"                             # "json" (default) or "form"
//! body = '{"to": "{{to}}", "text": "{{body}}", "reference": "{{id}}"}'   # required
//! timeout_secs = 30                           # default 30
//! max_response_bytes = 1048576                # default 1 MiB
//! [headers]                                   # default none; Content-Type here wins over format's
//! Accept = "application/json"
//! [auth]                                      # as the HTTP adapter: none, header, oauth2_client_credentials
//! type = "header"
//! name = "Authorization"
//! value = "Bearer ..."
//! ```
//!
//! A form gateway (Twilio style): `format = "form"`, `body = "To={{to}}&From=Portal&Body={{body}}"`.
//!
//! Build the adapter with [`from_config`]; it refuses a bad URL, template or auth setting with a
//! message naming it.

mod config;
mod outbound;
mod template;

pub use config::{BodyFormat, SmsConfig};
pub use outbound::SmsOutbound;
pub use tributary_adapter_http::{AuthConfig, ClientAuth};

/// Checks `config` and builds the adapter; the error says which setting is wrong and why.
pub fn from_config(config: SmsConfig) -> Result<SmsOutbound, String> {
    SmsOutbound::from_config(&config)
}
