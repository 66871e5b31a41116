//! The functions a mapping can call: their names and argument counts (checked when compiling) and
//! the pure ones' behaviour. `required`, `lookup` and `now` need the running mapping and live in
//! `run`.
//!
//! `concat` is in `run` too: it appends each part as it is evaluated.
//!
//! Every function treats HL7's explicit null like an absent value: a null is only ever written
//! when a source path is assigned directly (or through `??`), never as a side effect of a
//! conversion.

use std::borrow::Cow;
use std::fmt::Write;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::datetime::{self, Offset};
use crate::value::Val;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Required,
    Lookup,
    Concat,
    Split,
    Date,
    DateTime,
    Instant,
    Ts,
    Lower,
    Upper,
    Trim,
    Digits,
    Decimal,
    Base64,
    Join,
    Id,
    Now,
}

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

pub const FUNCTIONS: &[(&str, Func, Arity)] = &[
    ("required", Func::Required, Arity::Exactly(1)),
    ("lookup", Func::Lookup, Arity::Exactly(2)),
    ("concat", Func::Concat, Arity::AtLeast(1)),
    ("split", Func::Split, Arity::Exactly(3)),
    ("date", Func::Date, Arity::Exactly(1)),
    ("datetime", Func::DateTime, Arity::Exactly(1)),
    ("instant", Func::Instant, Arity::Exactly(1)),
    ("ts", Func::Ts, Arity::Exactly(1)),
    ("lower", Func::Lower, Arity::Exactly(1)),
    ("upper", Func::Upper, Arity::Exactly(1)),
    ("trim", Func::Trim, Arity::Exactly(1)),
    ("digits", Func::Digits, Arity::Exactly(1)),
    ("decimal", Func::Decimal, Arity::Exactly(1)),
    ("base64", Func::Base64, Arity::Exactly(1)),
    ("join", Func::Join, Arity::Exactly(2)),
    ("id", Func::Id, Arity::AtLeast(1)),
    ("now", Func::Now, Arity::Exactly(0)),
];

/// The function of that name, or an error listing the known ones.
pub fn resolve(name: &str, args: usize) -> Result<Func, String> {
    let Some((_, func, arity)) = FUNCTIONS.iter().find(|(n, ..)| *n == name) else {
        let known: Vec<&str> = FUNCTIONS.iter().map(|(n, ..)| *n).collect();
        return Err(format!(
            "unknown function `{name}`; the functions are {}",
            known.join(", ")
        ));
    };
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    match *arity {
        Arity::Exactly(n) if n != args => Err(format!("`{name}` takes {n} {}, not {args}", plural(n))),
        Arity::AtLeast(n) if args < n => {
            Err(format!("`{name}` takes at least {n} {}, not {args}", plural(n)))
        }
        _ => Ok(*func),
    }
}

/// Applies a one-argument text function. `fallback` is the offset for a time without one.
pub fn apply_text<'a>(func: Func, arg: &Val<'a>, fallback: Option<Offset>) -> Val<'a> {
    if let Val::Text(Cow::Borrowed(text)) = arg {
        // Text borrowed from the message stays borrowed when the function would not change it.
        let unchanged = match func {
            Func::Lower => !text.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()),
            Func::Upper => !text.bytes().any(|b| b.is_ascii_lowercase() || !b.is_ascii()),
            Func::Trim => return Val::text(text.trim()),
            _ => false,
        };
        if unchanged {
            return Val::Text(Cow::Borrowed(text));
        }
    }
    let Some(text) = arg.as_text() else {
        return Val::Absent;
    };
    if func == Func::Decimal {
        return decimal(&text).map_or(Val::Absent, |n| Val::Number(Cow::Owned(n)));
    }
    let result: Option<String> = match func {
        Func::Date => datetime::fhir_date(&text),
        Func::DateTime => datetime::fhir_datetime(&text, fallback),
        Func::Instant => datetime::fhir_instant(&text, fallback),
        Func::Ts => datetime::hl7_ts(&text),
        Func::Lower => Some(text.to_lowercase()),
        Func::Upper => Some(text.to_uppercase()),
        Func::Trim => Some(text.trim().to_owned()),
        Func::Digits => Some(text.chars().filter(char::is_ascii_digit).collect()),
        Func::Base64 => Some(base64::engine::general_purpose::STANDARD.encode(text.as_bytes())),
        _ => None,
    };
    result.map_or(Val::Absent, Val::text)
}

