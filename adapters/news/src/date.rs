//! Publication dates: whatever a feed writes, out as RFC 3339 in UTC (`2025-06-10T14:00:00Z`), so
//! the engine can compare and sort them as text.
//!
//! RSS says RFC 822 (`Tue, 10 Jun 2025 09:00:00 EST`), Atom says RFC 3339; real feeds mix them
//! up, so each is tried on both. A date that reads as neither is dropped (the item is still
//! worth having), never an error.

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, Utc};

/// `raw` as RFC 3339 UTC, or `None` when it is not a date we can read.
pub(crate) fn normalize(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let parsed = parse(raw).or_else(|| {
        // "UTC" and "Z" are common in RSS though RFC 822 names neither; it means what "GMT" does.
        let stem = raw.strip_suffix(" UTC").or_else(|| raw.strip_suffix(" Z"))?;
        DateTime::parse_from_rfc2822(&format!("{stem} GMT")).ok()
    })?;
    Some(
        parsed
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )
}

fn parse(raw: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(date) = DateTime::parse_from_rfc2822(raw) {
        return Some(date);
    }
    if let Ok(date) = DateTime::parse_from_rfc3339(raw) {
        return Some(date);
    }
    // A bare day (Dublin Core's `dc:date` allows it): midnight UTC.
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn rfc822_with_named_zones_and_offsets() {
        assert_eq!(
            normalize("Tue, 10 Jun 2025 09:00:00 GMT").as_deref(),
            Some("2025-06-10T09:00:00Z")
        );
        assert_eq!(
            normalize("Tue, 10 Jun 2025 09:00:00 EST").as_deref(),
            Some("2025-06-10T14:00:00Z")
        );
        assert_eq!(
            normalize("Tue, 10 Jun 2025 09:00:00 EDT").as_deref(),
            Some("2025-06-10T13:00:00Z")
        );
        assert_eq!(
            normalize("Tue, 10 Jun 2025 09:00:00 PST").as_deref(),
            Some("2025-06-10T17:00:00Z")
        );
        assert_eq!(
            normalize("Tue, 10 Jun 2025 09:00:00 +0200").as_deref(),
            Some("2025-06-10T07:00:00Z")
        );
        assert_eq!(
            normalize("Tue, 10 Jun 2025 23:30:00 -0330").as_deref(),
            Some("2025-06-11T03:00:00Z")
        );
        // No weekday, no seconds, a two-digit year: all RFC 822.
        assert_eq!(
            normalize(" 10 Jun 25 09:00 GMT ").as_deref(),
            Some("2025-06-10T09:00:00Z")
        );
        assert_eq!(
            normalize("Tue, 10 Jun 2025 09:00:00 UTC").as_deref(),
            Some("2025-06-10T09:00:00Z")
        );
    }

    #[test]
    fn rfc3339_and_bare_days() {
        assert_eq!(
            normalize("2025-06-10T09:00:00+02:00").as_deref(),
            Some("2025-06-10T07:00:00Z")
        );
        assert_eq!(
            normalize("2025-06-10T09:00:00.250Z").as_deref(),
            Some("2025-06-10T09:00:00.250Z")
        );
        assert_eq!(normalize("2025-06-10").as_deref(), Some("2025-06-10T00:00:00Z"));
    }

    #[test]
    fn unreadable_dates_are_none() {
        for raw in [
            "",
            "yesterday",
            "Tue, 32 Jun 2025 09:00:00 GMT",
            "2025-13-01T00:00:00Z",
            " UTC",
        ] {
            assert_eq!(normalize(raw), None, "{raw:?}");
        }
    }
}
