//! [`Fetcher`]: one feed fetch over HTTP, conditional on what the last one returned, with the
//! body's size and the whole exchange's time bounded.
//!
//! Feeds are polled, mostly to learn that nothing changed: sending the last `ETag` and
//! `Last-Modified` back lets the server answer 304 with no body, which is cheap for both sides
//! and for the engine (nothing to parse, no items to compare).

use std::time::Duration;

use reqwest::header::{
    ACCEPT, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::{Client, Response, StatusCode, Url};

use crate::error::FetchError;
use crate::item::Item;
use crate::parse::parse;

/// What the feed types are called, most specific first; `*/*` last because plenty of servers
/// serve feeds as `text/html` or `application/octet-stream`.
const ACCEPT_FEEDS: &str =
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8";

/// What the server said identifies the version of the feed it sent, to be given back on the
/// next fetch. Opaque: stored and returned as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` header, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` header, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// The outcome of a successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the feed is as it was when the validators were given.
    NotModified,
    /// 2xx: the feed's items, and the validators to send next time (empty when the server gave
    /// none, which makes the next fetch unconditional).
    Changed {
        /// As [`parse`] returns them, with relative links made absolute.
        items: Vec<Item>,
        /// From the answer's `ETag` and `Last-Modified`.
        validators: Validators,
    },
}

/// Fetches feeds with one HTTP client. Cheap to clone (the client is shared).
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: Client,
    max_body_bytes: u64,
    timeout: Duration,
}

impl Fetcher {
    /// A fetcher over `client` (whose settings apply: TLS, proxy, user agent, the redirect
    /// policy, by default at most 10), refusing bodies over `max_body_bytes` and giving up on
    /// any fetch that has not finished, body included, within `timeout`.
    pub fn new(client: Client, max_body_bytes: u64, timeout: Duration) -> Fetcher {
        Fetcher {
            client,
            max_body_bytes,
            timeout,
        }
    }

    /// GETs `url`, conditional on `validators`, and parses what comes back.
    ///
    /// Relative item links are resolved against the URL the feed came from (after redirects).
    ///
    /// # Errors
    ///
    /// [`FetchError::Status`] for an answer other than 2xx or 304; [`FetchError::Timeout`] when
    /// the whole exchange takes longer than the timeout; [`FetchError::Connect`] when no
    /// connection could be made; [`FetchError::TooLarge`] when the body exceeds the limit
    /// (found while reading it, never after buffering it all); [`FetchError::Parse`] when the
    /// body is not a feed; [`FetchError::Request`] for any other failure.
    pub async fn fetch(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        let mut request = self
            .client
            .get(url)
            .timeout(self.timeout)
            .header(ACCEPT, HeaderValue::from_static(ACCEPT_FEEDS));
        // A stored validator that is no longer a valid header value cannot be sent: the fetch is
        // then unconditional, which costs a body, not correctness.
        let conditions = [
            (IF_NONE_MATCH, &validators.etag),
            (IF_MODIFIED_SINCE, &validators.last_modified),
        ];
        for (name, value) in conditions {
            if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                request = request.header(name, value);
            }
        }
        let mut response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status { status });
        }
        let validators = Validators {
            etag: header(response.headers(), &ETAG),
            last_modified: header(response.headers(), &LAST_MODIFIED),
        };
        let base = response.url().clone();
        let body = self.read_body(&mut response).await?;
        let mut items = parse(&body)?;
        for item in &mut items {
            if let Some(link) = &mut item.link {
                resolve(&base, link);
            }
        }
        Ok(Fetched::Changed { items, validators })
    }

    /// The body, refused as soon as it is known to exceed the limit: from `Content-Length`
    /// before reading, or while reading when the length was not given (or was wrong).
    async fn read_body(&self, response: &mut Response) -> Result<Vec<u8>, FetchError> {
        let limit = self.max_body_bytes;
        let too_large = || FetchError::TooLarge { limit };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        // Sized for what was declared, up to the limit; never more, whatever the header says.
        let capacity = declared.unwrap_or(0).min(limit);
        let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            let total = u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX);
            if total > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn classify(&self, error: reqwest::Error) -> FetchError {
        if error.is_timeout() {
            FetchError::Timeout {
                after: self.timeout,
                source: error,
            }
        } else if error.is_connect() {
            FetchError::Connect(error)
        } else {
            FetchError::Request(error)
        }
    }
}

/// A response header as text; `None` when absent or not visible ASCII (it could not be sent
/// back as it came).
fn header(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// Makes a relative `link` absolute against `base`; an absolute one is left as written.
fn resolve(base: &Url, link: &mut String) {
    if Url::parse(link).is_err()
        && let Ok(absolute) = base.join(link)
    {
        *link = absolute.into();
    }
}
