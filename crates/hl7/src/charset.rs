//! Bytes off the wire to text and back: the UTF-8 BOM, the MSH-18 character set declaration, and
//! the Latin-1 fallback that real feeds need.

/// The character set a message's bytes were decoded with (and its replies should be encoded with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Latin1,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// MSH-18 is the 18th field; split on the field separator the first line's pieces are
/// `MSH`, MSH-2, MSH-3, ... so MSH-18 is piece 17.
const MSH_18_PIECE: usize = 17;

/// Bytes off the wire to text: strips a UTF-8 BOM; reads MSH-18 from the raw bytes; `8859/1`
/// (and `8859/15`) decoded as Latin-1; empty / `UNICODE UTF-8` / ASCII as UTF-8; bytes that are not
/// valid UTF-8 in a message that declares nothing are decoded as Latin-1 (real feeds do this)
/// rather than rejected. Never fails on content; returns the text and the charset it used.
pub fn decode(bytes: &[u8]) -> (String, Charset) {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if declares_latin1(declared_charset(bytes)) {
        return (latin1_to_string(bytes), Charset::Latin1);
    }
    // Any other declaration (UTF-8, ASCII, none, or one we cannot decode) is read as UTF-8 when
    // the bytes allow it; when they do not, the sender is almost always sending Latin-1 unlabelled.
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), Charset::Utf8),
        Err(_) => (latin1_to_string(bytes), Charset::Latin1),
    }
}

/// Text to bytes in `charset`, for replies that must match how the peer talks. Characters that
/// Latin-1 cannot hold become `?`.
pub fn encode(text: &str, charset: Charset) -> Vec<u8> {
    match charset {
        Charset::Utf8 => text.as_bytes().to_vec(),
        Charset::Latin1 => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
    }
}

/// The first repetition of MSH-18 read from the raw bytes (before we know how to decode them),
/// or empty when the message does not start with a readable MSH or does not declare one.
fn declared_charset(bytes: &[u8]) -> &[u8] {
    let first_content = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let bytes = &bytes[first_content..];
    let Some(rest) = bytes.strip_prefix(b"MSH") else {
        return b"";
    };
    let (Some(&field_separator), Some(&component_separator), Some(&repetition_separator)) =
        (rest.first(), rest.get(1), rest.get(2))
    else {
        return b"";
    };
    let first_line = bytes
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let field = first_line
        .split(|&b| b == field_separator)
        .nth(MSH_18_PIECE)
        .unwrap_or_default();
    let first_repetition = field
        .split(|&b| b == repetition_separator || b == component_separator)
        .next()
        .unwrap_or_default();
    first_repetition.trim_ascii()
}

fn declares_latin1(declared: &[u8]) -> bool {
    // `8859/1` and `8859/15` are the table 0211 names; the others are what real senders write.
    const LATIN1_NAMES: [&[u8]; 7] = [
        b"8859/1",
        b"8859/15",
        b"ISO-8859-1",
        b"ISO_8859-1",
        b"ISO8859-1",
        b"LATIN1",
        b"LATIN-1",
    ];
    LATIN1_NAMES
        .iter()
        .any(|name| name.eq_ignore_ascii_case(declared))
}

/// Every Latin-1 byte is the Unicode code point of the same value.
fn latin1_to_string(bytes: &[u8]) -> String {
    let high_bytes = bytes.iter().filter(|&&b| b >= 0x80).count();
    let mut text = String::with_capacity(bytes.len() + high_bytes);
    text.extend(bytes.iter().map(|&b| char::from(b)));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_latin1_decodes_high_bytes_as_latin1() {
        let bytes = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5||||||8859/1\rPID|||1||Ren\xE9\r";
        let (text, charset) = decode(bytes);
        assert_eq!(charset, Charset::Latin1);
        assert!(text.contains("Ren\u{e9}"), "{text}");
    }

    #[test]
    fn declared_latin1_with_repetitions_uses_the_first() {
        let bytes = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5|||||| 8859/15 ~UNICODE UTF-8\rPID|\xE9";
        assert_eq!(decode(bytes).1, Charset::Latin1);
    }

    #[test]
    fn utf8_stays_utf8_and_bom_is_stripped() {
        let bytes =
            "\u{feff}MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5||||||UNICODE UTF-8\rPID|||1||Ren\u{e9}\r";
        let (text, charset) = decode(bytes.as_bytes());
        assert_eq!(charset, Charset::Utf8);
        assert!(text.starts_with("MSH|"));
        assert!(text.contains("Ren\u{e9}"));
    }

    #[test]
    fn undeclared_invalid_utf8_falls_back_to_latin1() {
        let (text, charset) = decode(b"MSH|^~\\&|A\rPID|||1||Ren\xE9\r");
        assert_eq!(charset, Charset::Latin1);
        assert!(text.contains("Ren\u{e9}"));
    }

    #[test]
    fn declared_utf8_but_invalid_bytes_still_decodes() {
        let bytes = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5||||||UNICODE UTF-8\rPID|\xFF";
        let (text, charset) = decode(bytes);
        assert_eq!(charset, Charset::Latin1);
        assert!(text.ends_with("PID|\u{ff}"));
    }

    #[test]
    fn declaration_is_read_with_the_message_own_separators() {
        let bytes = b"MSH#^~\\&#A#B#C#D#20240101##ADT^A08#1#P#2.5######8859/1\rPID#\xE9";
        assert_eq!(decode(bytes).1, Charset::Latin1);
    }

    #[test]
    fn garbage_and_short_input_decode_without_failing() {
        for bytes in [&b""[..], b"M", b"MSH", b"MSH|", b"\xEF\xBB", b"\xFF\xFE\x00"] {
            let _ = decode(bytes);
        }
    }

    #[test]
    fn encode_round_trips_latin1_and_replaces_what_it_cannot_hold() {
        let text = "Ren\u{e9} \u{20ac}";
        assert_eq!(encode(text, Charset::Latin1), b"Ren\xE9 ?");
        assert_eq!(encode(text, Charset::Utf8), text.as_bytes());
    }
}
