//! Where traces go (issue 18): the `[traces]` section names an OTLP/HTTP collector; without one
//! no span is exported and none is kept (README "Traces").

use serde::Deserialize;
use toml::Spanned;

/// `[traces]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// The collector's OTLP/HTTP traces URL, path included (`http://127.0.0.1:4318/v1/traces`);
    /// spans are sent there as OTLP JSON. None: traces are off.
    pub otlp_endpoint: Option<Spanned<String>>,
    /// `service.name` of the spans' resource.
    pub service_name: String,
}

impl Default for TracesConfig {
    fn default() -> TracesConfig {
        TracesConfig {
            otlp_endpoint: None,
            service_name: "tributary".into(),
        }
    }
}

impl super::Config {
    /// Checks `[traces]`: an endpoint is an http(s) URL with a host.
    pub(super) fn validate_traces(&self) -> Result<(), super::ConfigError> {
        let Some(endpoint) = &self.traces.otlp_endpoint else {
            return Ok(());
        };
        let usable = reqwest::Url::parse(endpoint.get_ref())
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
        if !usable {
            return Err(self.error_at(
                endpoint.span(),
                "traces.otlp_endpoint".into(),
                format!(
                    "`{}` is not an http(s) URL (the collector's traces URL, e.g. http://127.0.0.1:4318/v1/traces)",
                    endpoint.get_ref()
                ),
            ));
        }
        Ok(())
    }
}
