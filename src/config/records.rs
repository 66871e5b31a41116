//! The member's records (issue #16): the `[records]` section says where a member's
//! cancellation of an appointment goes back to (the scheduling system that booked it).

use serde::Deserialize;
use toml::Spanned;

/// `[records]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// `[[destinations]]` an appointment a member (or their proxy) cancels is sent to, each
    /// rendered by its own mapping (`appointment-siu-s15` for an MLLP scheduler, FHIR JSON
    /// without one), besides every destination subscribed to `Appointment-changed`.
    #[serde(default)]
    pub appointment_cancellation_destinations: Vec<Spanned<String>>,
}

impl super::Config {
    /// Checks `[records]`: every destination it names is defined.
    pub(super) fn validate_records(&self) -> Result<(), super::ConfigError> {
        for name in &self.records.appointment_cancellation_destinations {
            self.require_destination("records.appointment_cancellation_destinations".into(), name)?;
        }
        Ok(())
    }
}
