//! The XML layer under both formats: bytes to text in a known encoding, and a walk over
//! quick-xml's events that hands the format readers only what they need (elements with a
//! resolved namespace, and text with CDATA and references already resolved).
//!
//! Nothing here recurses and nothing is expanded: a DOCTYPE is refused outright (it is where
//! entity bombs and external entities live), and references are only the predefined ones,
//! character numbers and a fixed table of HTML names, so the work stays linear in the input.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

use crate::error::ParseError;
use crate::text;

/// How much text one field keeps before the rest is skipped: far more than any title or summary
/// needs once stripped, small enough that one huge `description` cannot hold the memory of many.
const MAX_FIELD_BYTES: usize = 256 * 1024;

/// The namespaces whose elements the readers look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    /// No namespace: RSS 2.0's own elements (and Atom's in a feed that forgot its namespace).
    None,
    /// `http://www.w3.org/2005/Atom`.
    Atom,
    /// `http://purl.org/rss/1.0/modules/content/` (`content:encoded`).
    Content,
    /// `http://purl.org/dc/elements/1.1/` (`dc:date`).
    Dc,
    /// `http://www.w3.org/1999/02/22-rdf-syntax-ns#` (RSS 1.0's root).
    Rdf,
    /// `http://purl.org/atom/ns#` (Atom 0.3).
    Atom03,
    Other,
}

impl Ns {
    fn of(resolved: &ResolveResult<'_>) -> Ns {
        match resolved {
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Bound(Namespace(ns)) => match *ns {
                // Namespaces some RSS 2.0 feeds declare as their default, though RSS has none.
                "http://backend.userland.com/rss2" | "http://blogs.law.harvard.edu/tech/rss" => Ns::None,
                "http://www.w3.org/2005/Atom" => Ns::Atom,
                "http://purl.org/rss/1.0/modules/content/" => Ns::Content,
                "http://purl.org/dc/elements/1.1/" => Ns::Dc,
                "http://www.w3.org/1999/02/22-rdf-syntax-ns#" => Ns::Rdf,
                "http://purl.org/atom/ns#" => Ns::Atom03,
                _ => Ns::Other,
            },
            // A prefix never declared: not well-formed with namespaces, but nothing we read.
            ResolveResult::Unknown(_) => Ns::Other,
        }
    }
}

/// What the readers see of the document.
pub(crate) enum Node<'i> {
    /// An element opens; `empty` when it is `<x/>` (no matching [`Node::End`] follows).
    Start {
        ns: Ns,
        element: BytesStart<'i>,
        empty: bool,
    },
    End,
    /// Character data, CDATA or a resolved reference. Several may follow one another.
    Text(Cow<'i, str>),
    Eof,
}

/// An element's name without its prefix (`link` for `atom:link`); the readers pair it with the
/// namespace the prefix resolved to.
pub(crate) fn local_name<'a>(element: &'a BytesStart<'_>) -> &'a str {
    let name = element.name().0;
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// The document as text. UTF-8 unless a byte order mark or the XML declaration says otherwise;
/// ISO-8859-1 and windows-1252 are still common in older feeds and cost a table, not a crate.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, ParseError> {
    if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        return utf8(rest);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        return utf16(rest, u16::from_be_bytes);
    }
    let declared = declared_encoding(bytes);
    match declared.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => utf8(bytes),
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "iso_8859-1") => {
            Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
        }
        Some("windows-1252" | "cp1252") => Ok(Cow::Owned(bytes.iter().map(|&b| windows_1252(b)).collect())),
        Some(_) => Err(ParseError::Encoding(format!(
            "the declared encoding {:?} is not supported (UTF-8, UTF-16, ISO-8859-1, windows-1252 are)",
            declared.unwrap_or_default()
        ))),
    }
}

fn utf8(bytes: &[u8]) -> Result<Cow<'_, str>, ParseError> {
    std::str::from_utf8(bytes)
        .map(Cow::Borrowed)
        .map_err(|e| ParseError::Encoding(format!("invalid UTF-8 at byte {}", e.valid_up_to())))
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<Cow<'static, str>, ParseError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(ParseError::Encoding(
            "UTF-16 with an odd number of bytes".to_string(),
        ));
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map(Cow::Owned)
        .map_err(|_| ParseError::Encoding("invalid UTF-16 (an unpaired surrogate)".to_string()))
}

/// The `encoding` of an `<?xml ...?>` declaration at the very start, if any.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let decl = bytes.strip_prefix(b"<?xml")?;
    // A declaration is short; looking no further keeps a document without `?>` cheap.
    let decl = &decl[..decl.len().min(256)];
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|q| matches!(q, '"' | '\''))?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_string())
}

/// windows-1252: ISO-8859-1 but for 0x80-0x9F, where it has punctuation (curly quotes, dashes,
/// the euro) instead of control codes.
fn windows_1252(byte: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}',
        '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}', '\u{90}',
        '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{2dc}',
        '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
    ];
    match byte {
        0x80..=0x9f => HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

/// A walk over one document's events.
pub(crate) struct XmlReader<'i> {
    reader: NsReader<&'i [u8]>,
    input: &'i str,
}

