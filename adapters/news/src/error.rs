//! The two ways this crate fails: [`ParseError`] (the document is not a feed we can read) and
//! [`FetchError`] (getting the document went wrong, or it did not parse).
//!
//! They are separate because the engine treats them differently: a fetch that timed out or was
//! refused is worth retrying soon, while a document that does not parse will not get better by
//! asking again until the publisher fixes it.

use std::time::Duration;

use reqwest::StatusCode;

/// Why a document could not be read as a feed. The message says what was found, so it can be
/// shown to whoever configured the feed's URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not text in an encoding we read (UTF-8, UTF-16 with a byte order mark,
    /// ISO-8859-1 or windows-1252 as declared).
    #[error("the document is not readable text: {0}")]
    Encoding(String),
    /// A `<!DOCTYPE ...>`: feeds have none, and a DTD can declare entities that expand without
    /// bound, so it is refused rather than ignored. An HTML page served in place of the feed is
    /// the usual cause.
    #[error(
        "the document has a DOCTYPE declaration, which feeds do not use (is the URL an HTML \
         page?); DTDs and entity declarations are refused"
    )]
    Doctype,
    /// Not well-formed XML.
    #[error("malformed XML at line {line}: {message}")]
    Malformed {
        /// 1-based line of the input where the problem was found.
        line: u64,
        /// What is wrong there.
        message: String,
    },
    /// Well-formed, but neither an RSS 2.0 nor an Atom 1.0 document.
    #[error("not an RSS 2.0 or Atom 1.0 feed: {0}")]
    NotAFeed(String),
}

/// Why a fetch gave no items. Each variant keeps what caused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a status other than 2xx or 304 (after redirects).
    #[error("the server answered {status}")]
    Status {
        /// The status of the last answer.
        status: StatusCode,
    },
    /// No complete answer within the fetcher's timeout (connecting, waiting or reading the body).
    #[error("no complete answer within {after:?}")]
    Timeout {
        /// The fetcher's timeout.
        after: Duration,
        /// reqwest's error, which says at what stage the time ran out.
        #[source]
        source: reqwest::Error,
    },
    /// The connection could not be made (refused, unreachable, DNS, TLS handshake).
    #[error("could not connect: {0}")]
    Connect(#[source] reqwest::Error),
    /// The body is larger than the fetcher's limit; reading stopped there.
    #[error("the feed is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The fetcher's limit, in bytes.
        limit: u64,
    },
    /// Any other failure of the request: an invalid URL, too many redirects, a connection
    /// dropped while the body was read.
    #[error("the request failed: {0}")]
    Request(#[source] reqwest::Error),
    /// The body arrived but is not a feed we can read.
    #[error("the feed does not parse: {0}")]
    Parse(#[from] ParseError),
}
