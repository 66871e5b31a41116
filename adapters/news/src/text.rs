//! Turning what a feed carries into plain text: HTML stripped, entities decoded, whitespace
//! collapsed, length cut.
//!
//! Feed text is shown to people (a title in a list, a summary under it), never rendered as HTML,
//! so markup is removed rather than sanitised. The HTML reader here is deliberately small: it
//! knows tags, comments, `script`/`style` bodies and character references, and it runs in one
//! pass over its input (no backtracking), so a hostile description costs time linear in its size.

use std::borrow::Cow;

/// Elements that separate words when stripped: `<p>One</p><p>Two</p>` reads "One Two", while
/// `<b>Hos</b>pital` stays "Hospital".
pub(crate) fn is_block(name: &str) -> bool {
    const BLOCK: &[&str] = &[
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ];
    BLOCK.iter().any(|b| b.eq_ignore_ascii_case(name))
}

/// Trims, collapses every run of whitespace into one space and drops control characters, which
/// have no place in a title or summary and could upset a log line or a terminal.
pub(crate) fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let mut chars = word.chars().filter(|c| !c.is_control()).peekable();
        if chars.peek().is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(chars);
    }
    out
}

/// Cuts `text` to at most `max` characters (Unicode scalar values, not bytes), at a character
/// boundary, and trims what the cut leaves at the end.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.truncate(text.trim_end().len());
    }
    text
}

