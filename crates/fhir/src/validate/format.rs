//! The lexical rules of FHIR R4's string-valued primitives (dates, times, ids, codes, uris ...),
//! as the specification's regular expressions state them, written out by hand: they run on every
//! primitive of every resource the endpoint accepts, and the crate has no regex engine.
//!
//! Each check returns `Err(reason)` with a short reason that reads after "invalid <type>: ".
//!
//! Whitespace means XML Schema's `\s` (space, tab, CR, LF), the regex dialect the
//! specification's patterns are written in: a no-break space inside a code is not whitespace to
//! FHIR (HL7's own v2 code systems contain such codes).

/// FHIR caps a string at 1 MB.
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

/// XML Schema's `\s`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn number(s: &str, len: usize) -> Option<u32> {
    if s.len() == len && all_digits(s) {
        s.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; `full` demands all three.
fn date_part(s: &str, full: bool) -> Result<(), &'static str> {
    let mut parts = s.split('-');
    let year = parts
        .next()
        .and_then(|y| number(y, 4))
        .ok_or("the year must be four digits")?;
    if year == 0 {
        return Err("year 0000 does not exist");
    }
    let month = match parts.next() {
        None if !full => return Ok(()),
        None => return Err("a full date YYYY-MM-DD is required"),
        Some(m) => number(m, 2)
            .filter(|m| (1..=12).contains(m))
            .ok_or("the month must be 01 to 12")?,
    };
    let day = match parts.next() {
        None if !full => return Ok(()),
        None => return Err("a full date YYYY-MM-DD is required"),
        Some(d) => number(d, 2).ok_or("the day must be two digits")?,
    };
    if parts.next().is_some() {
        return Err("too many parts");
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("no such day in that month");
    }
    Ok(())
}

/// `hh:mm:ss` with optional fractional seconds.
fn time_part(s: &str) -> Result<(), &'static str> {
    let (hms, fraction) = match s.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (s, None),
    };
    if fraction.is_some_and(|f| !all_digits(f)) {
        return Err("fractional seconds must be digits");
    }
    let mut parts = hms.split(':');
    let ok = parts.next().and_then(|h| number(h, 2)).is_some_and(|h| h <= 23)
        && parts.next().and_then(|m| number(m, 2)).is_some_and(|m| m <= 59)
        && parts.next().and_then(|s| number(s, 2)).is_some_and(|s| s <= 60)
        && parts.next().is_none();
    if ok {
        Ok(())
    } else {
        Err("the time must be hh:mm:ss (00:00:00 to 23:59:60)")
    }
}

/// `Z` or `+hh:mm` / `-hh:mm` up to 14:00.
fn zone(s: &str) -> Result<(), &'static str> {
    if s == "Z" {
        return Ok(());
    }
    let offset = s
        .strip_prefix('+')
        .or_else(|| s.strip_prefix('-'))
        .ok_or("bad time zone")?;
    let (h, m) = offset
        .split_once(':')
        .ok_or("the time zone must be Z or +hh:mm")?;
    match (number(h, 2), number(m, 2)) {
        (Some(h), Some(m)) if (h <= 13 && m <= 59) || (h == 14 && m == 0) => Ok(()),
        _ => Err("the time zone offset must be -14:00 to +14:00"),
    }
}

/// A time with its zone, after the `T`.
fn time_with_zone(s: &str) -> Result<(), &'static str> {
    let at = s
        .find(['Z', '+', '-'])
        .ok_or("a time needs a time zone (Z or +hh:mm)")?;
    time_part(&s[..at])?;
    zone(&s[at..])
}

pub fn date(s: &str) -> Result<(), &'static str> {
    date_part(s, false)
}

/// A date, or a full date with a time; a time needs seconds and a time zone.
pub fn date_time(s: &str) -> Result<(), &'static str> {
    match s.split_once('T') {
        None => date_part(s, false),
        Some((d, t)) => {
            date_part(d, true)?;
            time_with_zone(t)
        }
    }
}

/// A full date and time with seconds and a time zone.
pub fn instant(s: &str) -> Result<(), &'static str> {
    let (d, t) = s.split_once('T').ok_or("an instant needs a date and a time")?;
    date_part(d, true)?;
    time_with_zone(t)
}

pub fn time(s: &str) -> Result<(), &'static str> {
    time_part(s)
}

/// Tokens separated by single spaces: no leading, trailing or repeated whitespace.
pub fn code(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    let mut prev_space = true;
    for c in s.chars() {
        let space = is_space(c);
        if space && prev_space {
            return Err("no leading, trailing or repeated whitespace is allowed");
        }
        prev_space = space;
    }
    if prev_space {
        return Err("no leading, trailing or repeated whitespace is allowed");
    }
    Ok(())
}

