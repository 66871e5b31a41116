//! Scheduled jobs (`[[schedule]]`): which job, when (a cron expression), and the job's settings.

use serde::Deserialize;
use toml::Spanned;

/// The jobs the scheduler knows.
pub const JOBS: [&str; 6] = [
    "retry-sweep",
    "dead-letter-digest",
    "journal-retention",
    "proxy-expiry",
    "token-replay-sweep",
    "news-poll",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// One of [`JOBS`].
    pub job: Spanned<String>,
    /// When, in UTC: Unix cron (5 fields: minute hour day month weekday) or with seconds first
    /// (6 fields).
    pub cron: Spanned<String>,
    /// `journal-retention`: days of journal kept (whole segments older than this are dropped).
    #[serde(default)]
    pub keep_days: Option<u64>,
    /// `dead-letter-digest`: the destination the digest is sent through.
    #[serde(default)]
    pub destination: Option<Spanned<String>>,
    /// `dead-letter-digest`: its recipient (the `To` of an e-mail or text).
    #[serde(default)]
    pub to: Option<String>,
}

/// A cron expression: 6 fields as the `cron` crate reads them, or Unix's 5 with `0` seconds.
pub fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {text}"),
        6 | 7 => text.to_string(),
        _ => {
            return Err(format!(
                "`{text}` has {fields} fields; cron wants 5 (minute hour day month weekday) or 6 (seconds first)"
            ));
        }
    };
    full.parse::<cron::Schedule>()
        .map_err(|e| format!("`{text}` is not a cron expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_field_expressions_are_read() {
        assert!(parse_cron("30 3 * * *").is_ok());
        assert!(parse_cron("*/5 * * * * *").is_ok());
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("daily").unwrap_err().contains("1 fields"));
    }
}
