//! HL7 escape sequences: turning encoded field text into plain text and back. Written here because
//! the decoder of `hl7-parser` (the crate we used before our scanner) panics on multi-byte UTF-8
//! before an escape.

use crate::delimiters::Delimiters;

/// Decode every escape in STANDARDS.md: \F\ \S\ \T\ \R\ \E\ (and \P\ truncation), \Xhh..\ (hex bytes,
/// decoded as UTF-8 if valid else Latin-1), \.br\ -> "\n" and other formatting commands
/// (\.sp\ \.in\ \.ti\ \.sk\ \.ce\ \.fi\ \.nf\) removed or mapped to whitespace, \H\ \N\ dropped,
/// \Cxxyy\ \Mxxyyzz\ \Zxx\ dropped. Malformed escapes (no closing escape char) are kept literally.
/// Works on multi-byte UTF-8 anywhere.
///
/// An escape char that does not open a known sequence is kept literally and scanning resumes
/// right after it, so a stray backslash from a sloppy sender does not swallow the real escape
/// that follows it. Every escape char is looked at once: linear in the input.
pub fn unescape(raw: &str, delims: &Delimiters) -> String {
    let escape = delims.escape;
    let Some(first_escape) = raw.find(escape) else {
        return raw.to_owned();
    };
    let escape_len = escape.len_utf8();
    let mut text = String::with_capacity(raw.len());
    text.push_str(&raw[..first_escape]);
    let mut rest = &raw[first_escape..];
    // Invariant at the top of the loop: `rest` starts with the escape char.
    loop {
        let after_open = &rest[escape_len..];
        let decoded = after_open
            .find(escape)
            .filter(|&close| decode_sequence(&after_open[..close], delims, &mut text))
            .map(|close| &after_open[close + escape_len..]);
        let unread = match decoded {
            Some(after_close) => after_close,
            None => {
                text.push(escape);
                after_open
            }
        };
        match unread.find(escape) {
            Some(next) => {
                text.push_str(&unread[..next]);
                rest = &unread[next..];
            }
            None => {
                text.push_str(unread);
                return text;
            }
        }
    }
}