/// 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn id(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        Ok(())
    } else {
        Err("only A-Z, a-z, 0-9, '-' and '.' are allowed")
    }
}

/// uri, url, canonical: no whitespace.
pub fn uri(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        Err("must not be empty")
    } else if s.chars().any(is_space) {
        Err("whitespace is not allowed")
    } else {
        Ok(())
    }
}

pub fn oid(s: &str) -> Result<(), &'static str> {
    let body = s.strip_prefix("urn:oid:").ok_or("must start with urn:oid:")?;
    let mut arcs = body.split('.');
    let first_ok = arcs.next().is_some_and(|a| matches!(a, "0" | "1" | "2"));
    let mut count = 0;
    let rest_ok = arcs.all(|a| {
        count += 1;
        all_digits(a) && (a == "0" || !a.starts_with('0'))
    });
    if first_ok && rest_ok && count > 0 {
        Ok(())
    } else {
        Err("must be urn:oid: and dotted numbers")
    }
}

pub fn uuid(s: &str) -> Result<(), &'static str> {
    let body = s.strip_prefix("urn:uuid:").ok_or("must start with urn:uuid:")?;
    let groups: Vec<&str> = body.split('-').collect();
    let ok = groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, len)| {
            g.len() == len
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err("must be urn:uuid: and a lower-case UUID")
    }
}

/// Base64 in groups of four, whitespace allowed between them.
pub fn base64(s: &str) -> Result<(), &'static str> {
    let mut count = 0usize;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            count += 1;
        } else if !b.is_ascii_whitespace() {
            return Err("only base64 characters are allowed");
        }
    }
    if count == 0 || !count.is_multiple_of(4) {
        Err("the length must be a multiple of four")
    } else {
        Ok(())
    }
}

/// string and markdown: not empty, at most 1 MB.
pub fn string(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        Err("must not be empty")
    } else if s.len() > MAX_STRING_BYTES {
        Err("longer than 1 MB")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for ok in ["2024", "2024-02", "2024-02-29", "0001-01-01"] {
            assert_eq!(date(ok), Ok(()), "{ok}");
        }
        for bad in [
            "24",
            "2023-02-29",
            "2024-13",
            "2024-1-01",
            "0000",
            "2024-01-01T10:00:00Z",
            "",
            "2024-",
        ] {
            assert!(date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn date_times_need_seconds_and_zones_with_times() {
        for ok in [
            "2015",
            "2015-02",
            "2015-02-07",
            "2015-02-07T13:28:17-05:00",
            "2017-01-01T00:00:00.000Z",
        ] {
            assert_eq!(date_time(ok), Ok(()), "{ok}");
        }
        for bad in [
            "2015-02-07T13:28:17",
            "2015-02-07T13:28Z",
            "2015-02T13:28:17Z",
            "2015-02-07T24:00:00Z",
            "2015-02-07T13:28:17+15:00",
            "2015-02-07T13:28:17.Z",
            "2015-02-07 13:28:17Z",
        ] {
            assert!(date_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_and_times() {
        assert_eq!(instant("2015-02-07T13:28:17.239+02:00"), Ok(()));
        assert!(instant("2015-02-07").is_err());
        assert!(instant("2015-02-07T13:28:17").is_err());
        assert_eq!(time("23:59:60"), Ok(()));
        assert_eq!(time("09:30:00.5"), Ok(()));
        assert!(time("9:30:00").is_err());
        assert!(time("09:30").is_err());
    }

    #[test]
    fn tokens() {
        assert_eq!(code("final"), Ok(()));
        assert_eq!(code("a b"), Ok(()));
        for bad in ["", " final", "final ", "a  b", "a\tb\t"] {
            assert!(code(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            code("KIDN\u{a0}"),
            Ok(()),
            "a no-break space is not XML Schema whitespace"
        );
        assert_eq!(id("abc-1.2"), Ok(()));
        assert!(id("a_b").is_err());
        assert!(id(&"a".repeat(65)).is_err());
        assert_eq!(uri("http://x/y"), Ok(()));
        assert!(uri("http://x/ y").is_err());
        assert_eq!(oid("urn:oid:1.2.840.10008"), Ok(()));
        assert!(oid("urn:oid:3.1").is_err());
        assert!(oid("urn:oid:1.02").is_err());
        assert_eq!(uuid("urn:uuid:c757873d-ec9a-4326-a141-556f43239520"), Ok(()));
        assert!(uuid("urn:uuid:C757873D-ec9a-4326-a141-556f43239520").is_err());
        assert_eq!(base64("aGVs bG8="), Ok(()));
        assert!(base64("aGVsbG8").is_err());
        assert!(base64("aGV*bG8=").is_err());
        assert!(string("").is_err());
    }
}
