//! The adapter registry: a destination's config `kind` to the adapter that delivers for it.
//! A new adapter is a new crate under `adapters/` plus one arm here. Each adapter's settings are
//! its own crate's config type, read from the destination's `settings` table.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use tributary_adapter_core::Outbound;

/// The kinds a destination may name.
pub const KINDS: [&str; 5] = ["mllp", "http", "smtp", "sms", "file"];

/// Builds the adapter for `kind` from its `settings` table; the error says what is wrong.
pub fn build(kind: &str, settings: &toml::Table) -> Result<Arc<dyn Outbound>, String> {
    match kind {
        "mllp" => Ok(Arc::new(tributary_adapter_mllp::MllpOutbound::from_config(
            &parse(settings)?,
        )?)),
        "http" => Ok(Arc::new(tributary_adapter_http::from_config(parse(settings)?)?)),
        "smtp" => Ok(Arc::new(tributary_adapter_smtp::from_config(parse(settings)?)?)),
        "sms" => Ok(Arc::new(tributary_adapter_sms::from_config(parse(settings)?)?)),
        "file" => Ok(Arc::new(tributary_adapter_file::from_config(parse(settings)?)?)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn every_kind_builds_from_its_settings_and_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("dir = {:?}", dir.path().display().to_string());
        let good = [
            ("mllp", "address = \"127.0.0.1:2576\""),
            ("http", "url = \"http://127.0.0.1:9/ucr/fhir\""),
            (
                "smtp",
                "host = \"127.0.0.1\"\nfrom = \"portal@example.org\"\ntls = \"none\"",
            ),
            (
                "sms",
                "url = \"http://127.0.0.1:9/sms\"\nbody = '{\"to\": \"{{to}}\", \"text\": \"{{body}}\"}'",
            ),
            ("file", file.as_str()),
        ];
        for (kind, settings) in good {
            let adapter = build(kind, &table(settings)).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(adapter.kind(), kind);
        }
        let error = build("mllp", &table("adress = \"x\"")).err().unwrap();
        assert!(error.contains("adress"), "{error}");
        let error = build("pigeon", &table("")).err().unwrap();
        assert!(error.contains("pigeon") && error.contains("smtp"), "{error}");
    }
}
