//! Property tests of the parser: nothing panics, and what a generated feed says is what comes
//! back.

use proptest::prelude::*;
use tributary_adapter_news::{MAX_ITEMS, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, parse};

/// Checks what holds of any successful parse.
fn check_bounds(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(items) = parse(bytes) {
        prop_assert!(items.len() <= MAX_ITEMS);
        let mut ids: Vec<_> = items.iter().map(|i| i.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), items.len(), "ids are unique");
        for item in &items {
            prop_assert!(!item.id.is_empty());
            prop_assert!(item.title.chars().count() <= MAX_TITLE_CHARS);
            prop_assert!(
                item.summary
                    .as_ref()
                    .is_none_or(|s| s.chars().count() <= MAX_SUMMARY_CHARS)
            );
            prop_assert_eq!(item.title.trim(), item.title.as_str());
        }
        prop_assert_eq!(parse(bytes).ok(), Some(items), "the same bytes parse the same");
    }
    Ok(())
}

/// Pieces of feeds, so random documents get past the first element often enough to exercise
/// the readers, not only the XML tokenizer.
fn feed_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<rss version=\"2.0\">".to_string()),
        Just("<channel>".to_string()),
        Just("<item>".to_string()),
        Just("</item>".to_string()),
        Just("<item/>".to_string()),
        Just("<title>".to_string()),
        Just("</title>".to_string()),
        Just("<guid>".to_string()),
        Just("</guid>".to_string()),
        Just("<link>".to_string()),
        Just("</link>".to_string()),
        Just("<description>".to_string()),
        Just("</description>".to_string()),
        Just("<pubDate>Tue, 10 Jun 2025 09:00:00 EST</pubDate>".to_string()),
        Just("</channel></rss>".to_string()),
        Just("<feed xmlns=\"http://www.w3.org/2005/Atom\">".to_string()),
        Just("<entry>".to_string()),
        Just("</entry>".to_string()),
        Just("<summary type=\"html\">".to_string()),
        Just("</summary>".to_string()),
        Just("<link rel=\"alternate\" href=\"/a\"/>".to_string()),
        Just("</feed>".to_string()),
        Just("<![CDATA[<p>x</p>]]>".to_string()),
        Just("&lt;p&gt;".to_string()),
        Just("&amp;".to_string()),
        Just("&nbsp;".to_string()),
        Just("&#x1F3E5;".to_string()),
        Just("&bogus;".to_string()),
        Just("<!-- c -->".to_string()),
        Just("<!DOCTYPE x>".to_string()),
        "[ -~]{0,12}",
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

/// A title with XML's special characters, spaces and non-ASCII text.
fn title() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&'\";#=/\\]\\[!?é€\u{1F3E5}-]{0,40}"
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What the parser makes of a title: trimmed, runs of whitespace made one space.
fn collapsed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_bounds(&bytes)?;
    }

    #[test]
    fn feed_like_soup_never_panics(doc in feed_soup()) {
        check_bounds(doc.as_bytes())?;
    }

    #[test]
    fn generated_rss_gives_its_titles_back(titles in prop::collection::vec((title(), any::<bool>()), 0..40)) {
        let mut doc = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>Hospital news</title>\n",
        );
        for (i, (title, cdata)) in titles.iter().enumerate() {
            // CDATA cannot hold its own terminator; such a title is escaped instead.
            let written = if *cdata && !title.contains("]]>") {
                format!("<![CDATA[{title}]]>")
            } else {
                escape(title)
            };
            doc.push_str(&format!("<item>\n  <title>{written}</title>\n  <guid>item-{i}</guid>\n</item>\n"));
        }
        doc.push_str("</channel></rss>\n");
        let items = parse(doc.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
        let got: Vec<_> = items.into_iter().map(|i| i.title).collect();
        let expected: Vec<_> = titles.iter().map(|(t, _)| collapsed(t)).collect();
        prop_assert_eq!(got, expected);
    }
}
