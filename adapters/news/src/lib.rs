//! News feeds: fetching RSS 2.0 and Atom 1.0 documents and reading their items.
//!
//! This crate owns everything between a feed's URL and a list of plain-text [`Item`]s: the HTTP
//! fetch (conditional, size- and time-bounded), the XML, the two formats and their quirks, dates,
//! and turning HTML descriptions into text. It knows nothing of HL7, FHIR or the engine: the
//! engine schedules fetches, stores the [`Validators`] between them, and decides what a new item
//! means.
//!
//! - `parse`: [`parse`], bytes to items, with [`MAX_ITEMS`].
//! - `rss`, `atom`: each format's elements.
//! - `xml`: decoding the bytes and walking quick-xml's events (no DTDs, no entity expansion).
//! - `text`: HTML to plain text, whitespace, length.
//! - `date`: RFC 822 and RFC 3339 dates to RFC 3339 UTC.
//! - `item`: [`Item`], and how its id is chosen.
//! - `fetch`: [`Fetcher`], [`Validators`], [`Fetched`].
//! - `error`: [`ParseError`], [`FetchError`].
//!
//! # Bounds
//!
//! Bad input never panics or hangs: every step is linear in the input, nothing recurses (and
//! quick-xml refuses nesting past 65,535 levels), a DOCTYPE is refused, references are never
//! expanded beyond one character or a fixed string, at most [`MAX_ITEMS`] items are read, titles
//! are cut to [`MAX_TITLE_CHARS`] and summaries to [`MAX_SUMMARY_CHARS`]. The fetcher refuses a
//! body over its size limit while it streams in, and gives up when the whole exchange outlasts
//! its timeout.
//!
//! # Example
//!
//! ```
//! let rss = br#"<rss version="2.0"><channel><title>Hospital news</title>
//!   <item><title>New visiting hours</title><guid>n-1</guid>
//!   <pubDate>Tue, 10 Jun 2025 09:00:00 EST</pubDate>
//!   <description>&lt;p&gt;From &lt;b&gt;Monday&lt;/b&gt;.&lt;/p&gt;</description></item>
//! </channel></rss>"#;
//! let items = tributary_adapter_news::parse(rss).unwrap();
//! assert_eq!(items[0].id, "n-1");
//! assert_eq!(items[0].published.as_deref(), Some("2025-06-10T14:00:00Z"));
//! assert_eq!(items[0].summary.as_deref(), Some("From Monday."));
//! ```

#![deny(missing_docs)]

mod atom;
mod date;
mod error;
mod fetch;
mod item;
mod parse;
mod rss;
mod text;
mod xml;

pub use error::{FetchError, ParseError};
pub use fetch::{Fetched, Fetcher, Validators};
pub use item::{Item, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS};
pub use parse::{MAX_ITEMS, parse};