/// `decimal(E)`: HL7 NM text (an optional sign, digits, an optional point: `+05.10`, `.5`,
/// `-3.`) in FHIR's decimal form (`5.10`, `0.5`, `-3`); `None` for anything else (`>60`, `1-5`,
/// `positive`), so a value that is no number is never written as one.
pub fn decimal(text: &str) -> Option<String> {
    let text = text.trim();
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let mut out = String::with_capacity(text.len() + 1);
    let zero = whole.is_empty() && fraction.bytes().all(|b| b == b'0');
    if negative && !zero {
        out.push('-');
    }
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    Some(out)
}

/// `trim` of text this run owns: cut in place.
pub fn trim_owned<'a>(mut text: String) -> Val<'a> {
    let end = text.trim_end().len();
    text.truncate(end);
    let start = text.len() - text.trim_start().len();
    text.drain(..start);
    Val::text(text)
}

/// `split(E, "sep", n)`: the n-th part (1-based); absent when there are fewer parts.
pub fn split<'a>(arg: &Val<'a>, separator: &str, n: usize) -> Val<'a> {
    let Some(index) = n.checked_sub(1) else {
        return Val::Absent;
    };
    match arg {
        // Text borrowed from the message stays borrowed.
        Val::Text(Cow::Borrowed(text)) => nth_part(text, separator, index).map_or(Val::Absent, Val::text),
        other => match other.as_text() {
            Some(text) => {
                nth_part(&text, separator, index).map_or(Val::Absent, |part| Val::text(part.to_owned()))
            }
            None => Val::Absent,
        },
    }
}

/// Part `index` (from 0) of `text` split on `separator`. A one-character separator (`":"`, the
/// usual) is looked for as a character, which is quicker than a substring search.
fn nth_part<'t>(text: &'t str, separator: &str, index: usize) -> Option<&'t str> {
    let mut chars = separator.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => text.split(c).nth(index),
        _ => text.split(separator).nth(index),
    }
}