/// HTML to plain text: tags removed (block elements leave a space), comments and the bodies of
/// `script` and `style` dropped, character references decoded, whitespace collapsed.
///
/// A tag ends at the first `>`, quoted attribute values notwithstanding: following quotes would
/// need backtracking on unbalanced input, and `>` inside an attribute is rare in feeds. A `<`
/// that does not start a tag (`a < b`) is kept as text.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    // Once no `>` is left, no later `<` can open a tag: remembering it keeps the pass linear on
    // input such as `<<<<<...`.
    let mut tags_possible = true;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('&') {
            match reference_at(rest) {
                Some((decoded, len)) => {
                    decoded.push_to(&mut out);
                    rest = &rest[len..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        } else if tags_possible {
            match skip_markup(rest, &mut out) {
                Some(after) => rest = after,
                None => {
                    tags_possible = false;
                    out.push('<');
                    rest = &rest[1..];
                }
            }
        } else {
            out.push('<');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    collapse(&out)
}

/// `rest` starts with `<`. Returns what follows the markup there (pushing a space for a block
/// element), `Some(rest[1..])` with `<` pushed when it opens no markup, or `None` when no `>` is
/// left in the input at all.
fn skip_markup<'a>(rest: &'a str, out: &mut String) -> Option<&'a str> {
    if let Some(body) = rest.strip_prefix("<!--") {
        // An unclosed comment hides the rest, as it does in a browser.
        return Some(body.find("-->").map_or("", |end| &body[end + 3..]));
    }
    let next = rest.as_bytes().get(1).copied();
    let opens = matches!(next, Some(b) if b.is_ascii_alphabetic() || matches!(b, b'/' | b'!' | b'?'));
    if !opens {
        out.push('<');
        return Some(&rest[1..]);
    }
    let end = rest.find('>')?;
    let after = &rest[end + 1..];
    let inner = &rest[1..end];
    let closing = inner.starts_with('/');
    let name_start = usize::from(closing);
    let name_len = inner[name_start..]
        .bytes()
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    let name = &inner[name_start..name_start + name_len];
    if is_block(name) {
        out.push(' ');
    }
    if !closing
        && !inner.ends_with('/')
        && (name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style"))
    {
        // Their content is code, not text: skip to the matching end tag, or to the end.
        let end_tag = if name.eq_ignore_ascii_case("script") {
            "</script"
        } else {
            "</style"
        };
        return Some(match find_ignore_case(after, end_tag) {
            Some(at) => after[at..].find('>').map_or("", |gt| &after[at + gt + 1..]),
            None => "",
        });
    }
    Some(after)
}

/// The byte offset of `needle` (ASCII) in `haystack`, ignoring ASCII case.
fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// What a character reference stands for.
pub(crate) enum Decoded {
    Char(char),
    Str(&'static str),
}

impl Decoded {
    pub(crate) fn push_to(&self, out: &mut String) {
        match self {
            Decoded::Char(c) => out.push(*c),
            Decoded::Str(s) => out.push_str(s),
        }
    }
}

/// `text` with its character references decoded; an `&` that starts none we know stays as it is.
pub(crate) fn decode_references(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match reference_at(rest) {
            Some((decoded, len)) => {
                decoded.push_to(&mut out);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `rest` starts with `&`: decodes `&name;`, `&#123;` or `&#x7B;` there, with the number of bytes
/// it takes. `None` when it is not a reference we know (the `&` is then text).
fn reference_at(rest: &str) -> Option<(Decoded, usize)> {
    // The longest name we know is short; looking further would only cost time.
    const LONGEST: usize = 12;
    let semi = rest.bytes().skip(1).take(LONGEST).position(|b| b == b';')? + 1;
    let decoded = reference(&rest[1..semi])?;
    Some((decoded, semi + 1))
}

/// Decodes the reference named `name` (what is between `&` and `;`): a character number, one of
/// XML's five entities, or a common HTML one.
pub(crate) fn reference(name: &str) -> Option<Decoded> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        // NUL and surrogates are not characters; a digit string that is not a number is text.
        return char::from_u32(code).filter(|c| *c != '\0').map(Decoded::Char);
    }
    html_entity(name).map(Decoded::Str)
}

/// The named entities of XML and the HTML ones that turn up in feeds (punctuation, symbols and
/// the accented Latin-1 letters). An unknown name stays as written.
pub(crate) fn html_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" => "\u{a0}",
        "shy" => "\u{ad}",
        "ensp" => "\u{2002}",
        "emsp" => "\u{2003}",
        "thinsp" => "\u{2009}",
        "zwnj" => "\u{200c}",
        "zwj" => "\u{200d}",
        "ndash" => "\u{2013}",
        "mdash" => "\u{2014}",
        "lsquo" => "\u{2018}",
        "rsquo" => "\u{2019}",
        "sbquo" => "\u{201a}",
        "ldquo" => "\u{201c}",
        "rdquo" => "\u{201d}",
        "bdquo" => "\u{201e}",
        "laquo" => "\u{ab}",
        "raquo" => "\u{bb}",
        "lsaquo" => "\u{2039}",
        "rsaquo" => "\u{203a}",
        "hellip" => "\u{2026}",
        "bull" => "\u{2022}",
        "middot" => "\u{b7}",
        "dagger" => "\u{2020}",
        "Dagger" => "\u{2021}",
        "permil" => "\u{2030}",
        "prime" => "\u{2032}",
        "Prime" => "\u{2033}",
        "copy" => "\u{a9}",
        "reg" => "\u{ae}",
        "trade" => "\u{2122}",
        "deg" => "\u{b0}",
        "plusmn" => "\u{b1}",
        "times" => "\u{d7}",
        "divide" => "\u{f7}",
        "minus" => "\u{2212}",
        "le" => "\u{2264}",
        "ge" => "\u{2265}",
        "ne" => "\u{2260}",
        "micro" => "\u{b5}",
        "para" => "\u{b6}",
        "sect" => "\u{a7}",
        "cent" => "\u{a2}",
        "pound" => "\u{a3}",
        "yen" => "\u{a5}",
        "euro" => "\u{20ac}",
        "curren" => "\u{a4}",
        "iexcl" => "\u{a1}",
        "iquest" => "\u{bf}",
        "ordf" => "\u{aa}",
        "ordm" => "\u{ba}",
        "sup1" => "\u{b9}",
        "sup2" => "\u{b2}",
        "sup3" => "\u{b3}",
        "frac14" => "\u{bc}",
        "frac12" => "\u{bd}",
        "frac34" => "\u{be}",
        "larr" => "\u{2190}",
        "rarr" => "\u{2192}",
        "uarr" => "\u{2191}",
        "darr" => "\u{2193}",
        "alpha" => "\u{3b1}",
        "beta" => "\u{3b2}",
        "gamma" => "\u{3b3}",
        "delta" => "\u{3b4}",
        "mu" => "\u{3bc}",
        "pi" => "\u{3c0}",
        "Agrave" => "\u{c0}",
        "Aacute" => "\u{c1}",
        "Acirc" => "\u{c2}",
        "Atilde" => "\u{c3}",
        "Auml" => "\u{c4}",
        "Aring" => "\u{c5}",
        "AElig" => "\u{c6}",
        "Ccedil" => "\u{c7}",
        "Egrave" => "\u{c8}",
        "Eacute" => "\u{c9}",
        "Ecirc" => "\u{ca}",
        "Euml" => "\u{cb}",
        "Igrave" => "\u{cc}",
        "Iacute" => "\u{cd}",
        "Icirc" => "\u{ce}",
        "Iuml" => "\u{cf}",
        "ETH" => "\u{d0}",
        "Ntilde" => "\u{d1}",
        "Ograve" => "\u{d2}",
        "Oacute" => "\u{d3}",
        "Ocirc" => "\u{d4}",
        "Otilde" => "\u{d5}",
        "Ouml" => "\u{d6}",
        "Oslash" => "\u{d8}",
        "Ugrave" => "\u{d9}",
        "Uacute" => "\u{da}",
        "Ucirc" => "\u{db}",
        "Uuml" => "\u{dc}",
        "Yacute" => "\u{dd}",
        "THORN" => "\u{de}",
        "szlig" => "\u{df}",
        "agrave" => "\u{e0}",
        "aacute" => "\u{e1}",
        "acirc" => "\u{e2}",
        "atilde" => "\u{e3}",
        "auml" => "\u{e4}",
        "aring" => "\u{e5}",
        "aelig" => "\u{e6}",
        "ccedil" => "\u{e7}",
        "egrave" => "\u{e8}",
        "eacute" => "\u{e9}",
        "ecirc" => "\u{ea}",
        "euml" => "\u{eb}",
        "igrave" => "\u{ec}",
        "iacute" => "\u{ed}",
        "icirc" => "\u{ee}",
        "iuml" => "\u{ef}",
        "eth" => "\u{f0}",
        "ntilde" => "\u{f1}",
        "ograve" => "\u{f2}",
        "oacute" => "\u{f3}",
        "ocirc" => "\u{f4}",
        "otilde" => "\u{f5}",
        "ouml" => "\u{f6}",
        "oslash" => "\u{f8}",
        "ugrave" => "\u{f9}",
        "uacute" => "\u{fa}",
        "ucirc" => "\u{fb}",
        "uuml" => "\u{fc}",
        "yacute" => "\u{fd}",
        "thorn" => "\u{fe}",
        "yuml" => "\u{ff}",
        "OElig" => "\u{152}",
        "oelig" => "\u{153}",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_decodes_references() {
        let html = "<p>Flu clinic <b>open</b> &amp; free&nbsp;&mdash; see&#32;<a href=\"/x\">here</a>.</p>\
                    <p>Second&#x21;</p>";
        assert_eq!(
            html_to_text(html),
            "Flu clinic open & free \u{2014} see here. Second!"
        );
    }

    #[test]
    fn drops_comments_scripts_and_styles() {
        let html = "A<!-- hidden <p> -->B<script>var x = '<p>';</script>C<STYLE>p{}</Style>D";
        assert_eq!(html_to_text(html), "ABCD");
        assert_eq!(html_to_text("A<!-- never closed"), "A");
        assert_eq!(html_to_text("A<script>never closed"), "A");
    }

    #[test]
    fn keeps_what_is_not_markup() {
        assert_eq!(html_to_text("a < b and c > d"), "a < b and c > d");
        assert_eq!(html_to_text("AT&T &unknown; &#xZZ; &"), "AT&T &unknown; &#xZZ; &");
        assert_eq!(html_to_text("x <y"), "x <y");
        assert_eq!(html_to_text("<<<<"), "<<<<");
    }

    #[test]
    fn block_elements_separate_words() {
        assert_eq!(
            html_to_text("<p>One</p><p>Two</p><br/>Three <b>Fo</b>ur"),
            "One Two Three Four"
        );
    }

    #[test]
    fn collapse_and_truncate() {
        assert_eq!(collapse("  a \n\t b\u{7}c  "), "a bc");
        assert_eq!(collapse("\u{1} \u{2}"), "");
        assert_eq!(truncate("héllo wörld".to_string(), 6), "héllo");
        assert_eq!(truncate("short".to_string(), 10), "short");
    }
}
