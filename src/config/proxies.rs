//! Proxy relationships (issue #6): the `[proxies]` section, the code list of relationship types
//! staff choose from (the proxy's relationship to the principal). The default list is a part of
//! HL7's v3 RoleCode personal relationships; a site may give its own, with its own code system.

use serde::Deserialize;
use toml::Spanned;

/// The code system of the default relationship types.
pub const ROLE_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";

/// `[proxies]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxiesConfig {
    /// The code system the relationship codes belong to (shown in the FHIR RelatedPerson).
    #[serde(default = "default_system")]
    pub relationship_system: String,
    /// `[[proxies.relationship_types]]`: `code` and `display`.
    #[serde(default = "default_types")]
    pub relationship_types: Vec<RelationshipType>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipType {
    pub code: Spanned<String>,
    pub display: String,
}

impl Default for ProxiesConfig {
    fn default() -> Self {
        ProxiesConfig {
            relationship_system: default_system(),
            relationship_types: default_types(),
        }
    }
}

impl ProxiesConfig {
    /// The display of a configured relationship code.
    pub fn display_of(&self, code: &str) -> Option<&str> {
        self.relationship_types
            .iter()
            .find(|t| t.code.get_ref() == code)
            .map(|t| t.display.as_str())
    }

    pub fn codes(&self) -> Vec<&str> {
        self.relationship_types
            .iter()
            .map(|t| t.code.get_ref().as_str())
            .collect()
    }
}

fn default_system() -> String {
    ROLE_CODE_SYSTEM.to_string()
}

fn default_types() -> Vec<RelationshipType> {
    [
        ("PRN", "parent"),
        ("GRD", "guardian"),
        ("SPS", "spouse"),
        ("CHILD", "child"),
        ("SIB", "sibling"),
        ("FAMMEMB", "family member"),
        ("FRND", "unrelated friend"),
        ("POWATT", "power of attorney"),
    ]
    .into_iter()
    .map(|(code, display)| RelationshipType {
        code: Spanned::new(0..0, code.to_string()),
        display: display.to_string(),
    })
    .collect()
}

impl super::Config {
    /// Checks `[proxies]`: at least one type, codes that are codes, none twice.
    pub(super) fn validate_proxies(&self) -> Result<(), super::ConfigError> {
        let p = &self.proxies;
        if p.relationship_types.is_empty() {
            return Err(self.error_at(
                0..0,
                "proxies.relationship_types".into(),
                "give at least one relationship type".into(),
            ));
        }
        for (i, t) in p.relationship_types.iter().enumerate() {
            let code = t.code.get_ref();
            let key = format!("proxies.relationship_types[{i}].code");
            let ok = !code.is_empty()
                && code.len() <= 64
                && code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(self.error_at(
                    t.code.span(),
                    key,
                    format!("`{code}` is not a code (letters, digits, - _ .)"),
                ));
            }
            if p.relationship_types[..i].iter().any(|o| o.code.get_ref() == code) {
                return Err(self.error_at(
                    t.code.span(),
                    key,
                    format!("the relationship type `{code}` is listed twice"),
                ));
            }
            if t.display.trim().is_empty() {
                return Err(self.error_at(
                    t.code.span(),
                    format!("proxies.relationship_types[{i}].display"),
                    format!("the relationship type `{code}` needs a display"),
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
    fn the_default_list_is_used_and_a_site_list_replaces_it() {
        let config = Config::parse("", "t.toml").unwrap();
        assert_eq!(config.proxies.display_of("PRN"), Some("parent"));
        let text = "[proxies]\nrelationship_system = \"urn:site:rel\"\n[[proxies.relationship_types]]\ncode = \"CARER\"\ndisplay = \"carer\"\n";
        let config = Config::parse(text, "t.toml").unwrap();
        assert_eq!(config.proxies.codes(), vec!["CARER"]);
        assert_eq!(config.proxies.display_of("PRN"), None);
    }

    #[test]
    fn a_bad_or_repeated_code_names_its_line() {
        let text = "[proxies]\n[[proxies.relationship_types]]\ncode = \"A\"\ndisplay = \"a\"\n[[proxies.relationship_types]]\ncode = \"A\"\ndisplay = \"again\"\n";
        let e = Config::parse(text, "t.toml").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (6, "proxies.relationship_types[1].code"),
            "{e}"
        );
        let e = Config::parse(
            "[[proxies.relationship_types]]\ncode = \"has space\"\ndisplay = \"x\"\n",
            "t.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = Config::parse("[proxies]\nrelationship_types = []\n", "t.toml").unwrap_err();
        assert_eq!(e.key, "proxies.relationship_types");
    }
}
