//! The HTTP outbound adapter: each envelope becomes one HTTP request to a configured URL.
//!
//! - `config`: [`HttpConfig`] and [`AuthConfig`], the settings as written in the engine's config.
//! - `client`: [`HttpClient`], one checked destination: sends a body, sorts the answer into
//!   success, Transient or Permanent. The SMS adapter reuses it.
//! - `auth`: a fixed header, or OAuth 2.0 client-credentials tokens cached until shortly before
//!   they expire.
//! - `outbound`: [`HttpOutbound`], the [`Outbound`](tributary_adapter_core::Outbound) adapter.
//!
//! # What goes over the wire
//!
//! The envelope's payload is the body (`POST` unless `method` says otherwise), its content type
//! the `Content-Type`, its headers HTTP headers (after the configured `headers`, replacing those
//! of the same name), and its id the `X-Delivery-Id` header, the same on every retry so the
//! receiver can recognise a resend. Redirects are not followed (a redirected POST would lose its
//! body); TLS is rustls with the platform's trusted roots.
//!
//! # How answers are classified
//!
//! | answer | result |
//! | --- | --- |
//! | 2xx | success: the body (up to `max_response_bytes`) |
//! | 5xx, 429, 408, timeout, connection failure | `Transient`: the outbox retries |
//! | 401 with OAuth | a new token and one more try, then as below |
//! | any other status | `Permanent`, with the status and the start of the body |
//! | OAuth token endpoint failing | `Transient`: bad credentials are fixed in the config, not by dead-lettering |
//!
//! # Config
//!
//! ```toml
//! url = "https://partner.example/fhir/Patient"   # required, http:// or https://
//! method = "POST"                                  # default POST
//! timeout_secs = 30                                # default 30: connect to end of answer
//! max_response_bytes = 1048576                     # default 1 MiB
//! [headers]                                        # default none
//! Accept = "application/fhir+json"
//! [auth]                                           # default type = "none"
//! type = "header"                                  # or "none", "oauth2_client_credentials"
//! name = "X-Api-Key"
//! value = "..."
//! ```
//!
//! OAuth 2.0 client credentials:
//!
//! ```toml
//! [auth]
//! type = "oauth2_client_credentials"
//! token_url = "https://idp.example/oauth2/token"
//! client_id = "tributary"
//! client_secret = "..."
//! scope = "system/Patient.write"   # optional
//! client_auth = "basic"            # default; "body" sends id and secret as form fields
//! ```
//!
//! Build the adapter with [`from_config`]; it refuses a bad URL, method, header or auth setting
//! with a message naming it.

mod auth;
mod client;
mod config;
mod outbound;

pub use client::{DELIVERY_ID_HEADER, HttpClient, Outcome, Request, classify_status};
pub use config::{AuthConfig, ClientAuth, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_SECS, HttpConfig};
pub use outbound::HttpOutbound;

/// Checks `config` and builds the adapter; the error says which setting is wrong and why.
pub fn from_config(config: HttpConfig) -> Result<HttpOutbound, String> {
    HttpClient::from_config(&config).map(HttpOutbound::new)
}