impl<'i> XmlReader<'i> {
    pub(crate) fn new(input: &'i str) -> XmlReader<'i> {
        let mut reader = NsReader::from_str(input);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        // `AT&T` unescaped is common in feeds and unambiguous: read the `&` as itself, as feed
        // readers and browsers do, rather than refuse the whole feed.
        config.allow_dangling_amp = true;
        XmlReader { reader, input }
    }

    /// The next node, with comments, processing instructions and the XML declaration skipped.
    pub(crate) fn next(&mut self) -> Result<Node<'i>, ParseError> {
        loop {
            let (resolved, event) = match self.reader.read_resolved_event() {
                Ok(next) => next,
                Err(e) => return Err(self.syntax(e)),
            };
            let ns = Ns::of(&resolved);
            if let Event::Start(element) | Event::Empty(element) = &event {
                // quick-xml reads attributes only when asked; asking here makes a bad or repeated
                // attribute anywhere an error, not only on the elements we read attributes of.
                for attr in element.attributes() {
                    attr.map_err(|e| self.error(format!("bad attribute: {e}")))?;
                }
            }
            return Ok(match event {
                Event::Start(element) => Node::Start {
                    ns,
                    element,
                    empty: false,
                },
                Event::Empty(element) => Node::Start {
                    ns,
                    element,
                    empty: true,
                },
                Event::End(_) => Node::End,
                Event::Text(t) => Node::Text(t.xml10_content()),
                Event::CData(t) => Node::Text(t.xml10_content()),
                Event::GeneralRef(r) => {
                    let name: &str = &r;
                    if let Some(number) = name.strip_prefix('#') {
                        // A character number that is no character is a well-formedness error.
                        match text::reference(name) {
                            Some(decoded) => Node::Text(Cow::Owned(decoded_string(&decoded))),
                            None => return Err(self.error(format!("&#{number}; is not a character"))),
                        }
                    } else {
                        // XML's five, then the HTML names that feeds use without declaring
                        // them; an unknown one stays as written rather than failing the feed.
                        match text::html_entity(name) {
                            Some(s) => Node::Text(Cow::Borrowed(s)),
                            None => Node::Text(Cow::Owned(format!("&{name};"))),
                        }
                    }
                }
                Event::DocType(_) => return Err(ParseError::Doctype),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => continue,
                Event::Eof => Node::Eof,
            });
        }
    }

    /// After the start of a non-empty element: reads to its end, ignoring what is inside.
    pub(crate) fn skip(&mut self) -> Result<(), ParseError> {
        let mut depth = 0usize;
        loop {
            match self.next()? {
                Node::Start { empty: false, .. } => depth += 1,
                Node::End if depth == 0 => return Ok(()),
                Node::End => depth -= 1,
                Node::Eof => return Err(self.unclosed()),
                Node::Start { .. } | Node::Text(_) => {}
            }
        }
    }

    /// After the start of a non-empty element: all the text inside it, child elements' included
    /// (XHTML content, or HTML a feed forgot to escape), with a space where a block element
    /// starts or ends. Not trimmed; at most [`MAX_FIELD_BYTES`] of text kept.
    pub(crate) fn text(&mut self) -> Result<String, ParseError> {
        let mut out = String::new();
        // For each open child element, whether it is a block (its end separates words too).
        let mut open: Vec<bool> = Vec::new();
        loop {
            match self.next()? {
                Node::Start { element, empty, .. } => {
                    let block = text::is_block(local_name(&element));
                    if block {
                        out.push(' ');
                    }
                    if !empty {
                        open.push(block);
                    }
                }
                Node::End => match open.pop() {
                    None => return Ok(out),
                    Some(block) => {
                        if block {
                            out.push(' ');
                        }
                    }
                },
                Node::Text(t) => {
                    let mut room = MAX_FIELD_BYTES.saturating_sub(out.len()).min(t.len());
                    while !t.is_char_boundary(room) {
                        room -= 1;
                    }
                    out.push_str(&t[..room]);
                }
                Node::Eof => return Err(self.unclosed()),
            }
        }
    }

    /// The value of the attribute named `name` (no prefix), references resolved.
    pub(crate) fn attribute(
        &self,
        element: &BytesStart<'_>,
        name: &str,
    ) -> Result<Option<String>, ParseError> {
        for attr in element.attributes() {
            let attr = attr.map_err(|e| self.error(format!("bad attribute: {e}")))?;
            if attr.key.0 != name {
                continue;
            }
            // Leniently, as in text: an `&` that starts no reference (`?a=1&b=2`) is itself.
            return Ok(Some(text::decode_references(&attr.value).into_owned()));
        }
        Ok(None)
    }

    /// The error for a document that ends inside an element.
    pub(crate) fn unclosed(&self) -> ParseError {
        self.error("the document ends inside an element".to_string())
    }

    /// A well-formedness error at the reader's position.
    pub(crate) fn error(&self, message: String) -> ParseError {
        ParseError::Malformed {
            line: self.line_at(self.reader.buffer_position()),
            message,
        }
    }

    fn syntax(&self, e: quick_xml::Error) -> ParseError {
        ParseError::Malformed {
            line: self.line_at(self.reader.error_position()),
            message: e.to_string(),
        }
    }

    fn line_at(&self, position: u64) -> u64 {
        let at = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(self.input.len());
        let newlines = self.input.as_bytes()[..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        u64::try_from(newlines).unwrap_or(u64::MAX).saturating_add(1)
    }
}

fn decoded_string(decoded: &text::Decoded) -> String {
    let mut s = String::new();
    decoded.push_to(&mut s);
    s
}