/// Appends what one escape sequence (the text between the escape chars) stands for; false when
/// it is not a sequence we know, so the caller keeps it literally.
fn decode_sequence(sequence: &str, delims: &Delimiters, text: &mut String) -> bool {
    let delimiter = match sequence {
        "F" => Some(delims.field),
        "S" => Some(delims.component),
        "T" => Some(delims.subcomponent),
        "R" => Some(delims.repetition),
        "E" => Some(delims.escape),
        "P" => delims.truncation,
        _ => None,
    };
    if let Some(c) = delimiter {
        text.push(c);
        return true;
    }
    let Some(kind) = sequence.chars().next() else {
        return false;
    };
    let argument = &sequence[kind.len_utf8()..];
    match kind {
        'X' => push_hex_bytes(argument, text),
        '.' => push_formatting(argument, text),
        // Highlighting on and off: plain text has no highlighting.
        'H' | 'N' => argument.is_empty(),
        // Character set switches: the text is already decoded to Unicode.
        'C' => argument.len() == 4 && is_hex(argument),
        'M' => (argument.len() == 4 || argument.len() == 6) && is_hex(argument),
        // Locally defined escapes mean nothing to us.
        'Z' => true,
        _ => false,
    }
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `\Xhh..\`: the bytes as UTF-8 when they form valid UTF-8, else one Latin-1 char per byte.
fn push_hex_bytes(hex: &str, text: &mut String) -> bool {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !is_hex(hex) {
        return false;
    }
    let bytes: Vec<u8> = hex
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
        .collect();
    match std::str::from_utf8(&bytes) {
        Ok(decoded) => text.push_str(decoded),
        Err(_) => text.extend(bytes.iter().map(|&b| char::from(b))),
    }
    true
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Formatting commands of the FT type. Plain text keeps the line breaks and drops the layout.
/// Counts (`.sp 3`, `.sk 2`) are deliberately not honoured: a count from the wire must not
/// decide how much memory we fill.
fn push_formatting(command: &str, text: &mut String) -> bool {
    // `get` rather than slicing: the command may hold multi-byte characters.
    let name = command.get(..2).unwrap_or(command);
    let argument = command.get(name.len()..).unwrap_or_default().trim_start();
    let is_count = |signed: bool| {
        let digits = if signed {
            argument.trim_start_matches(['+', '-'])
        } else {
            argument
        };
        digits.bytes().all(|b| b.is_ascii_digit())
    };
    match name {
        "br" | "ce" if argument.is_empty() => text.push('\n'),
        "sp" if is_count(false) => text.push('\n'),
        "sk" if is_count(false) => text.push(' '),
        "in" | "ti" if is_count(true) => {}
        "fi" | "nf" if argument.is_empty() => {}
        _ => return false,
    }
    true
}

/// The inverse for writing: delimiter characters and the escape char become \F\ \S\ \R\ \T\ \E\
/// (and the truncation char \P\); CR/LF become \X0D\ \X0A\.
pub fn escape(text: &str, delims: &Delimiters) -> String {
    let needs_escape = |c: char| {
        c == delims.field
            || c == delims.component
            || c == delims.repetition
            || c == delims.escape
            || c == delims.subcomponent
            || Some(c) == delims.truncation
            || c == '\r'
            || c == '\n'
    };
    if !text.contains(needs_escape) {
        return text.to_owned();
    }
    let mut encoded = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        let code = if c == delims.field {
            "F"
        } else if c == delims.component {
            "S"
        } else if c == delims.repetition {
            "R"
        } else if c == delims.escape {
            "E"
        } else if c == delims.subcomponent {
            "T"
        } else if Some(c) == delims.truncation {
            "P"
        } else if c == '\r' {
            "X0D"
        } else if c == '\n' {
            "X0A"
        } else {
            encoded.push(c);
            continue;
        };
        encoded.push(delims.escape);
        encoded.push_str(code);
        encoded.push(delims.escape);
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(raw: &str) -> String {
        unescape(raw, &Delimiters::default())
    }

    #[test]
    fn delimiter_escapes_decode() {
        assert_eq!(plain(r"a\F\b\S\c\T\d\R\e\E\f"), "a|b^c&d~e\\f");
    }

    #[test]
    fn truncation_escape_needs_a_declared_truncation_char() {
        let v27 = Delimiters {
            truncation: Some('#'),
            ..Delimiters::default()
        };
        assert_eq!(unescape(r"a\P\b", &v27), "a#b");
        assert_eq!(plain(r"a\P\b"), r"a\P\b");
    }

    #[test]
    fn hex_escapes_decode_utf8_else_latin1() {
        assert_eq!(plain(r"line\X0D\next\X0A\"), "line\rnext\n");
        assert_eq!(plain(r"Ren\XC3A9\e"), "Ren\u{e9}e");
        assert_eq!(plain(r"Ren\XE9\e"), "Ren\u{e9}e");
        assert_eq!(plain(r"\xc3a9\"), r"\xc3a9\");
        assert_eq!(plain(r"\Xc3a9\"), "\u{e9}");
        assert_eq!(plain(r"\X\ \XE\ \XZZ\"), r"\X\ \XE\ \XZZ\");
    }

    #[test]
    fn formatting_commands_become_whitespace_or_nothing() {
        assert_eq!(plain(r"one\.br\two"), "one\ntwo");
        assert_eq!(plain(r"a\.sp\b\.sp 3\c"), "a\nb\nc");
        assert_eq!(plain(r"a\.sk 2\b"), "a b");
        assert_eq!(plain(r"\.in+4\\.ti-2\\.fi\\.nf\x\.ce\y"), "x\ny");
        assert_eq!(plain(r"\.sp999999999999999999\"), "\n");
        assert_eq!(plain(r"\.zz\"), r"\.zz\");
        assert_eq!(plain("\\.aé\\"), "\\.aé\\");
    }

    #[test]
    fn highlighting_charset_and_local_escapes_are_dropped() {
        assert_eq!(plain(r"\H\bold\N\ plain"), "bold plain");
        assert_eq!(plain(r"a\C2842\b\M2442\c\M244228\d"), "abcd");
        assert_eq!(plain(r"a\Zlocal stuff\b"), "ab");
    }

    #[test]
    fn malformed_escapes_are_kept_literally() {
        assert_eq!(plain(r"C:\temp"), r"C:\temp");
        assert_eq!(plain("\\"), "\\");
        assert_eq!(plain(r"\\"), r"\\");
        assert_eq!(plain(r"50\ off \T\ more"), r"50\ off & more");
        assert_eq!(plain(r"\Q\"), r"\Q\");
    }

    #[test]
    fn escapes_next_to_multibyte_characters() {
        assert_eq!(plain("é\\F\\ü"), "é|ü");
        assert_eq!(plain("日本\\T\\語\\"), "日本&語\\");
        assert_eq!(plain("\\日\\"), "\\日\\");
        assert_eq!(plain("😀\\X0A\\😀"), "😀\n😀");
    }

    #[test]
    fn multibyte_escape_char_works() {
        let delims = Delimiters {
            escape: '§',
            ..Delimiters::default()
        };
        assert_eq!(unescape("a§F§b§", &delims), "a|b§");
        assert_eq!(escape("a|b§", &delims), "a§F§b§E§");
    }

    #[test]
    fn escape_encodes_every_special_character() {
        let delims = Delimiters::default();
        assert_eq!(
            escape("a|b^c&d~e\\f\rg\nh", &delims),
            r"a\F\b\S\c\T\d\R\e\E\f\X0D\g\X0A\h"
        );
        assert_eq!(escape("plain é", &delims), "plain é");
        let v27 = Delimiters {
            truncation: Some('#'),
            ..delims
        };
        assert_eq!(escape("#1", &v27), r"\P\1");
    }

    #[test]
    fn custom_delimiters_are_respected() {
        let delims = Delimiters {
            field: '#',
            component: '!',
            repetition: '*',
            escape: '$',
            subcomponent: '%',
            truncation: None,
        };
        assert_eq!(unescape("a$F$b$S$c$E$", &delims), "a#b!c$");
        assert_eq!(unescape(r"a\F\b", &delims), r"a\F\b");
        assert_eq!(escape("#!*$%|^", &delims), "$F$$S$$R$$E$$T$|^");
    }
}
