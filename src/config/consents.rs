//! The member's consents (issue 17, release notes 6.2): `[consents]` says where a member's
//! changed answers go back to (the external system that made the consent documents), and
//! `[consents.site]` what members and proxies may do, until a Configuration Manager saves
//! other switches at run time.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[consents]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentsConfig {
    /// `[[destinations]]` a changed consent goes to (FHIR JSON, or through their mapping).
    #[serde(default)]
    pub destinations: Vec<Spanned<String>>,
    /// `[consents.site]`.
    #[serde(default)]
    pub site: ConsentSwitches,
}

/// What members and proxies may do with consents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentSwitches {
    /// A member sees their consents (and a granted proxy a principal's).
    pub patient_view: bool,
    /// A member changes their own answers.
    pub patient_edit: bool,
    /// A granted proxy changes a principal's answers.
    pub proxy_edit: bool,
}

impl Default for ConsentSwitches {
    fn default() -> ConsentSwitches {
        ConsentSwitches {
            patient_view: true,
            patient_edit: false,
            proxy_edit: false,
        }
    }
}

impl super::Config {
    /// Checks `[consents]`: every destination it names is defined.
    pub(super) fn validate_consents(&self) -> Result<(), super::ConfigError> {
        for name in &self.consents.destinations {
            self.require_destination("consents.destinations".into(), name)?;
        }
        Ok(())
    }
}
