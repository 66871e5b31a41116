//! Request authentication: a fixed header, or an OAuth 2.0 client-credentials bearer token that
//! is fetched once, cached until shortly before it expires, and shared by every delivery.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Client, Url};
use tokio::sync::Mutex;
use tributary_adapter_core::DeliveryError;

use crate::client::{describe, excerpt, read_capped};
use crate::config::{AuthConfig, ClientAuth};

/// Largest token answer read; real ones are a few kilobytes at most.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// A token is fetched again this long before the server says it expires (or at half its life
/// when that is shorter), so a request never leaves with a token that dies on the way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// How requests are authenticated, checked and ready to use.
#[derive(Debug)]
pub(crate) enum Auth {
    None,
    Header(HeaderName, HeaderValue),
    Oauth2(TokenSource),
}

impl Auth {
    pub(crate) fn from_config(config: &AuthConfig) -> Result<Auth, String> {
        match config {
            AuthConfig::None => Ok(Auth::None),
            AuthConfig::Header { name, value } => {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("auth: `{name}` is not a valid header name"))?;
                let mut value = HeaderValue::from_str(value)
                    .map_err(|_| format!("auth: the value of header `{name}` holds a control character"))?;
                value.set_sensitive(true);
                Ok(Auth::Header(name, value))
            }
            AuthConfig::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                client_auth,
            } => {
                let token_url =
                    crate::client::parse_url(token_url).map_err(|e| format!("auth: token_url: {e}"))?;
                if client_id.is_empty() {
                    return Err("auth: client_id is empty".into());
                }
                if client_secret.is_empty() {
                    return Err("auth: client_secret is empty".into());
                }
                Ok(Auth::Oauth2(TokenSource {
                    token_url,
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    scope: scope.clone().filter(|scope| !scope.trim().is_empty()),
                    client_auth: *client_auth,
                    cached: Mutex::new(None),
                }))
            }
        }
    }
}

/// Fetches and caches client-credentials tokens. The lock is held while fetching, so deliveries
/// that find no valid token wait for one fetch instead of each starting their own.
pub(crate) struct TokenSource {
    token_url: Url,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    client_auth: ClientAuth,
    cached: Mutex<Option<Token>>,
}

/// Only whether there is a token and when it is refreshed: the value is a credential.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

struct Token {
    value: String,
    /// When to fetch a new one; `None` when the server gave no lifetime (kept until a 401).
    refresh_at: Option<Instant>,
}

impl TokenSource {
    /// A token that is not about to expire, fetched when there is none.
    pub(crate) async fn token(&self, client: &Client, timeout: Duration) -> Result<String, DeliveryError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && token.refresh_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(token.value.clone());
        }
        let token = self.fetch(client, timeout).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Forgets `stale` after the receiver refused it, unless another delivery already replaced it.
    pub(crate) async fn invalidate(&self, stale: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|token| token.value == stale) {
            *cached = None;
        }
    }

    /// A failing token endpoint is Transient whatever it answers: it says nothing about the
    /// envelope, and dead-lettering every queued message for a wrong secret would be worse than
    /// holding them until the credentials are fixed.
    async fn fetch(&self, client: &Client, timeout: Duration) -> Result<Token, DeliveryError> {
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let mut request = client.post(self.token_url.clone()).timeout(timeout);
        match self.client_auth {
            ClientAuth::Basic => {
                // RFC 6749 section 2.3.1: form-urlencode the id and secret before Basic encoding.
                request = request.basic_auth(
                    form_encode(&self.client_id),
                    Some(form_encode(&self.client_secret)),
                );
            }
            ClientAuth::Body => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", &self.client_secret));
            }
        }
        let started = Instant::now();
        let failed = |what: String| {
            DeliveryError::Transient(format!(
                "OAuth token request to {} failed: {what}",
                self.token_url
            ))
        };
        let mut response = request
            .form(&form)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| failed(describe(&error, timeout)))?;
        let status = response.status();
        let (body, _) = read_capped(&mut response, MAX_TOKEN_RESPONSE)
            .await
            .map_err(|error| failed(describe(&error, timeout)))?;
        if !status.is_success() {
            return Err(failed(format!("status {status}: {}", excerpt(&body))));
        }
        parse_token(&body, started).map_err(failed)
    }
}

/// Reads `access_token` and `expires_in` (a number, or a numeric string as some servers send).
fn parse_token(body: &[u8], requested_at: Instant) -> Result<Token, String> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let value = answer
        .get("access_token")
        .and_then(|token| token.as_str())
        .filter(|token| !token.is_empty())
        .ok_or("the answer has no access_token")?;
    if HeaderValue::from_str(&format!("Bearer {value}")).is_err() {
        return Err("the access_token cannot be sent in a header".into());
    }
    let expires_in = match answer.get("expires_in") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(number)) => number.as_u64(),
        Some(serde_json::Value::String(text)) => text.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    // An absurd lifetime that overflows the clock counts as none given.
    let refresh_at = expires_in.and_then(|secs| {
        let lifetime = Duration::from_secs(secs);
        requested_at.checked_add(lifetime - EXPIRY_MARGIN.min(lifetime / 2))
    });
    Ok(Token {
        value: value.to_string(),
        refresh_at,
    })
}

fn form_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => encoded.push(byte as char),
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetime_is_cut_short_by_the_margin() {
        let now = Instant::now();
        let token = parse_token(br#"{"access_token": "abc", "expires_in": 3600}"#, now).unwrap();
        assert_eq!(token.value, "abc");
        assert_eq!(token.refresh_at, Some(now + Duration::from_secs(3570)));
        let short = parse_token(br#"{"access_token": "abc", "expires_in": "10"}"#, now).unwrap();
        assert_eq!(short.refresh_at, Some(now + Duration::from_secs(5)));
        let forever = parse_token(br#"{"access_token": "abc"}"#, now).unwrap();
        assert_eq!(forever.refresh_at, None);
        let absurd = parse_token(
            format!(r#"{{"access_token": "a", "expires_in": {}}}"#, u64::MAX).as_bytes(),
            now,
        );
        assert_eq!(absurd.unwrap().refresh_at, None);
    }

    #[test]
    fn bad_token_answers_are_explained() {
        let now = Instant::now();
        assert!(parse_token(b"<html>", now).unwrap_err().contains("not JSON"));
        assert!(
            parse_token(br#"{"token": "x"}"#, now)
                .unwrap_err()
                .contains("access_token")
        );
        assert!(
            parse_token(br#"{"access_token": "a\nb"}"#, now)
                .unwrap_err()
                .contains("header")
        );
    }

    #[test]
    fn client_credentials_are_form_encoded_for_basic_auth() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(form_encode("plain-ID_1.x"), "plain-ID_1.x");
    }

    #[test]
    fn bad_auth_settings_are_refused_with_a_reason() {
        let error = Auth::from_config(&AuthConfig::Header {
            name: "bad name".into(),
            value: "v".into(),
        })
        .unwrap_err();
        assert!(error.contains("bad name"), "{error}");
        let error = Auth::from_config(&AuthConfig::Oauth2ClientCredentials {
            token_url: "ftp://idp/token".into(),
            client_id: "id".into(),
            client_secret: "s".into(),
            scope: None,
            client_auth: ClientAuth::Basic,
        })
        .unwrap_err();
        assert!(error.contains("token_url"), "{error}");
    }
}
