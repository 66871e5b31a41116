//! The member's messaging (issue 17, release notes 6.6 and 5.3): `[messages.destinations]` says
//! where the messages members write go, per category (general, medical, billing) and for
//! replies outside those threads; `[messages.site]` which directions of messaging the site
//! offers, until a Configuration Manager saves other switches at run time.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The categories a member writes in.
pub const MESSAGE_CATEGORIES: [&str; 3] = ["general", "medical", "billing"];

/// `[messages]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    /// `[messages.destinations]`.
    #[serde(default)]
    pub destinations: MessageDestinations,
    /// `[messages.site]`: the switches in force until a Configuration Manager saves others.
    #[serde(default)]
    pub site: Option<Spanned<MessageSwitches>>,
}

/// Where members' messages go: `[[destinations]]` by name (each gets the FHIR Communication,
/// or what its mapping makes of it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageDestinations {
    #[serde(default)]
    pub general: Vec<Spanned<String>>,
    #[serde(default)]
    pub medical: Vec<Spanned<String>>,
    #[serde(default)]
    pub billing: Vec<Spanned<String>>,
    /// A reply in a thread of none of the three categories (a provider's message about a
    /// result, say), and in a category with no destination of its own.
    #[serde(default)]
    pub replies: Vec<Spanned<String>>,
}

impl MessageDestinations {
    /// The destinations of `category` (one of [`MESSAGE_CATEGORIES`] or `replies`).
    pub fn of(&self, category: &str) -> Vec<String> {
        let named = match category {
            "general" => &self.general,
            "medical" => &self.medical,
            "billing" => &self.billing,
            "replies" => &self.replies,
            _ => return vec![],
        };
        named.iter().map(|d| d.get_ref().clone()).collect()
    }
}

/// Which directions of messaging the site offers (release notes 5.3). The inbox of what
/// external systems send works whatever these say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessageSwitches {
    /// Members ask general questions.
    pub patient_general: bool,
    /// Members ask medical questions.
    pub patient_medical: bool,
    /// Members ask billing questions.
    pub patient_billing: bool,
    /// Members reply to a message (a provider's, or to go on with a conversation).
    pub patient_replies: bool,
    /// Providers (a Practitioner or PractitionerRole as sender) message members.
    pub provider_initiated: bool,
}

impl Default for MessageSwitches {
    /// The inbox and providers' messages; nothing a member writes until the site staffs it.
    fn default() -> MessageSwitches {
        MessageSwitches {
            patient_general: false,
            patient_medical: false,
            patient_billing: false,
            patient_replies: false,
            provider_initiated: true,
        }
    }
}

impl MessageSwitches {
    /// Whether members may write in `category`.
    pub fn allows_category(&self, category: &str) -> bool {
        match category {
            "general" => self.patient_general,
            "medical" => self.patient_medical,
            "billing" => self.patient_billing,
            _ => false,
        }
    }

    /// Why these switches cannot be in force with `destinations`, if they cannot: what a
    /// member may write must have somewhere to go.
    pub fn check(&self, destinations: &MessageDestinations) -> Result<(), String> {
        for category in MESSAGE_CATEGORIES {
            if self.allows_category(category) && destinations.of(category).is_empty() {
                return Err(format!(
                    "patient_{category} is on, but messages.destinations.{category} names no destination"
                ));
            }
        }
        if self.patient_replies && destinations.of("replies").is_empty() {
            return Err(
                "patient_replies is on, but messages.destinations.replies names no destination".into(),
            );
        }
        Ok(())
    }
}

impl MessagesConfig {
    /// The switches `[messages.site]` sets (the defaults when it is absent).
    pub fn switches(&self) -> MessageSwitches {
        self.site
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default()
    }
}

impl super::Config {
    /// Checks `[messages]`: every destination it names is defined, and every switch that is on
    /// has somewhere to send to.
    pub(super) fn validate_messages(&self) -> Result<(), super::ConfigError> {
        let destinations = &self.messages.destinations;
        for (category, named) in [
            ("general", &destinations.general),
            ("medical", &destinations.medical),
            ("billing", &destinations.billing),
            ("replies", &destinations.replies),
        ] {
            for name in named {
                self.require_destination(format!("messages.destinations.{category}"), name)?;
            }
        }
        match &self.messages.site {
            Some(site) => site
                .get_ref()
                .check(destinations)
                .map_err(|message| self.error_at(site.span(), "messages.site".into(), message)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_that_is_on_needs_a_destination() {
        let none = MessageDestinations::default();
        assert!(
            MessageSwitches::default().check(&none).is_ok(),
            "the inbox alone needs none"
        );
        let medical = MessageSwitches {
            patient_medical: true,
            ..MessageSwitches::default()
        };
        let error = medical.check(&none).unwrap_err();
        assert!(error.contains("messages.destinations.medical"), "{error}");
        let replies = MessageSwitches {
            patient_replies: true,
            ..MessageSwitches::default()
        };
        assert!(replies.check(&none).unwrap_err().contains("replies"));
    }
}
