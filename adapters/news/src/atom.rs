//! Atom 1.0 (RFC 4287): `feed/entry`, and in each entry `id`, `title`, `link`, `published` or
//! `updated`, and `summary` or `content`.
//!
//! Atom says what its text holds (`type="text"`, `"html"` or `"xhtml"`), so HTML is stripped only
//! where it is declared. The link is the first `rel="alternate"` one, or one without `rel`
//! (which means alternate); `self`, `edit`, `enclosure` and the like are not the item's page.

use crate::error::ParseError;
use crate::item::Fields;
use crate::parse::Collector;
use crate::text;
use crate::xml::{Node, Ns, XmlReader, local_name};

/// After `<feed ...>` (not empty), whose namespace is `ns` (Atom's, or none for feeds that
/// forgot it): reads its entries into `items`.
pub(crate) fn read(xml: &mut XmlReader<'_>, ns: Ns, items: &mut Collector) -> Result<(), ParseError> {
    loop {
        match xml.next()? {
            Node::Start {
                ns: child_ns,
                element,
                empty,
            } if child_ns == ns && local_name(&element) == "entry" => {
                let fields = if empty {
                    Fields::default()
                } else {
                    read_entry(xml, ns)?
                };
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

/// How an Atom text construct or `content` holds its text.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Html,
    /// XHTML or other XML: the text of its elements, already flattened by the reader.
    Xml,
    /// Base64 of some other media type, or content that lives elsewhere (`src`): no text here.
    Opaque,
}

impl Kind {
    fn of(type_attr: Option<&str>, has_src: bool) -> Kind {
        if has_src {
            return Kind::Opaque;
        }
        let Some(t) = type_attr.map(|t| t.trim().to_ascii_lowercase()) else {
            return Kind::Text;
        };
        match t.as_str() {
            "" | "text" | "text/plain" => Kind::Text,
            "html" | "text/html" => Kind::Html,
            "xhtml" => Kind::Xml,
            t if t.ends_with("+xml") || t.ends_with("/xml") => Kind::Xml,
            t if t.starts_with("text/") => Kind::Text,
            _ => Kind::Opaque,
        }
    }

    fn plain(self, raw: &str) -> Option<String> {
        match self {
            Kind::Text | Kind::Xml => Some(text::collapse(raw)),
            Kind::Html => Some(text::html_to_text(raw)),
            Kind::Opaque => None,
        }
    }
}

/// After `<entry>`: its fields. The first of a repeated element counts.
fn read_entry(xml: &mut XmlReader<'_>, atom: Ns) -> Result<Fields, ParseError> {
    let mut fields = Fields::default();
    let mut published = None;
    let mut updated = None;
    let mut summary = None;
    let mut content = None;
    loop {
        let (ns, element, empty) = match xml.next()? {
            Node::Start { ns, element, empty } => (ns, element, empty),
            Node::Text(_) => continue,
            Node::End => break,
            Node::Eof => return Err(xml.unclosed()),
        };
        let name = if ns == atom { local_name(&element) } else { "" };
        if name == "link" {
            if fields.link.is_none() {
                let rel = xml.attribute(&element, "rel")?;
                let alternate = rel.as_deref().is_none_or(|r| {
                    let r = r.trim();
                    r.is_empty()
                        || r == "alternate"
                        || r == "http://www.iana.org/assignments/relation/alternate"
                });
                if alternate {
                    fields.link = xml.attribute(&element, "href")?.filter(|h| !h.trim().is_empty());
                }
            }
            if !empty {
                xml.skip()?;
            }
            continue;
        }
        let (slot, kind) = match name {
            "id" => (&mut fields.id, None),
            "published" => (&mut published, None),
            "updated" => (&mut updated, None),
            "title" | "summary" | "content" => {
                let type_attr = xml.attribute(&element, "type")?;
                let has_src = name == "content" && xml.attribute(&element, "src")?.is_some();
                let kind = Kind::of(type_attr.as_deref(), has_src);
                let slot = match name {
                    "title" => &mut fields.title,
                    "summary" => &mut summary,
                    _ => &mut content,
                };
                (slot, Some(kind))
            }
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
            continue;
        }
        let raw = xml.text()?;
        *slot = match kind {
            Some(kind) => kind.plain(&raw),
            None => Some(raw),
        };
    }
    // `published` is when the item first appeared, which is what a news list shows; `updated`
    // (required by Atom) stands in when it is absent.
    fields.date = published.or(updated);
    fields.summary = summary.filter(|s| !s.is_empty()).or(content);
    Ok(fields)
}
