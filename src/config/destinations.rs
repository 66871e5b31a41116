//! Destinations: where the outbox delivers. Each names its adapter `kind` and that adapter's
//! settings, the mapping that renders what it is sent, which changes it hears of, and how often
//! a failed delivery is tried again.

use serde::Deserialize;
use toml::Spanned;

/// One destination (`[[destinations]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Letters, digits, `-` and `_`; part of every delivery id.
    pub name: Spanned<String>,
    /// The adapter: `mllp`, `http`, `smtp`, `sms` or `file`.
    pub kind: Spanned<String>,
    /// A mapping reading a FHIR Patient (e.g. `patient-adt-a31`); without one the Patient's
    /// FHIR JSON is sent as it is.
    #[serde(default)]
    pub mapping: Option<Spanned<String>>,
    /// `<ResourceType>-changed`: every change to resources of that type from any source (feeds,
    /// the FHIR API, profile updates). `patient-changed` (or `Patient-changed`) is every
    /// demographic change, as a PIX consumer wants. Without one the destination only hears of
    /// the Patients changed by the channels that name it.
    #[serde(default)]
    pub events: Vec<Spanned<String>>,
    /// Identifier systems (assigning authorities) this destination subscribed to: only these
    /// identifiers are sent, and a patient with none of them is not sent at all. Empty: all.
    #[serde(default)]
    pub identifier_systems: Vec<String>,
    #[serde(default)]
    pub retry: RetryConfig,
    /// The adapter's own settings (address, URL, credentials, ...), see the README.
    #[serde(default)]
    pub settings: toml::Table,
}

/// How a failed delivery is tried again: exponential backoff with jitter, then the dead letters.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Tries in all (the first included) before a transient failure becomes a dead letter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each failure.
    #[serde(default = "default_initial_ms")]
    pub initial_backoff_ms: u64,
    /// The longest wait between two tries.
    #[serde(default = "default_max_ms")]
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: default_max_attempts(),
            initial_backoff_ms: default_initial_ms(),
            max_backoff_ms: default_max_ms(),
        }
    }
}

fn default_max_attempts() -> u32 {
    10
}

fn default_initial_ms() -> u64 {
    1_000
}

fn default_max_ms() -> u64 {
    300_000
}

/// The resource type an event a destination may subscribe to names: `<ResourceType>-changed`
/// (a FHIR resource type, capitalized) names that type, and `patient-changed`, the name configs
/// have long used, names `Patient`. None for anything else, which is not an event.
pub fn event_resource_type(event: &str) -> Option<&str> {
    match event {
        "patient-changed" => Some("Patient"),
        other => other.strip_suffix("-changed").filter(|t| {
            t.starts_with(|c: char| c.is_ascii_uppercase()) && t.chars().all(|c| c.is_ascii_alphanumeric())
        }),
    }
}
