//! The engagement APIs (issue #7): the `[engagement]` section says where a member's profile
//! update is pushed (the UCR, TrakCare), where completed questionnaires go, and how long a
//! repeated invitation to the same address is held back.

use serde::Deserialize;
use toml::Spanned;

/// `[engagement]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngagementConfig {
    /// `[[destinations]]` a member's profile update is pushed to (the UCR, TrakCare), each
    /// rendered by its own mapping (`patient-adt-a31`, or FHIR JSON without one), besides every
    /// destination subscribed to `patient-changed`.
    #[serde(default)]
    pub profile_destinations: Vec<Spanned<String>>,
    /// `[[destinations]]` a completed questionnaire (QuestionnaireResponse, FHIR JSON) is pushed
    /// to: TrakCare. None: it is only stored.
    #[serde(default)]
    pub questionnaire_destination: Option<Spanned<String>>,
    /// Hours during which a second invitation with the same content to the same address is
    /// suppressed.
    #[serde(default = "default_window")]
    pub invitation_window_hours: Spanned<u32>,
}

impl Default for EngagementConfig {
    fn default() -> Self {
        EngagementConfig {
            profile_destinations: vec![],
            questionnaire_destination: None,
            invitation_window_hours: default_window(),
        }
    }
}

fn default_window() -> Spanned<u32> {
    Spanned::new(0..0, 24)
}

impl super::Config {
    /// Checks `[engagement]`: every destination it names is defined.
    pub(super) fn validate_engagement(&self) -> Result<(), super::ConfigError> {
        let e = &self.engagement;
        let named = e
            .profile_destinations
            .iter()
            .map(|d| ("engagement.profile_destinations", d))
            .chain(
                e.questionnaire_destination
                    .iter()
                    .map(|d| ("engagement.questionnaire_destination", d)),
            );
        for (key, name) in named {
            self.require_destination(key.into(), name)?;
        }
        Ok(())
    }
}
