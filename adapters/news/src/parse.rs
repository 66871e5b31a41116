//! [`parse`]: a document's bytes to its items. Decides the format from the root element and
//! hands the rest to [`rss`](crate::rss) or [`atom`](crate::atom); bounds the work and keeps
//! item ids unique.

use std::collections::HashSet;

use crate::error::ParseError;
use crate::item::{Fields, Item};
use crate::xml::{self, Node, Ns, XmlReader, local_name};
use crate::{atom, rss};

/// The most items read from one document; the rest are ignored (feeds list the newest first,
/// and a feed of thousands is a mistake or an attack, not news).
pub const MAX_ITEMS: usize = 500;

/// Reads an RSS 2.0 or Atom 1.0 document: its items in document order, at most [`MAX_ITEMS`]
/// of them, without repeated ids (the first of each is kept).
///
/// Once [`MAX_ITEMS`] items have been read the rest of the document is not looked at, so a
/// problem after that point goes unnoticed. Relative links are returned as written (the
/// [`Fetcher`](crate::Fetcher) resolves them against the feed's URL).
///
/// # Errors
///
/// [`ParseError`] when the document is not readable text, not well-formed XML, has a DOCTYPE,
/// or is XML of another kind (RSS 1.0, Atom 0.3, an HTML page).
pub fn parse(bytes: &[u8]) -> Result<Vec<Item>, ParseError> {
    let text = xml::decode(bytes)?;
    let mut reader = XmlReader::new(&text);
    let mut items = Collector::default();
    let (root_ns, root, empty) = loop {
        match reader.next()? {
            Node::Start { ns, element, empty } => break (ns, element, empty),
            Node::Text(t) if t.trim().is_empty() => {}
            Node::Text(_) => {
                return Err(ParseError::NotAFeed(
                    "the document starts with text, not an XML element".to_string(),
                ));
            }
            Node::End => return Err(reader.error("an end tag before any element".to_string())),
            Node::Eof => return Err(ParseError::NotAFeed("the document is empty".to_string())),
        }
    };
    match (root_ns, local_name(&root)) {
        (Ns::None, "rss") if !is_rss2(reader.attribute(&root, "version")?.as_deref()) => {
            return Err(ParseError::NotAFeed(
                "the <rss> element's version is not 2.0 (or the compatible 0.91/0.92)".to_string(),
            ));
        }
        (Ns::None, "rss") if empty => {
            return Err(ParseError::NotAFeed(
                "the <rss> element has no <channel>".to_string(),
            ));
        }
        (Ns::None, "rss") => rss::read(&mut reader, &mut items)?,
        (Ns::Atom | Ns::None, "feed") if empty => {}
        (Ns::Atom | Ns::None, "feed") => atom::read(&mut reader, root_ns, &mut items)?,
        (Ns::Rdf, "RDF") => {
            return Err(ParseError::NotAFeed(
                "RSS 1.0 (RDF) feeds are not supported".to_string(),
            ));
        }
        (Ns::Atom03, "feed") => {
            return Err(ParseError::NotAFeed(
                "Atom 0.3 feeds are not supported".to_string(),
            ));
        }
        (_, other) => {
            return Err(ParseError::NotAFeed(format!(
                "the root element is <{other}>, not <rss> or <feed>"
            )));
        }
    }
    if !items.full() {
        // The root has ended: anything but whitespace, comments and processing instructions
        // after it makes the document malformed.
        loop {
            match reader.next()? {
                Node::Eof => break,
                Node::Text(t) if t.trim().is_empty() => {}
                _ => return Err(reader.error("content after the root element".to_string())),
            }
        }
    }
    Ok(items.items)
}

/// RSS 2.0 and the 0.91/0.92 it extends (their items read the same); no `version` at all is
/// taken as 2.0, since the element names leave no doubt.
fn is_rss2(version: Option<&str>) -> bool {
    version.is_none_or(|v| {
        let v = v.trim();
        v.starts_with('2') || v == "0.91" || v == "0.92"
    })
}

/// The items read so far, with the ids already taken.
#[derive(Default)]
pub(crate) struct Collector {
    items: Vec<Item>,
    ids: HashSet<String>,
    /// Items read from the document, including dropped ones: what [`MAX_ITEMS`] bounds.
    read: usize,
}

impl Collector {
    /// Adds the item `fields` make, unless it is empty or its id was seen before.
    pub(crate) fn push(&mut self, fields: Fields) {
        self.read += 1;
        if let Some(item) = fields.into_item()
            && self.ids.insert(item.id.clone())
        {
            self.items.push(item);
        }
    }

    /// Whether [`MAX_ITEMS`] items have been read, so reading should stop.
    pub(crate) fn full(&self) -> bool {
        self.read >= MAX_ITEMS
    }
}

#[cfg(test)]
mod tests;
