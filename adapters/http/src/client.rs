//! [`HttpClient`]: one configured destination. Sends a body with its headers and auth, and sorts
//! the outcome into success, Transient (retry) or Permanent (dead-letter) for the outbox.
//!
//! Other adapters that speak HTTP (the SMS gateway adapter) build their body and call
//! [`HttpClient::send`], so the status rules live in one place.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use tributary_adapter_core::DeliveryError;

use crate::auth::Auth;
use crate::config::HttpConfig;

/// The header that carries the envelope id, the same on every retry, so a receiver can tell a
/// resend from a new message.
pub const DELIVERY_ID_HEADER: &str = "x-delivery-id";
/// How much of an error answer's body is read to quote in the error message.
const EXCERPT_READ: usize = 1024;
/// How many characters of it are quoted.
const EXCERPT_CHARS: usize = 200;
/// Headers that describe the connection or the framing, which the client sets itself.
const RESERVED: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
];

/// One request to send: the body and what describes it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub body: Bytes,
    /// Sent as `Content-Type`; `application/octet-stream` when empty.
    pub content_type: &'a str,
    /// Sent as `X-Delivery-Id`.
    pub delivery_id: &'a str,
    /// Extra headers for this request only; they replace configured headers of the same name.
    pub headers: &'a [(String, String)],
}

/// A checked destination: where, how, with which credentials and limits.
#[derive(Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    method: Method,
    url: Url,
    /// The url without its query (which may hold a key), for error messages and logs.
    target: String,
    headers: HeaderMap,
    auth: Auth,
    timeout: Duration,
    max_response_bytes: usize,
}

