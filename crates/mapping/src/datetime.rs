//! Dates and times between HL7 v2 (TS/DT: `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`) and
//! FHIR (`date`, `dateTime`, `instant`), keeping the precision and the UTC offset as sent.
//! Malformed or impossible values (month 13, 31 April, 29 February outside a leap year, hour
//! 24, an offset beyond ±14:00) give `None`, which a mapping sees as absent.
//!
//! FHIR wants an offset on every dateTime with a time. HL7 says a TS without one is in the
//! sender's zone; MSH-7 carries the sender's offset, so that is the fallback the caller passes.

/// A UTC offset, `+0500` / `-05:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    negative: bool,
    hours: u32,
    minutes: u32,
}

impl Offset {
    /// Appends `±hh:mm`.
    fn push_fhir(self, text: &mut String) {
        text.push(if self.negative { '-' } else { '+' });
        push_padded(text, self.hours, 2);
        text.push(':');
        push_padded(text, self.minutes, 2);
    }

    fn hl7(self) -> String {
        let sign = if self.negative { '-' } else { '+' };
        format!("{sign}{:02}{:02}", self.hours, self.minutes)
    }
}

/// A parsed point in time at some precision: fields after the first missing one are missing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Moment {
    year: u32,
    month: Option<u32>,
    day: Option<u32>,
    hour: Option<u32>,
    minute: Option<u32>,
    second: Option<u32>,
    /// Digits after the decimal point of the seconds.
    fraction: Option<String>,
    offset: Option<Offset>,
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Moment {
    /// Every field in range, and the day exists in its month.
    fn is_valid(&self) -> bool {
        let in_range = |v: Option<u32>, lo: u32, hi: u32| v.is_none_or(|v| (lo..=hi).contains(&v));
        self.year >= 1
            && in_range(self.month, 1, 12)
            && self
                .day
                .is_none_or(|d| d >= 1 && d <= days_in_month(self.year, self.month.unwrap_or(1)))
            && in_range(self.hour, 0, 23)
            && in_range(self.minute, 0, 59)
            && in_range(self.second, 0, 59)
            && self
                .offset
                .is_none_or(|o| o.minutes <= 59 && (o.hours < 14 || (o.hours == 14 && o.minutes == 0)))
    }

    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, as precise as the moment is. (Written digit by digit:
    /// a mapping converts a date for nearly every message, and `format!` costs more than the rest
    /// of the conversion.)
    fn fhir_date(&self) -> String {
        let mut text = String::with_capacity(10);
        self.push_fhir_date(&mut text);
        text
    }

    fn push_fhir_date(&self, text: &mut String) {
        push_padded(text, self.year, 4);
        for part in [self.month, self.day].into_iter().map_while(|p| p) {
            text.push('-');
            push_padded(text, part, 2);
        }
    }

    /// `YYYY-MM-DDThh:mm:ss[.f]±hh:mm`; the caller has checked there is an hour and an offset.
    fn fhir_datetime(&self, offset: Offset) -> String {
        let mut text = String::with_capacity(32);
        self.push_fhir_date(&mut text);
        text.push('T');
        push_padded(&mut text, self.hour.unwrap_or(0), 2);
        text.push(':');
        push_padded(&mut text, self.minute.unwrap_or(0), 2);
        text.push(':');
        push_padded(&mut text, self.second.unwrap_or(0), 2);
        if let Some(fraction) = &self.fraction {
            text.push('.');
            text.push_str(fraction);
        }
        offset.push_fhir(&mut text);
        text
    }
}

/// Appends `value` in decimal, zero-padded to `width` digits: `format!("{value:0width$}")`.
fn push_padded(text: &mut String, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut rest = value;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for _ in digits.len()..width {
        text.push('0');
    }
    let start = start.min(digits.len().saturating_sub(width));
    for &digit in &digits[start..] {
        text.push(char::from(digit));
    }
}

fn two(digits: &str, at: usize) -> Option<u32> {
    digits.get(at..at + 2)?.parse().ok()
}

/// HL7 TS/DT text.
fn parse_hl7(text: &str) -> Option<Moment> {
    let text = text.trim();
    // The year never carries a sign, so a sign after it starts the offset.
    let (body, offset) = match text.get(4..).and_then(|rest| rest.find(['+', '-'])) {
        Some(at) => {
            let (body, zone) = text.split_at(at + 4);
            (body, Some(parse_hl7_offset(zone)?))
        }
        None => (text, None),
    };
    let (digits, fraction) = match body.split_once('.') {
        Some((digits, fraction)) => (digits, Some(fraction)),
        None => (body, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![4, 6, 8, 10, 12, 14].contains(&digits.len()) {
        return None;
    }
    if let Some(f) = fraction {
        let ok = digits.len() == 14 && (1..=4).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return None;
        }
    }
    let moment = Moment {
        year: digits.get(0..4)?.parse().ok()?,
        month: two(digits, 4),
        day: two(digits, 6),
        hour: two(digits, 8),
        minute: two(digits, 10),
        second: two(digits, 12),
        fraction: fraction.map(str::to_owned),
        offset,
    };
    moment.is_valid().then_some(moment)
}

/// `+hhmm` / `-hhmm`.
fn parse_hl7_offset(zone: &str) -> Option<Offset> {
    let negative = zone.starts_with('-');
    let digits = zone.get(1..)?;
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Offset {
        negative,
        hours: two(digits, 0)?,
        minutes: two(digits, 2)?,
    })
}

/// The UTC offset of an HL7 TS (e.g. MSH-7), when it has a valid one.
pub fn hl7_offset(text: &str) -> Option<Offset> {
    parse_hl7(text)?.offset
}

/// HL7 TS/DT -> FHIR date at the precision sent (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`); a time
/// is dropped.
pub fn fhir_date(text: &str) -> Option<String> {
    Some(parse_hl7(text)?.fhir_date())
}

/// HL7 TS -> FHIR dateTime: `20250314093015-0500` -> `2025-03-14T09:30:15-05:00`. Date-only
/// precision stays a date. A time without an offset takes `fallback`; without either: `None`.
/// Minutes and seconds missing from the TS are written as `00` (FHIR requires them).
pub fn fhir_datetime(text: &str, fallback: Option<Offset>) -> Option<String> {
    let moment = parse_hl7(text)?;
    if moment.hour.is_none() {
        return Some(moment.fhir_date());
    }
    let offset = moment.offset.or(fallback)?;
    Some(moment.fhir_datetime(offset))
}

/// HL7 TS -> FHIR instant: like `fhir_datetime`, but seconds and an offset are required.
pub fn fhir_instant(text: &str, fallback: Option<Offset>) -> Option<String> {
    let moment = parse_hl7(text)?;
    moment.second?;
    let offset = moment.offset.or(fallback)?;
    Some(moment.fhir_datetime(offset))
}

/// FHIR date/dateTime/instant -> HL7 TS: `2025-03-14T09:30:15-05:00` -> `20250314093015-0500`,
/// `Z` -> `+0000`. Fractions beyond HL7's four digits are cut.
pub fn hl7_ts(text: &str) -> Option<String> {
    let text = text.trim();
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year = parts.next().filter(|y| y.len() == 4)?;
    let month = parts.next();
    let day = parts.next();
    if parts.next().is_some() || [month, day].iter().flatten().any(|p| p.len() != 2) {
        return None;
    }
    let mut digits = String::with_capacity(24);
    for part in [Some(year), month, day].into_iter().flatten() {
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.push_str(part);
    }
    let mut offset = None;
    let mut fraction = None;
    if let Some(time) = time {
        day?;
        let (clock, zone) = match time.find(['Z', '+', '-']) {
            Some(at) => time.split_at(at),
            None => (time, ""),
        };
        offset = match zone {
            "" => None,
            "Z" => Some(Offset {
                negative: false,
                hours: 0,
                minutes: 0,
            }),
            zone => {
                let (sign, rest) = zone.split_at(1);
                let (h, m) = rest
                    .split_once(':')
                    .filter(|(h, m)| h.len() == 2 && m.len() == 2)?;
                parse_hl7_offset(&format!("{sign}{h}{m}"))
                    .filter(|_| h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()))
                    .map(Some)?
            }
        };
        let (clock, frac) = match clock.split_once('.') {
            Some((clock, frac)) => (clock, Some(frac)),
            None => (clock, None),
        };
        let pieces: Vec<&str> = clock.split(':').collect();
        if !(2..=3).contains(&pieces.len()) || pieces.iter().any(|p| p.len() != 2) {
            return None;
        }
        for piece in &pieces {
            if !piece.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.push_str(piece);
        }
        if let Some(frac) = frac {
            if pieces.len() != 3 || frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            fraction = Some(&frac[..frac.len().min(4)]);
        }
    }
    // Reuse the HL7 reader to check every range.
    let mut ts = digits;
    if let Some(f) = fraction {
        ts.push('.');
        ts.push_str(f);
    }
    if let Some(o) = offset {
        ts.push_str(&o.hl7());
    }
    parse_hl7(&ts)?;
    Some(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minus5() -> Option<Offset> {
        hl7_offset("20250101-0500")
    }

    #[test]
    fn dates_keep_their_precision() {
        assert_eq!(fhir_date("1984").as_deref(), Some("1984"));
        assert_eq!(fhir_date("198403").as_deref(), Some("1984-03"));
        assert_eq!(fhir_date("19840312").as_deref(), Some("1984-03-12"));
        assert_eq!(fhir_date("20250314093015-0500").as_deref(), Some("2025-03-14"));
        assert_eq!(fhir_date(" 20000229 ").as_deref(), Some("2000-02-29"));
    }

    #[test]
    fn bad_dates_are_none() {
        for bad in [
            "",
            "198",
            "19840",
            "1984031",
            "19841312",
            "19840431",
            "19000229",
            "20250229",
            "0000",
            "1984-03-12",
            "19840312x",
            "2025031409301",
            "20250314240000",
            "20250314096000",
            "20250314093060",
            "20250314093015.12345",
            "202503140930.1",
            "20250314093015-05",
            "20250314093015+1500",
            "20250314093015-0560",
            "20250314093015+0500x",
            "abcd",
        ] {
            assert_eq!(fhir_date(bad), None, "{bad:?}");
            assert_eq!(fhir_datetime(bad, minus5()), None, "{bad:?}");
        }
    }

    #[test]
    fn datetimes_keep_their_offset() {
        assert_eq!(
            fhir_datetime("20250314093015-0500", None).as_deref(),
            Some("2025-03-14T09:30:15-05:00")
        );
        assert_eq!(
            fhir_datetime("20250702143000+0100", None).as_deref(),
            Some("2025-07-02T14:30:00+01:00")
        );
        assert_eq!(
            fhir_datetime("20250316101500+0000", None).as_deref(),
            Some("2025-03-16T10:15:00+00:00")
        );
        assert_eq!(
            fhir_datetime("20250314093015.1234+0530", None).as_deref(),
            Some("2025-03-14T09:30:15.1234+05:30")
        );
        assert_eq!(
            fhir_datetime("202503140930-0500", None).as_deref(),
            Some("2025-03-14T09:30:00-05:00")
        );
        assert_eq!(
            fhir_datetime("2025031409-0500", None).as_deref(),
            Some("2025-03-14T09:00:00-05:00")
        );
        assert_eq!(
            fhir_datetime("20250314093015+1400", None).as_deref(),
            Some("2025-03-14T09:30:15+14:00")
        );
        assert_eq!(
            fhir_datetime("20250314093015-1200", None).as_deref(),
            Some("2025-03-14T09:30:15-12:00")
        );
    }

    #[test]
    fn date_only_precision_stays_a_date() {
        assert_eq!(fhir_datetime("20250314", None).as_deref(), Some("2025-03-14"));
        assert_eq!(
            fhir_datetime("20250314-0500", None).as_deref(),
            Some("2025-03-14")
        );
        assert_eq!(fhir_datetime("202503", None).as_deref(), Some("2025-03"));
    }

    #[test]
    fn a_time_without_offset_takes_the_fallback_or_is_none() {
        assert_eq!(
            fhir_datetime("20250314093015", minus5()).as_deref(),
            Some("2025-03-14T09:30:15-05:00")
        );
        assert_eq!(fhir_datetime("20250314093015", None), None);
        // Its own offset wins over the fallback.
        assert_eq!(
            fhir_datetime("20250314093015+0100", minus5()).as_deref(),
            Some("2025-03-14T09:30:15+01:00")
        );
    }

    #[test]
    fn instants_need_seconds_and_an_offset() {
        assert_eq!(
            fhir_instant("20250314093015-0500", None).as_deref(),
            Some("2025-03-14T09:30:15-05:00")
        );
        assert_eq!(
            fhir_instant("20250314093015", minus5()).as_deref(),
            Some("2025-03-14T09:30:15-05:00")
        );
        assert_eq!(fhir_instant("202503140930-0500", None), None);
        assert_eq!(fhir_instant("20250314", None), None);
        assert_eq!(fhir_instant("20250314093015", None), None);
    }

    #[test]
    fn fhir_to_hl7() {
        for (fhir, hl7) in [
            ("2025-03-14T09:30:15-05:00", "20250314093015-0500"),
            ("2025-03-14T09:30:15Z", "20250314093015+0000"),
            ("2025-03-14T09:30:15.123456+01:00", "20250314093015.1234+0100"),
            ("2025-03-14T09:30", "202503140930"),
            ("2025-03-14", "20250314"),
            ("2025-03", "202503"),
            ("2025", "2025"),
        ] {
            assert_eq!(hl7_ts(fhir).as_deref(), Some(hl7), "{fhir}");
        }
        for bad in [
            "",
            "25-03-14",
            "2025-3-14",
            "2025-03-14T",
            "2025-03-14T9:30",
            "2025-02-30",
            "2025-03-14T09:30:15+0500",
            "2025-03-14T09:30:15+05:00x",
            "2025-03T09:30",
            "2025-03-14T25:00",
            "2025-03-14T09:30.5",
            "2025-03-14T09:30:15.",
            "2025-03-14-01",
        ] {
            assert_eq!(hl7_ts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn padded_digits_are_as_format_writes_them() {
        for value in [
            0,
            1,
            9,
            10,
            59,
            99,
            100,
            999,
            1984,
            9999,
            10_000,
            123_456,
            u32::MAX,
        ] {
            for width in [0, 1, 2, 4, 12] {
                let mut text = String::from("x");
                push_padded(&mut text, value, width);
                assert_eq!(text, format!("x{value:0width$}"));
            }
        }
    }

    #[test]
    fn round_trip() {
        for ts in [
            "20250314093015-0500",
            "20240229235959.5+1400",
            "2025",
            "202512",
            "20251231",
        ] {
            let fhir = fhir_datetime(ts, None).unwrap();
            assert_eq!(hl7_ts(&fhir).as_deref(), Some(ts), "{fhir}");
        }
    }
}
