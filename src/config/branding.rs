//! The portal's branding (issue 17, release notes 6.8): the `[branding]` section gives the
//! organization and application titles and the colour palette the portal starts with, until a
//! Configuration Manager saves others (and an icon) through the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[branding]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingConfig {
    pub organization_title: String,
    pub application_title: String,
    /// Colour by role, each one of [`PALETTE_ROLES`], as `#rgb` or `#rrggbb`.
    pub palette: Spanned<BTreeMap<String, String>>,
    /// The largest icon a Configuration Manager may upload, in bytes.
    pub max_icon_bytes: usize,
}

/// The colours a palette may set.
pub const PALETTE_ROLES: [&str; 6] = ["primary", "secondary", "accent", "background", "text", "link"];

impl Default for BrandingConfig {
    fn default() -> BrandingConfig {
        BrandingConfig {
            organization_title: "Tributary Health".into(),
            application_title: "Patient Portal".into(),
            palette: Spanned::new(
                0..0,
                [
                    ("primary", "#005eb8"),
                    ("secondary", "#41b6e6"),
                    ("background", "#ffffff"),
                    ("text", "#212b32"),
                ]
                .into_iter()
                .map(|(role, colour)| (role.to_string(), colour.to_string()))
                .collect(),
            ),
            max_icon_bytes: 262_144,
        }
    }
}

/// The titles and palette in force (what the API saves, and what the config starts with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandingTexts {
    pub organization_title: String,
    pub application_title: String,
    pub palette: BTreeMap<String, String>,
}

impl BrandingTexts {
    /// Why these cannot be in force, if they cannot: an empty or overlong title, a colour role
    /// the portal does not have, or a value that is no colour.
    pub fn check(&self) -> Result<(), String> {
        for (name, title) in [
            ("organization_title", &self.organization_title),
            ("application_title", &self.application_title),
        ] {
            let length = title.trim().chars().count();
            if length == 0 || length > 100 {
                return Err(format!("{name} must have 1 to 100 characters"));
            }
        }
        for (role, colour) in &self.palette {
            if !PALETTE_ROLES.contains(&role.as_str()) {
                return Err(format!(
                    "palette role `{role}` is not one of {}",
                    PALETTE_ROLES.join(", ")
                ));
            }
            if !is_colour(colour) {
                return Err(format!(
                    "palette {role}: `{colour}` is not a colour (#rgb or #rrggbb)"
                ));
            }
        }
        Ok(())
    }
}

/// `#rgb` or `#rrggbb`, hexadecimal.
fn is_colour(text: &str) -> bool {
    text.strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl BrandingConfig {
    /// What the config starts the portal with.
    pub fn texts(&self) -> BrandingTexts {
        BrandingTexts {
            organization_title: self.organization_title.clone(),
            application_title: self.application_title.clone(),
            palette: self.palette.get_ref().clone(),
        }
    }
}

impl super::Config {
    /// Checks `[branding]`.
    pub(super) fn validate_branding(&self) -> Result<(), super::ConfigError> {
        self.branding
            .texts()
            .check()
            .map_err(|message| self.error_at(self.branding.palette.span(), "branding".into(), message))?;
        if self.branding.max_icon_bytes < 1024 {
            return Err(self.error_at(
                self.branding.palette.span(),
                "branding.max_icon_bytes".into(),
                "at least 1024".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_titles_and_roles_are_checked() {
        let mut texts = BrandingConfig::default().texts();
        assert_eq!(texts.check(), Ok(()));
        texts.palette.insert("accent".into(), "#0F0".into());
        assert_eq!(texts.check(), Ok(()));
        for bad in ["red", "#12345", "#ggg", "#1234567", "", "005eb8"] {
            let mut wrong = texts.clone();
            wrong.palette.insert("primary".into(), bad.into());
            assert!(wrong.check().is_err(), "{bad}");
        }
        let mut wrong = texts.clone();
        wrong.palette.insert("sparkle".into(), "#fff".into());
        assert!(wrong.check().unwrap_err().contains("sparkle"));
        let mut wrong = texts.clone();
        wrong.application_title = " ".into();
        assert!(wrong.check().is_err());
    }
}