impl HttpClient {
    /// Checks `config` and builds the client; the error names the setting that is wrong.
    pub fn from_config(config: &HttpConfig) -> Result<HttpClient, String> {
        let url = parse_url(&config.url).map_err(|e| format!("url: {e}"))?;
        let method = Method::from_bytes(config.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("method: `{}` is not an HTTP method", config.method))?;
        if config.timeout_secs == 0 {
            return Err("timeout_secs: must be at least 1".into());
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let (name, value) = header(name, value).map_err(|e| format!("headers: {e}"))?;
            headers.insert(name, value);
        }
        let auth = Auth::from_config(&config.auth)?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            // A redirected POST turns into a GET without its body: report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout);
        if let Some(tls) = &config.tls {
            if tls.server_name.is_some() {
                return Err(
                    "tls.server_name: not taken for http; the URL's host is what the certificate must name"
                        .into(),
                );
            }
            let rustls = tributary_adapter_core::tls::client_config(tls).map_err(|e| format!("tls: {e}"))?;
            builder = builder.use_preconfigured_tls(rustls);
        }
        let client = builder
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}{}", causes(&error)))?;
        let mut target = url.clone();
        target.set_query(None);
        target.set_fragment(None);
        Ok(HttpClient {
            client,
            method,
            target: target.to_string(),
            url,
            headers,
            auth,
            timeout,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// The configured address without its query string.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Sends `request`. A 2xx answer gives its body (up to `max_response_bytes`); 408, 429, 5xx,
    /// timeouts and connection failures are Transient; other statuses are Permanent. With OAuth,
    /// a 401 makes the client fetch a new token and try once more.
    pub async fn send(&self, request: Request<'_>) -> Result<Bytes, DeliveryError> {
        let headers = self.request_headers(&request)?;
        let (response, token) = self.attempt(&request.body, headers.clone()).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let (Auth::Oauth2(source), Some(refused)) = (&self.auth, token)
        {
            // The token may have been revoked or the server's clock may disagree with its
            // lifetime: one fresh token, one more try; a second 401 is the answer.
            tracing::debug!(target = %self.target, "receiver answered 401; fetching a new OAuth token");
            source.invalidate(&refused).await;
            let (response, _) = self.attempt(&request.body, headers).await?;
            return self.classify(response).await;
        }
        self.classify(response).await
    }

    fn request_headers(&self, request: &Request<'_>) -> Result<HeaderMap, DeliveryError> {
        let mut headers = self.headers.clone();
        for (name, value) in request.headers {
            let (name, value) = header(name, value).map_err(DeliveryError::Permanent)?;
            headers.insert(name, value);
        }
        let content_type = match request.content_type.trim() {
            "" => "application/octet-stream",
            given => given,
        };
        let content_type = HeaderValue::from_str(content_type).map_err(|_| {
            DeliveryError::Permanent(format!(
                "content type `{}` cannot be sent in a header",
                request.content_type
            ))
        })?;
        headers.insert(CONTENT_TYPE, content_type);
        let id = HeaderValue::from_str(request.delivery_id).map_err(|_| {
            DeliveryError::Permanent("the delivery id holds a character not allowed in a header".into())
        })?;
        headers.insert(HeaderName::from_static(DELIVERY_ID_HEADER), id);
        match &self.auth {
            Auth::None | Auth::Oauth2(_) => {}
            Auth::Header(name, value) => {
                headers.insert(name.clone(), value.clone());
            }
        }
        Ok(headers)
    }

    /// One exchange, with a current OAuth token when that is the auth in use (returned too, so a
    /// 401 can invalidate exactly the token it refused).
    async fn attempt(
        &self,
        body: &Bytes,
        mut headers: HeaderMap,
    ) -> Result<(Response, Option<String>), DeliveryError> {
        let mut token = None;
        if let Auth::Oauth2(source) = &self.auth {
            let current = source.token(&self.client, self.timeout).await?;
            let mut value = HeaderValue::from_str(&format!("Bearer {current}"))
                .map_err(|_| DeliveryError::Transient("the OAuth token cannot be sent in a header".into()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
            token = Some(current);
        }
        let response = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(headers)
            .body(body.clone())
            .send()
            .await
            .map_err(|error| {
                DeliveryError::Transient(format!(
                    "{} {} failed: {}",
                    self.method,
                    self.target,
                    describe(&error, self.timeout)
                ))
            })?;
        Ok((response, token))
    }

    async fn classify(&self, mut response: Response) -> Result<Bytes, DeliveryError> {
        let status = response.status();
        if status.is_success() {
            let (body, cut) = read_capped(&mut response, self.max_response_bytes)
                .await
                .map_err(|error| {
                    DeliveryError::Transient(format!(
                        "{} {} answered {status} but its body failed: {}",
                        self.method,
                        self.target,
                        describe(&error, self.timeout)
                    ))
                })?;
            if cut {
                tracing::warn!(target = %self.target, limit = self.max_response_bytes, "answer body cut at max_response_bytes");
            }
            return Ok(body);
        }
        // The body only explains the failure: a short, best-effort read.
        let body = read_capped(&mut response, EXCERPT_READ)
            .await
            .map(|(body, _)| body)
            .unwrap_or_default();
        let what = format!("{} {} answered {status}", self.method, self.target);
        let why = match excerpt(&body) {
            text if text.is_empty() => String::new(),
            text => format!(": {text}"),
        };
        Err(match classify_status(status) {
            Outcome::Transient => DeliveryError::Transient(format!("{what}{why}")),
            Outcome::Permanent if status.is_redirection() => {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("?");
                DeliveryError::Permanent(format!(
                    "{what} (redirect to {location}, not followed: set url to the final address){why}"
                ))
            }
            Outcome::Permanent => DeliveryError::Permanent(format!("{what}{why}")),
        })
    }
}

/// What an unsuccessful status means for the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Transient,
    Permanent,
}

/// 408 (request timeout), 429 (too many requests) and 5xx may pass later; anything else that is
/// not 2xx will not, sent as it is.
pub fn classify_status(status: StatusCode) -> Outcome {
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Outcome::Transient
    } else {
        Outcome::Permanent
    }
}

/// An `http` or `https` URL with a host.
pub(crate) fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    Ok(url)
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let parsed = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{name}` is not a valid header name"))?;
    if RESERVED.contains(&parsed.as_str()) {
        return Err(format!(
            "header `{name}` is set by the HTTP client and cannot be given"
        ));
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header `{name}` holds a control character"))?;
    Ok((parsed, value))
}

/// Reads at most `cap` bytes of the body; the flag says whether there was more.
pub(crate) async fn read_capped(
    response: &mut Response,
    cap: usize,
) -> Result<(Bytes, bool), reqwest::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body.freeze(), true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), false))
}

/// The start of a body as one line of text, for an error message.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut line: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT_CHARS {
        line.push('…');
    }
    line.trim().to_string()
}

/// A reqwest failure in words: what happened and why. reqwest's own top-level message is left
/// out: it holds the URL (which may carry a key in its query) and rarely says what went wrong.
pub(crate) fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("timed out after {} s", timeout.as_secs());
    }
    let kind = if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "the body broke off"
    } else {
        "request failed"
    };
    format!("{kind}{}", causes(error))
}

/// The sources of `error`, each after `: `, repeats skipped.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_into_retry_or_give_up() {
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(
                classify_status(StatusCode::from_u16(code).unwrap()),
                Outcome::Transient,
                "{code}"
            );
        }
        for code in [301, 400, 401, 403, 404, 409, 410, 413, 415, 422] {
            assert_eq!(
                classify_status(StatusCode::from_u16(code).unwrap()),
                Outcome::Permanent,
                "{code}"
            );
        }
    }

    #[test]
    fn an_excerpt_is_one_short_line() {
        assert_eq!(excerpt(b"  bad\r\ninput\t "), "bad  input");
        let long = excerpt("é".repeat(500).as_bytes());
        assert_eq!(long.chars().count(), EXCERPT_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(excerpt(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
    }
}