/// `id(E, ...)`: the first 20 hex digits of SHA-256 over the parts joined by `|` (absent parts
/// as empty). Absent when every part is, so that a missing identifier never yields an id that
/// all such patients would share.
pub fn id<'a>(parts: &[Val<'_>]) -> Val<'a> {
    if !parts.iter().any(Val::exists) {
        return Val::Absent;
    }
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b"|");
        }
        if let Some(text) = part.as_text() {
            hasher.update(text.as_bytes());
        }
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(20);
    for byte in &digest[..10] {
        let _ = write!(hex, "{byte:02x}");
    }
    Val::text(hex)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t(s: &str) -> Val<'_> {
        Val::text(s)
    }

    fn text_of(v: Val<'_>) -> Option<String> {
        v.as_text().map(|c| c.into_owned())
    }

    #[test]
    fn resolve_checks_names_and_argument_counts() {
        assert_eq!(resolve("concat", 3), Ok(Func::Concat));
        assert_eq!(resolve("now", 0), Ok(Func::Now));
        assert!(
            resolve("nope", 1)
                .unwrap_err()
                .contains("unknown function `nope`")
        );
        assert_eq!(
            resolve("lower", 2).unwrap_err(),
            "`lower` takes 1 argument, not 2"
        );
        assert_eq!(
            resolve("concat", 0).unwrap_err(),
            "`concat` takes at least 1 argument, not 0"
        );
        assert_eq!(
            resolve("split", 2).unwrap_err(),
            "`split` takes 3 arguments, not 2"
        );
    }

    #[test]
    fn text_functions() {
        let f = |func, s| text_of(apply_text(func, &t(s), None));
        assert_eq!(f(Func::Lower, "EN").as_deref(), Some("en"));
        assert_eq!(f(Func::Upper, "iso").as_deref(), Some("ISO"));
        assert_eq!(f(Func::Trim, "  a b ").as_deref(), Some("a b"));
        assert_eq!(f(Func::Trim, "ab").as_deref(), Some("ab"));
        assert_eq!(f(Func::Trim, "   "), None);
        assert_eq!(f(Func::Digits, "(617) 555-1234").as_deref(), Some("6175551234"));
        assert_eq!(f(Func::Digits, "none"), None);
        assert_eq!(f(Func::Date, "19840312").as_deref(), Some("1984-03-12"));
        assert_eq!(f(Func::Date, "1984-03-12"), None);
        assert_eq!(
            f(Func::DateTime, "20250314093015-0500").as_deref(),
            Some("2025-03-14T09:30:15-05:00")
        );
        assert_eq!(f(Func::Instant, "20250314").as_deref(), None);
        assert_eq!(
            f(Func::Ts, "2025-03-14T09:30:15-05:00").as_deref(),
            Some("20250314093015-0500")
        );
        assert_eq!(text_of(apply_text(Func::Lower, &Val::Null, None)), None);
        assert_eq!(text_of(apply_text(Func::Lower, &Val::Absent, None)), None);
        let number = json!(12);
        assert_eq!(
            text_of(apply_text(Func::Digits, &Val::json(&number), None)).as_deref(),
            Some("12")
        );
        assert_eq!(text_of(trim_owned("  a b ".to_owned())).as_deref(), Some("a b"));
        assert_eq!(trim_owned("   ".to_owned()), Val::Absent);
    }

    #[test]
    fn decimal_reads_hl7_numbers_and_nothing_else() {
        for (text, want) in [
            ("5.1", Some("5.1")),
            ("+05.10", Some("5.10")),
            (".5", Some("0.5")),
            ("-3.", Some("-3")),
            ("-0", Some("0")),
            ("000", Some("0")),
            (" 42 ", Some("42")),
            (">60", None),
            ("1-5", None),
            ("positive", None),
            ("", None),
            (".", None),
            ("-", None),
            ("1e5", None),
        ] {
            assert_eq!(decimal(text).as_deref(), want, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decimal_is_none_or_a_json_number(text in "[-+0-9. a-z>]{0,12}") {
            if let Some(n) = decimal(&text) {
                proptest::prop_assert!(serde_json::from_str::<serde_json::Number>(&n).is_ok(), "{n}");
            }
        }
    }

    #[test]
    fn split_takes_the_nth_part() {
        assert_eq!(text_of(split(&t("urn:oid:1.2"), ":", 1)).as_deref(), Some("urn"));
        assert_eq!(text_of(split(&t("urn:oid:1.2"), ":", 3)).as_deref(), Some("1.2"));
        assert_eq!(split(&t("urn:oid:1.2"), ":", 4), Val::Absent);
        assert_eq!(split(&t("a::b"), ":", 2), Val::Absent);
        assert_eq!(split(&Val::Null, ":", 1), Val::Absent);
        let owned: Val<'_> = Val::Text(Cow::Owned("x-y".into()));
        assert_eq!(text_of(split(&owned, "-", 2)).as_deref(), Some("y"));
    }

    #[test]
    fn id_is_deterministic_hex() {
        let a = text_of(id(&[t("UCRMPI"), t("1000234567")])).unwrap();
        assert_eq!(a.len(), 20);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(text_of(id(&[t("UCRMPI"), t("1000234567")])).unwrap(), a);
        // sha256("UCRMPI|1000234567"), first 20 hex digits.
        let expected: String = Sha256::digest(b"UCRMPI|1000234567")
            .iter()
            .take(10)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(a, expected);
        assert_eq!(text_of(id(&[Val::Absent, t("1")])), text_of(id(&[t(""), t("1")])));
        assert_ne!(text_of(id(&[t("a"), t("b")])), text_of(id(&[t("ab")])));
        assert_eq!(id(&[Val::Absent, Val::Null]), Val::Absent);
    }
}
