//! RSS 2.0: `rss/channel/item`, and in each item `title`, `link`, `guid`, `pubDate` and
//! `description`.
//!
//! Only elements in no namespace are RSS's own: `atom:link` beside `link`, common in RSS feeds,
//! is someone else's. Two extensions are read as fallbacks because many feeds rely on them:
//! `content:encoded` when there is no `description`, and `dc:date` when there is no `pubDate`.
//! An RSS `description` is HTML (escaped or in CDATA) by long practice; a `title` is plain text.

use crate::error::ParseError;
use crate::item::Fields;
use crate::parse::Collector;
use crate::text;
use crate::xml::{Node, Ns, XmlReader, local_name};

/// After `<rss ...>` (not empty): reads the channel's items into `items`.
pub(crate) fn read(xml: &mut XmlReader<'_>, items: &mut Collector) -> Result<(), ParseError> {
    let mut channel = false;
    loop {
        match xml.next()? {
            Node::Start {
                ns: Ns::None,
                element,
                empty,
            } if !channel && local_name(&element) == "channel" => {
                channel = true;
                if !empty {
                    read_channel(xml, items)?;
                    if items.full() {
                        return Ok(());
                    }
                }
            }
            Node::Start { empty: false, .. } => xml.skip()?,
            Node::Start { .. } | Node::Text(_) => {}
            Node::End => break,
            Node::Eof => return Err(xml.unclosed()),
        }
    }
    if channel {
        Ok(())
    } else {
        Err(ParseError::NotAFeed(
            "the <rss> element has no <channel>".to_string(),
        ))
    }
}

/// After `<channel>`: its items, until its end or until `items` is full.
fn read_channel(xml: &mut XmlReader<'_>, items: &mut Collector) -> Result<(), ParseError> {
    loop {
        match xml.next()? {
            Node::Start {
                ns: Ns::None,
                element,
                empty,
            } if local_name(&element) == "item" => {
                let fields = if empty { Fields::default() } else { read_item(xml)? };
                items.push(fields);
                if items.full() {
                    return Ok(());
                }
            }
            Node::Start { empty: false, .. } => xml.skip()?,
            Node::Start { .. } | Node::Text(_) => {}
            Node::End => return Ok(()),
            Node::Eof => return Err(xml.unclosed()),
        }
    }
}

/// After `<item>`: its fields. The first of a repeated element counts.
fn read_item(xml: &mut XmlReader<'_>) -> Result<Fields, ParseError> {
    let mut fields = Fields::default();
    let mut permalink = true;
    let mut dc_date = None;
    let mut encoded = None;
    loop {
        let (ns, element, empty) = match xml.next()? {
            Node::Start { ns, element, empty } => (ns, element, empty),
            Node::Text(_) => continue,
            Node::End => break,
            Node::Eof => return Err(xml.unclosed()),
        };
        let slot = match (ns, local_name(&element)) {
            (Ns::None, "title") => &mut fields.title,
            (Ns::None, "link") => &mut fields.link,
            (Ns::None, "guid") => {
                // isPermaLink defaults to true: the guid is then the item's URL too.
                permalink = xml
                    .attribute(&element, "isPermaLink")?
                    .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
                &mut fields.id
            }
            (Ns::None, "pubDate") => &mut fields.date,
            (Ns::None, "description") => &mut fields.summary,
            (Ns::Content, "encoded") => &mut encoded,
            (Ns::Dc, "date") => &mut dc_date,
            _ => {
                if !empty {
                    xml.skip()?;
                }
                continue;
            }
        };
        if empty {
            continue;
        }
        if slot.is_some() {
            xml.skip()?;
        } else {
            *slot = Some(xml.text()?);
        }
    }
    fields.title = fields.title.map(|t| text::collapse(&t));
    fields.summary = fields.summary.or(encoded).map(|s| text::html_to_text(&s));
    fields.date = fields.date.or(dc_date);
    if fields.link.as_deref().is_none_or(|l| l.trim().is_empty()) && permalink {
        fields.link = fields
            .id
            .as_deref()
            .map(str::trim)
            .filter(|id| is_url(id))
            .map(str::to_string);
    }
    Ok(fields)
}

fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}
