//! The portal's news (issue 17, release notes 6.7): the `[news]` section names the RSS 2.0 and
//! Atom feeds the `news-poll` job fetches, and bounds each fetch.

use serde::Deserialize;
use toml::Spanned;

/// `[news]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewsConfig {
    pub feeds: Vec<NewsFeedConfig>,
    /// The largest feed document read; a larger one fails that fetch.
    pub max_feed_bytes: u64,
    /// A fetch (its body included) that takes longer fails.
    pub timeout_secs: u64,
}

/// `[[news.feeds]]`: one feed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewsFeedConfig {
    /// Names the feed's items and its state (unique).
    pub name: Spanned<String>,
    /// An http(s) URL.
    pub url: Spanned<String>,
}

impl Default for NewsConfig {
    fn default() -> NewsConfig {
        NewsConfig {
            feeds: vec![],
            max_feed_bytes: 2 * 1024 * 1024,
            timeout_secs: 20,
        }
    }
}

impl super::Config {
    /// Checks `[news]`: feed names unique and plain, URLs http(s), bounds sensible.
    pub(super) fn validate_news(&self) -> Result<(), super::ConfigError> {
        let mut seen: Vec<&str> = vec![];
        for feed in &self.news.feeds {
            let name = feed.name.get_ref();
            let plain = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !plain || seen.contains(&name.as_str()) {
                return Err(self.error_at(
                    feed.name.span(),
                    "news.feeds.name".into(),
                    format!("`{name}`: each feed needs its own name of letters, digits, - and _"),
                ));
            }
            seen.push(name);
            let url = feed.url.get_ref();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(self.error_at(
                    feed.url.span(),
                    "news.feeds.url".into(),
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
        }
        if self.news.max_feed_bytes < 1024 || self.news.timeout_secs == 0 {
            return Err(super::ConfigError {
                file: self.origin.file.clone(),
                line: 0,
                key: "news".into(),
                message: "max_feed_bytes is at least 1024 and timeout_secs at least 1".into(),
            });
        }
        Ok(())
    }
}
