//! The adapter registry: a destination's config `kind` to the adapter that delivers for it.
//! A new adapter is a new crate under `adapters/` plus one arm here.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tributary_adapter_core::Outbound;

/// The kinds a destination may name.
pub const KINDS: [&str; 1] = ["mllp"];

/// Builds the adapter for `kind` from its `settings` table; the error says what is wrong.
pub fn build(kind: &str, settings: &toml::Table) -> Result<Arc<dyn Outbound>, String> {
    match kind {
        "mllp" => {
            let settings: MllpSettings = parse(settings)?;
            Ok(Arc::new(tributary_adapter_mllp::MllpOutbound::new(
                settings.address,
                Duration::from_secs(settings.timeout_secs),
            )))
        }
        other => Err(format!(
            "`{other}` is not an adapter kind (known: {})",
            KINDS.join(", ")
        )),
    }
}

fn parse<T: DeserializeOwned>(settings: &toml::Table) -> Result<T, String> {
    toml::Value::Table(settings.clone())
        .try_into()
        .map_err(|e: toml::de::Error| format!("settings: {}", e.message().trim()))
}

/// `[destinations.settings]` of an MLLP destination.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MllpSettings {
    /// `host:port` of the receiving MLLP listener.
    address: String,
    /// Bounds the connect, the write and the wait for the ACK.
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
}

fn default_timeout() -> u64 {
    10
}
