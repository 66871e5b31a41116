//! [`Item`]: one news item as the engine sees it, whichever format it came in; and how the
//! fields a reader collected become one (the id chosen, the lengths bounded).

use sha2::{Digest, Sha256};

use crate::{date, text};

/// The longest title kept, in characters; longer ones are cut.
pub const MAX_TITLE_CHARS: usize = 500;
/// The longest summary kept, in characters; longer ones are cut.
pub const MAX_SUMMARY_CHARS: usize = 1_000;

/// One item of a feed (an RSS `item` or an Atom `entry`), as plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stable across fetches, unique within one parse: the RSS `guid` or Atom `id`; else the link;
    /// else `sha256:` and a hash of the title and date (and of the summary when both are empty),
    /// so an item without either is still recognised when it comes back.
    pub id: String,
    /// Plain text, at most [`MAX_TITLE_CHARS`] characters; empty when the item has none.
    pub title: String,
    /// The item's web page: RSS `link` (or a `guid` that is a permalink), Atom
    /// `link[@rel=alternate]` or `link` without `rel`.
    pub link: Option<String>,
    /// RFC 3339 in UTC (`2025-06-10T14:00:00Z`); `None` when absent or unreadable.
    pub published: Option<String>,
    /// Plain text (markup stripped, entities decoded), at most [`MAX_SUMMARY_CHARS`] characters.
    pub summary: Option<String>,
}

/// What a format's reader found in one item, before it becomes an [`Item`]. Text is already
/// plain (each format knows whether its fields hold HTML); it is trimmed and cut here.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub(crate) id: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) link: Option<String>,
    /// As written in the feed.
    pub(crate) date: Option<String>,
    pub(crate) summary: Option<String>,
}

impl Fields {
    /// The item these fields make, or `None` when they hold nothing to show or recognise it by
    /// (`<item/>`).
    pub(crate) fn into_item(self) -> Option<Item> {
        let non_empty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let title = text::truncate(non_empty(self.title).unwrap_or_default(), MAX_TITLE_CHARS);
        let link = non_empty(self.link);
        let raw_date = non_empty(self.date);
        let published = raw_date.as_deref().and_then(date::normalize);
        let summary = non_empty(self.summary).map(|s| text::truncate(s, MAX_SUMMARY_CHARS));
        let id = non_empty(self.id).or_else(|| link.clone());
        if id.is_none() && title.is_empty() && summary.is_none() {
            return None;
        }
        let id = id.unwrap_or_else(|| {
            // The normalised date when there is one, so a feed that rewrites the same instant in
            // another zone does not make the item new.
            let date = published.as_deref().or(raw_date.as_deref()).unwrap_or("");
            hashed_id(&title, date, summary.as_deref().unwrap_or(""))
        });
        Some(Item {
            id,
            title,
            link,
            published,
            summary,
        })
    }
}

/// `sha256:` and the first 16 bytes, in hex, of a hash over the title and date; the summary too
/// when both are empty, so items known only by their text are told apart.
fn hashed_id(title: &str, date: &str, summary: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(title.as_bytes());
    // A separator no title or date holds, so ("ab", "c") and ("a", "bc") differ.
    hasher.update([0]);
    hasher.update(date.as_bytes());
    if title.is_empty() && date.is_empty() {
        hasher.update([0]);
        hasher.update(summary.as_bytes());
    }
    let digest = hasher.finalize();
    let mut id = String::with_capacity(7 + 32);
    id.push_str("sha256:");
    for byte in &digest[..16] {
        id.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        id.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_falls_back_to_link_then_hash() {
        let with_link = Fields {
            title: Some("A".into()),
            link: Some(" https://example.org/a ".into()),
            ..Fields::default()
        };
        let item = with_link.into_item().expect("an item");
        assert_eq!(item.id, "https://example.org/a");

        let bare = || Fields {
            title: Some("Visiting hours".into()),
            date: Some("Tue, 10 Jun 2025 09:00:00 EST".into()),
            ..Fields::default()
        };
        let a = bare().into_item().expect("an item");
        let b = bare().into_item().expect("an item");
        assert!(a.id.starts_with("sha256:") && a.id.len() == 7 + 32, "{}", a.id);
        assert_eq!(a.id, b.id, "the hash is stable");
        let same_instant = Fields {
            title: Some("Visiting hours".into()),
            date: Some("2025-06-10T14:00:00Z".into()),
            ..Fields::default()
        };
        assert_eq!(same_instant.into_item().map(|i| i.id), Some(a.id));
    }

    #[test]
    fn empty_items_are_dropped_and_long_text_cut() {
        assert_eq!(Fields::default().into_item(), None);
        let long = Fields {
            id: Some("x".into()),
            title: Some("t".repeat(600)),
            summary: Some("s".repeat(1_200)),
            ..Fields::default()
        };
        let item = long.into_item().expect("an item");
        assert_eq!(item.title.chars().count(), MAX_TITLE_CHARS);
        assert_eq!(item.summary.map(|s| s.chars().count()), Some(MAX_SUMMARY_CHARS));
    }
}
