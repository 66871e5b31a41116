//! The parser on small RSS 2.0 and Atom documents of a fictional hospital's news, and on what
//! is not a feed.

use super::*;
use crate::{MAX_SUMMARY_CHARS, MAX_TITLE_CHARS};

const RSS: &str = include_str!("../../tests/fixtures/hospital-news.rss");
const ATOM: &str = include_str!("../../tests/fixtures/hospital-news.atom");
const MALFORMED: &str = include_str!("../../tests/fixtures/malformed.xml");

fn items(doc: &str) -> Vec<Item> {
    match parse(doc.as_bytes()) {
        Ok(items) => items,
        Err(e) => panic!("{e}\n{doc}"),
    }
}

fn error(doc: impl AsRef<[u8]>) -> ParseError {
    match parse(doc.as_ref()) {
        Ok(items) => panic!("parsed as {items:?}"),
        Err(e) => e,
    }
}

/// An RSS document with `items` (the inside of `<channel>`).
fn rss(items: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Hospital news</title>{items}</channel></rss>"#
    )
}

/// An Atom document with `entries` (the inside of `<feed>`).
fn atom(entries: &str) -> String {
    format!(r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>Hospital news</title>{entries}</feed>"#)
}

#[test]
fn rss_sample() {
    let items = items(RSS);
    let expected = [
        Item {
            id: "rgh-news-0142".into(),
            title: "New visiting hours from Monday".into(),
            link: Some("https://news.riverside-general.example/2025/06/visiting-hours".into()),
            published: Some("2025-06-10T14:00:00Z".into()),
            // Escaped HTML: entities decoded twice (XML, then HTML), tags stripped.
            summary: Some("Visiting hours on wards 3 & 4 are now 10:00\u{2013}20:00.".into()),
        },
        Item {
            id: "https://news.riverside-general.example/2025/06/flu-clinic".into(),
            // CDATA: the `<...>` is text, not markup.
            title: "Flu clinic: walk-ins welcome <no appointment needed>".into(),
            link: Some("https://news.riverside-general.example/2025/06/flu-clinic".into()),
            published: Some("2025-06-09T14:30:00Z".into()),
            summary: Some("The flu clinic in the outpatients wing is open. Bring your card & ID.".into()),
        },
        Item {
            // No guid: the link is the id. `atom:link` is not RSS's `link`.
            id: "https://news.riverside-general.example/2025/06/car-park".into(),
            title: "Car park A closed for resurfacing".into(),
            link: Some("https://news.riverside-general.example/2025/06/car-park".into()),
            published: Some("2025-06-08T07:15:00Z".into()),
            summary: Some("Use car park B \u{2013} signs are up.".into()),
        },
        Item {
            // A permalink guid is the link too; dc:date and content:encoded stand in.
            id: "https://news.riverside-general.example/2025/06/cafe".into(),
            title: "Caf\u{e9} opening times & menu".into(),
            link: Some("https://news.riverside-general.example/2025/06/cafe".into()),
            published: Some("2025-06-07T11:00:00Z".into()),
            summary: Some("Now open until 19:00.".into()),
        },
    ];
    assert_eq!(items, expected);
}

#[test]
fn atom_sample() {
    let items = items(ATOM);
    let expected = [
        Item {
            id: "tag:riverside-general.example,2025:news/7".into(),
            title: "New MRI scanner in radiology".into(),
            // Of several links, the alternate one; `published` rather than `updated`.
            link: Some("https://news.riverside-general.example/2025/06/mri".into()),
            published: Some("2025-06-10T06:00:00Z".into()),
            summary: Some("Shorter waits & quieter scans.".into()),
        },
        Item {
            id: "tag:riverside-general.example,2025:news/6".into(),
            // type="html" title stripped; XHTML content flattened, blocks separated.
            title: "Blood donation drive".into(),
            link: Some("/2025/06/blood-drive".into()),
            published: Some("2025-06-09T10:00:00Z".into()),
            summary: Some("Give blood on Friday. Snacks provided.".into()),
        },
        Item {
            id: "tag:riverside-general.example,2025:news/5".into(),
            title: "Pharmacy hours".into(),
            link: None,
            published: Some("2025-06-08T15:00:00Z".into()),
            // type="text": the decoded `<weekdays>` is text, not a tag.
            summary: Some("Open 8 to 8 <weekdays>".into()),
        },
    ];
    assert_eq!(items, expected);
}

#[test]
fn rss_dates_with_named_zones_and_offsets() {
    let doc = rss(
        "<item><guid>a</guid><pubDate>Wed, 11 Jun 2025 08:00:00 GMT</pubDate></item>\
         <item><guid>b</guid><pubDate>Wed, 11 Jun 2025 08:00:00 EST</pubDate></item>\
         <item><guid>c</guid><pubDate>Wed, 11 Jun 2025 08:00:00 -0700</pubDate></item>\
         <item><guid>d</guid><pubDate>11 Jun 2025 08:00 +0530</pubDate></item>\
         <item><guid>e</guid><pubDate>sometime next week</pubDate></item>",
    );
    let dates: Vec<_> = items(&doc).into_iter().map(|i| i.published).collect();
    assert_eq!(
        dates,
        [
            Some("2025-06-11T08:00:00Z".to_string()),
            Some("2025-06-11T13:00:00Z".to_string()),
            Some("2025-06-11T15:00:00Z".to_string()),
            Some("2025-06-11T02:30:00Z".to_string()),
            None,
        ]
    );
}

#[test]
fn ids_fall_back_to_link_then_a_hash() {
    let doc = rss(
        "<item><title>With link</title><link> https://h.example/a </link></item>\
         <item><title>Bare</title><pubDate>Wed, 11 Jun 2025 08:00:00 GMT</pubDate></item>\
         <item><title>Bare</title><pubDate>Thu, 12 Jun 2025 08:00:00 GMT</pubDate></item>\
         <item><guid>  </guid><title>Blank guid</title></item>",
    );
    let items = items(&doc);
    assert_eq!(items.len(), 4);
    assert_eq!(items[0].id, "https://h.example/a");
    assert_eq!(items[0].link.as_deref(), Some("https://h.example/a"));
    assert!(items[1].id.starts_with("sha256:"), "{}", items[1].id);
    assert_ne!(items[1].id, items[2].id, "the date is part of the hash");
    assert!(items[3].id.starts_with("sha256:"), "{}", items[3].id);
    // The same item in another parse gets the same id.
    assert_eq!(
        parse(doc.as_bytes()).map(|i| i[1].id.clone()),
        Ok(items[1].id.clone())
    );
}

#[test]
fn duplicate_ids_keep_the_first() {
    let doc = rss("<item><guid>n-1</guid><title>First</title></item>\
         <item><guid>n-2</guid><title>Second</title></item>\
         <item><guid>n-1</guid><title>First, again</title></item>\
         <item><link>https://h.example/x</link><title>Linked</title></item>\
         <item><link>https://h.example/x</link><title>Linked, again</title></item>");
    let titles: Vec<_> = items(&doc).into_iter().map(|i| i.title).collect();
    assert_eq!(titles, ["First", "Second", "Linked"]);

    let doc = atom(
        "<entry><id>e</id><title>One</title><updated>2025-06-11T08:00:00Z</updated></entry>\
         <entry><id>e</id><title>Two</title><updated>2025-06-11T08:00:00Z</updated></entry>",
    );
    let titles: Vec<_> = items(&doc).into_iter().map(|i| i.title).collect();
    assert_eq!(titles, ["One"]);
}

#[test]
fn entities_cdata_and_whitespace_in_titles() {
    let doc = rss(
        "<item><guid>1</guid><title>  Wards &amp; clinics\n   &lt;east&gt; &quot;wing&quot; &apos;B&apos; </title></item>\
         <item><guid>2</guid><title>Caf&eacute;&nbsp;hours &unknown; AT&T</title></item>\
         <item><guid>3</guid><title>A<![CDATA[ & <b>B</b> ]]>C</title></item>\
         <item><guid>4</guid><title>&#x1F3E5; &#127973;</title></item>",
    );
    let titles: Vec<_> = items(&doc).into_iter().map(|i| i.title).collect();
    assert_eq!(
        titles,
        [
            "Wards & clinics <east> \"wing\" 'B'",
            // HTML names feeds use undeclared are decoded; an unknown one and a bare `&` stay.
            "Caf\u{e9} hours &unknown; AT&T",
            "A & <b>B</b> C",
            "\u{1f3e5} \u{1f3e5}",
        ]
    );
}

#[test]
fn html_descriptions_become_text() {
    let doc = rss(
        "<item><guid>1</guid><description>&lt;h2&gt;Notice&lt;/h2&gt;&lt;ul&gt;&lt;li&gt;One&lt;/li&gt;\
         &lt;li&gt;Two&lt;/li&gt;&lt;/ul&gt;&lt;img src=&quot;x.png&quot;&gt;&lt;style&gt;p{}&lt;/style&gt;\
         See&amp;nbsp;&amp;lt;here&amp;gt;</description></item>\
         <item><guid>2</guid><description><![CDATA[<p>Line<br/>break &copy; 2025</p><!-- note -->]]></description></item>\
         <item><guid>3</guid><description>   </description></item>",
    );
    let summaries: Vec<_> = items(&doc).into_iter().map(|i| i.summary).collect();
    assert_eq!(
        summaries,
        [
            Some("Notice One Two See <here>".to_string()),
            Some("Line break \u{a9} 2025".to_string()),
            None,
        ]
    );
}

#[test]
fn long_titles_and_summaries_are_cut() {
    let title = "Ward ".repeat(200);
    let summary = "&lt;p&gt;Long&lt;/p&gt; ".repeat(400);
    let doc = rss(&format!(
        "<item><guid>1</guid><title>{title}</title><description>{summary}</description></item>"
    ));
    let item = &items(&doc)[0];
    assert_eq!(
        item.title.chars().count(),
        MAX_TITLE_CHARS - 1,
        "cut at 500, then trimmed"
    );
    assert!(item.title.starts_with("Ward Ward"));
    let summary = item.summary.as_deref().unwrap_or_default();
    assert!(summary.chars().count() <= MAX_SUMMARY_CHARS);
    assert!(summary.starts_with("Long Long"));
}

#[test]
fn at_most_max_items_are_read() {
    let many: String = (0..MAX_ITEMS + 100)
        .map(|i| format!("<item><guid>{i}</guid><title>T{i}</title></item>"))
        .collect();
    // What follows the 500th item is not read: not even the missing end tags.
    let doc = format!(r#"<rss version="2.0"><channel>{many}"#);
    let items = items(&doc);
    assert_eq!(items.len(), MAX_ITEMS);
    assert_eq!(items[MAX_ITEMS - 1].title, format!("T{}", MAX_ITEMS - 1));

    let many: String = (0..MAX_ITEMS + 1)
        .map(|i| format!("<entry><id>{i}</id><title>T</title></entry>"))
        .collect();
    assert_eq!(parse(atom(&many).as_bytes()).map(|i| i.len()), Ok(MAX_ITEMS));
}

#[test]
fn atom_links_and_text_kinds() {
    let doc = atom(
        r#"<entry><id>1</id><title type="text">a &lt;b&gt; c</title>
             <link rel="self" href="https://h.example/self"/>
             <link rel="related" href="https://h.example/related"/>
             <link rel="alternate" href="https://h.example/one?a=1&amp;b=2"/>
             <link href="https://h.example/two"/>
             <content type="text/html">&lt;p&gt;Hi&lt;/p&gt;</content></entry>
           <entry><id>2</id><title>No alternate</title><link rel="self" href="https://h.example/s"/>
             <summary></summary><content src="https://h.example/body" type="text/html"/></entry>
           <entry><id>3</id><title>Binary</title><content type="image/png">iVBORw0KGgo=</content>
             <summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x &amp; y</div></summary></entry>"#,
    );
    let items = items(&doc);
    assert_eq!(items[0].title, "a <b> c");
    assert_eq!(items[0].link.as_deref(), Some("https://h.example/one?a=1&b=2"));
    assert_eq!(items[0].summary.as_deref(), Some("Hi"));
    assert_eq!(items[1].link, None);
    assert_eq!(items[1].summary, None);
    assert_eq!(items[2].summary.as_deref(), Some("x & y"));
}

#[test]
fn foreign_elements_and_empty_items_are_ignored() {
    let doc = rss(
        r#"<item xmlns:media="http://search.yahoo.com/mrss/"><guid>1</guid><title>Kept</title>
             <media:title>Not the title</media:title><media:content url="x"><media:title>No</media:title></media:content>
             <category>News</category><enclosure url="https://h.example/a.mp3" length="1" type="audio/mpeg"/></item>
           <item/><item>  </item><image><title>Logo</title></image>"#,
    );
    let items = items(&doc);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].title, "Kept");
    // Atom without its namespace is still Atom; an entry of no namespace in a namespaced feed
    // is not.
    let doc = "<feed><entry><id>1</id><title>T</title></entry></feed>";
    assert_eq!(parse(doc.as_bytes()).map(|i| i.len()), Ok(1));
    let doc = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry xmlns=""><id>1</id></entry></feed>"#;
    assert_eq!(parse(doc.as_bytes()).map(|i| i.len()), Ok(0));
    assert_eq!(
        parse(br#"<rss version="2.0"><channel/></rss>"#).map(|i| i.len()),
        Ok(0)
    );
    assert_eq!(
        parse(b"<feed xmlns='http://www.w3.org/2005/Atom'/>").map(|i| i.len()),
        Ok(0)
    );
}

#[test]
fn encodings() {
    let title = |doc: &[u8]| parse(doc).map(|items| items[0].title.clone());
    let body =
        "<rss><channel><item><guid>1</guid><title>Caf\u{e9} \u{2013} ward</title></item></channel></rss>";
    let bom: Vec<u8> = b"\xef\xbb\xbf".iter().copied().chain(body.bytes()).collect();
    assert_eq!(title(&bom), Ok("Caf\u{e9} \u{2013} ward".to_string()));
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(body.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(title(&utf16), Ok("Caf\u{e9} \u{2013} ward".to_string()));
    let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?><rss><channel><item><guid>1</guid><title>Caf\xe9</title></item></channel></rss>";
    assert_eq!(title(latin1), Ok("Caf\u{e9}".to_string()));
    let cp1252 = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><rss><channel><item><guid>1</guid><title>\x93Hi\x94</title></item></channel></rss>";
    assert_eq!(title(cp1252), Ok("\u{201c}Hi\u{201d}".to_string()));
    assert!(matches!(
        error(b"<rss><channel><item><title>Caf\xe9</title></item></channel></rss>"),
        ParseError::Encoding(_)
    ));
    let shift_jis = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><rss/>";
    assert!(matches!(error(shift_jis), ParseError::Encoding(m) if m.contains("Shift_JIS")));
}

#[test]
fn malformed_documents_are_errors() {
    assert!(
        matches!(error(MALFORMED), ParseError::Malformed { line: 7, .. }),
        "{}",
        error(MALFORMED)
    );
    let cases = [
        "<rss><channel><item><title>x</item></channel></rss>",
        "<rss><channel><item><title>x</title>",
        "<rss><channel></channel>",
        "<rss><channel></channel></rss><rss/>",
        "<rss><channel></channel></rss>trailing text",
        "</rss>",
        "<rss><channel><item><title>&#0;</title></item></channel></rss>",
        "<rss><channel><item a='1' a='2'><title>x</title></item></channel></rss>",
        "<rss version='2.0' version='2.0'><channel/></rss>",
        "<rss><channel><item><title><![CDATA[never closed</title></item></channel></rss>",
        "<rss><channel><item><title>x</title></item></channel></rss",
        "<feed xmlns='http://www.w3.org/2005/Atom'><entry><link href='x' rel/></entry></feed>",
    ];
    for doc in cases {
        match parse(doc.as_bytes()) {
            Err(ParseError::Malformed { message, .. }) => assert!(!message.is_empty()),
            other => panic!("{doc}: {other:?}"),
        }
    }
}

#[test]
fn doctypes_are_refused() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
        <rss><channel><item><title>&b;</title></item></channel></rss>"#;
    let external = r#"<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>
        <rss><channel><item><title>&x;</title></item></channel></rss>"#;
    let html = "<!DOCTYPE html><html><head><title>Hospital</title></head><body></body></html>";
    for doc in [bomb, external, html] {
        assert_eq!(error(doc), ParseError::Doctype);
    }
    assert!(error(html).to_string().contains("HTML page"));
}

#[test]
fn other_documents_are_not_feeds() {
    let cases = [
        ("", "empty"),
        ("   \n", "empty"),
        ("<!-- only a comment -->", "empty"),
        ("{\"items\": []}", "starts with text"),
        ("Hospital news", "starts with text"),
        ("<html><body>Hospital news</body></html>", "<html>"),
        (
            r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel/></rdf:RDF>"#,
            "RSS 1.0",
        ),
        (
            r#"<feed xmlns="http://purl.org/atom/ns#" version="0.3"></feed>"#,
            "Atom 0.3",
        ),
        (r#"<feed xmlns="urn:other"></feed>"#, "<feed>"),
        (r#"<x:rss xmlns:x="urn:other"><channel/></x:rss>"#, "<rss>"),
        ("<rss version='2.0'/>", "no <channel>"),
        ("<rss version='2.0'><title>x</title></rss>", "no <channel>"),
        ("<rss version='1.0'><channel/></rss>", "version"),
    ];
    for (doc, says) in cases {
        match parse(doc.as_bytes()) {
            Err(e @ ParseError::NotAFeed(_)) => assert!(e.to_string().contains(says), "{doc}: {e}"),
            other => panic!("{doc}: {other:?}"),
        }
    }
}

#[test]
fn error_messages_read_well() {
    assert_eq!(
        error("<html/>").to_string(),
        "not an RSS 2.0 or Atom 1.0 feed: the root element is <html>, not <rss> or <feed>"
    );
    assert!(
        error(MALFORMED)
            .to_string()
            .starts_with("malformed XML at line 7: ")
    );
}

#[test]
fn rss_with_a_declared_default_namespace() {
    let doc = r#"<rss version="2.0" xmlns="http://backend.userland.com/rss2"><channel>
        <item><guid>1</guid><title>Userland</title></item></channel></rss>"#;
    assert_eq!(items(doc)[0].title, "Userland");
}

#[test]
fn huge_fields_are_bounded() {
    // One text node of 4 MB, and many small ones: both kept to a bounded size, then cut.
    let big = "w".repeat(4 << 20);
    let many = "ward &amp; ".repeat(200_000);
    let doc = rss(&format!(
        "<item><guid>1</guid><title>{big}</title><description>{many}</description></item>"
    ));
    let item = &items(&doc)[0];
    assert_eq!(item.title.len(), MAX_TITLE_CHARS);
    assert!(
        item.summary
            .as_deref()
            .is_some_and(|s| s.starts_with("ward & ward"))
    );
    // Deep nesting inside an item is walked without recursion; quick-xml refuses past 65,535.
    let nested = |depth: usize| {
        let deep = format!("{}{}", "<x>".repeat(depth), "</x>".repeat(depth));
        rss(&format!(
            "<item><guid>1</guid><title>T</title><description>{deep}</description></item>"
        ))
    };
    assert_eq!(items(&nested(60_000))[0].title, "T");
    assert!(
        matches!(error(nested(100_000)), ParseError::Malformed { message, .. } if message.contains("deeper"))
    );
}
