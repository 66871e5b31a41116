//! `[http.rate_limit]`: the per-client-address request budget of the HTTP API (every endpoint
//! but `/health`). A token bucket per address: `burst` requests at once, refilled at
//! `per_second`; past it a request is answered 429 with `Retry-After`. On by default with
//! numbers no well-behaved client reaches, so a flood from one address cannot starve the rest.

use serde::Deserialize;
use toml::Spanned;

/// `[http.rate_limit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off: no request is ever refused for its rate.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Requests per second one address may keep up.
    #[serde(default = "default_per_second")]
    pub per_second: Spanned<u32>,
    /// Requests one address may send at once, before the rate applies.
    #[serde(default = "default_burst")]
    pub burst: Spanned<u32>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            per_second: default_per_second(),
            burst: default_burst(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_per_second() -> Spanned<u32> {
    Spanned::new(0..0, 200)
}

fn default_burst() -> Spanned<u32> {
    Spanned::new(0..0, 1000)
}

impl super::Config {
    /// Checks `[http.rate_limit]`: both numbers at least 1.
    pub(super) fn validate_rate_limit(&self) -> Result<(), super::ConfigError> {
        let limit = &self.http.rate_limit;
        for (key, value) in [("per_second", &limit.per_second), ("burst", &limit.burst)] {
            if *value.get_ref() == 0 {
                return Err(self.error_at(
                    value.span(),
                    format!("http.rate_limit.{key}"),
                    "must be at least 1 (set `enabled = false` to turn the limit off)".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_rate_limit_is_on_by_default_and_checked() {
        let config = Config::parse("", "t.toml").unwrap();
        let limit = &config.http.rate_limit;
        assert!(limit.enabled);
        assert_eq!((*limit.per_second.get_ref(), *limit.burst.get_ref()), (200, 1000));

        let config = Config::parse("[http.rate_limit]\nper_second = 2\nburst = 3\n", "t.toml").unwrap();
        assert_eq!(*config.http.rate_limit.burst.get_ref(), 3);
        let e = Config::parse("[http.rate_limit]\nper_second = 0\n", "t.toml").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("http.rate_limit.per_second", 2));
        let e = Config::parse("[http.rate_limit]\nburts = 3\n", "t.toml").unwrap_err();
        assert!(e.message.contains("burts"), "{e}");
    }
}
