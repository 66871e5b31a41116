//! Fuzz target: the news feed reader (`tributary_adapter_news::parse`) on any bytes, as a feed
//! body fetched from a URL someone configured.
//!
//! A feed comes from outside and may be anything: garbage, an HTML page, a hostile XML document.
//! The reader must answer every input with items or a `ParseError`, never a panic or a hang, and
//! what it returns must keep its promises: at most `MAX_ITEMS` items, ids non-empty and unique,
//! titles and summaries trimmed, within their lengths and free of control characters, dates in
//! RFC 3339 UTC (`...Z`), and the same bytes parsed twice give the same items.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tributary_adapter_news::{MAX_ITEMS, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, parse};

fn plain(text: &str) -> bool {
    text.trim() == text && !text.chars().any(|c| c.is_control())
}

fuzz_target!(|data: &[u8]| {
    let Ok(items) = parse(data) else {
        return;
    };
    assert!(items.len() <= MAX_ITEMS, "{} items", items.len());
    let mut ids = HashSet::new();
    for item in &items {
        assert!(!item.id.is_empty(), "an empty id: {item:?}");
        assert!(ids.insert(item.id.as_str()), "a repeated id: {item:?}");
        assert!(item.title.chars().count() <= MAX_TITLE_CHARS, "{item:?}");
        assert!(plain(&item.title), "{item:?}");
        if let Some(summary) = &item.summary {
            assert!(
                !summary.is_empty() && summary.chars().count() <= MAX_SUMMARY_CHARS,
                "{item:?}"
            );
            assert!(plain(summary), "{item:?}");
        }
        if let Some(published) = &item.published {
            assert!(published.ends_with('Z') && published.contains('T'), "{item:?}");
        }
    }
    assert_eq!(
        parse(data).ok().as_ref(),
        Some(&items),
        "parsing is deterministic"
    );
});
