//! The portal's news (release notes 6.7): the items of every configured feed, as the
//! `news-poll` job last fetched them, and how each feed's fetches went.
//!
//! A fetch that brings the feed replaces its items (the feed is the source: an item it no
//! longer lists goes). A fetch that finds the feed unchanged (304), fails, or gets a document
//! that is no feed changes no item: the old items stay, and the failure is kept with the feed's
//! state for an analyst to see, to be retried on the next run.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tributary_adapter_news::{Fetched, Item, Validators};

use crate::store::{Keyspace, Overlay, Reader, Store, StoreError};

/// The most items read back at once (every feed's, newest first).
const MAX_SCANNED: usize = 100_000;

/// How a feed's fetches went, and what to send back on the next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When the job last tried it.
    pub last_run: Option<String>,
    /// When it last answered with the feed or "not modified".
    pub last_success: Option<String>,
    /// Why the last run failed, while it has not succeeded since.
    pub last_error: Option<String>,
    /// Items kept.
    pub items: usize,
}

impl FeedState {
    pub fn validators(&self) -> Validators {
        Validators {
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        }
    }
}

/// A feed's state (empty before its first run).
pub fn state(reader: &dyn Reader, feed: &str) -> Result<FeedState, StoreError> {
    Ok(reader
        .get(Keyspace::NewsFeed, feed.as_bytes())?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

fn item_prefix(feed: &str) -> Vec<u8> {
    let mut prefix = feed.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

/// Writes what one fetch of `feed` brought: its items and state, or the failure (`Err`, its
/// message), which leaves the items as they were.
pub fn record(
    tx: &mut Overlay<'_>,
    feed: &str,
    fetched: Result<Fetched, String>,
    now: &str,
) -> Result<FeedState, StoreError> {
    let mut state = state(tx, feed)?;
    state.last_run = Some(now.to_string());
    match fetched {
        Ok(Fetched::NotModified) => {
            state.last_success = Some(now.to_string());
            state.last_error = None;
        }
        Ok(Fetched::Changed { items, validators }) => {
            let prefix = item_prefix(feed);
            let kept: Vec<Vec<u8>> = items
                .iter()
                .map(|item| [prefix.as_slice(), item.id.as_bytes()].concat())
                .collect();
            for (key, _) in tx.scan_prefix(Keyspace::NewsItem, &prefix, MAX_SCANNED)? {
                if !kept.contains(&key) {
                    tx.delete(Keyspace::NewsItem, key);
                }
            }
            for (key, item) in kept.into_iter().zip(&items) {
                let value = serde_json::to_vec(&item_json(feed, item)).expect("an item serializes");
                tx.put(Keyspace::NewsItem, key, value);
            }
            state.items = items.len();
            state.etag = validators.etag;
            state.last_modified = validators.last_modified;
            state.last_success = Some(now.to_string());
            state.last_error = None;
        }
        Err(error) => state.last_error = Some(error),
    }
    tx.put(
        Keyspace::NewsFeed,
        feed.as_bytes().to_vec(),
        serde_json::to_vec(&state).expect("a feed state serializes"),
    );
    Ok(state)
}

fn item_json(feed: &str, item: &Item) -> Value {
    json!({
        "feed": feed,
        "id": item.id,
        "title": item.title,
        "link": item.link,
        "published": item.published,
        "summary": item.summary,
    })
}

/// The `limit` newest items across every feed (undated ones last).
pub fn newest(store: &dyn Store, limit: usize) -> Result<Vec<Value>, StoreError> {
    let mut items: Vec<Value> = store
        .scan_prefix(Keyspace::NewsItem, b"", MAX_SCANNED)?
        .into_iter()
        .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
        .collect();
    items.sort_by(|a: &Value, b: &Value| {
        let published = |v: &Value| v["published"].as_str().map(str::to_string);
        published(b).cmp(&published(a))
    });
    items.truncate(limit);
    Ok(items)
}
