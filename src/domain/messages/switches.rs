//! The messaging switches in force (release notes 5.3): `[messages.site]` until a Configuration
//! Manager saves others at run time, checked against where members' messages can go.

use serde_json::Value;

use crate::config::{MessageDestinations, MessageSwitches};
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::saved_settings;
use crate::store::{Reader, StoreError};

const SWITCHES_KEY: &[u8] = b"messages";

/// The switches in force.
pub fn switches(reader: &dyn Reader, configured: &MessageSwitches) -> Result<MessageSwitches, StoreError> {
    saved_settings::load(reader, SWITCHES_KEY, configured)
}

/// Saves new switches, audited; refused (422 `no-destination`) when one that is on would send
/// members' messages nowhere.
pub fn save_switches(
    op: &mut Op<'_, '_>,
    configured: &MessageSwitches,
    destinations: &MessageDestinations,
    new: MessageSwitches,
    reason: &str,
) -> Result<MessageSwitches, Refusal> {
    new.check(destinations)
        .map_err(|message| Refusal::new(Kind::Invalid, "no-destination", message))?;
    saved_settings::save(
        op,
        SWITCHES_KEY,
        configured,
        new,
        "settings.update",
        "settings/messages",
        reason,
    )
}

/// Whether a Communication is a provider's message to a patient: sent by a Practitioner or
/// PractitionerRole to a Patient, what `provider_initiated` governs. An external system's
/// message (an Organization, a Device or no sender) fills the inbox whatever the switches say.
pub fn is_provider_message(communication: &Value) -> bool {
    let sender = communication["sender"]["reference"].as_str().unwrap_or("");
    let by_provider = sender.starts_with("Practitioner/") || sender.starts_with("PractitionerRole/");
    let to_patient = communication["recipient"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["reference"].as_str().is_some_and(|r| r.starts_with("Patient/")));
    by_provider && to_patient
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_providers_message_is_one_a_practitioner_sends_a_patient() {
        let to_patient = json!([{ "reference": "Patient/p1" }]);
        let by = |sender: &str| json!({ "sender": { "reference": sender }, "recipient": to_patient });
        assert!(is_provider_message(&by("Practitioner/osei")));
        assert!(is_provider_message(&by("PractitionerRole/r1")));
        assert!(
            !is_provider_message(&by("Organization/lab")),
            "an external system's"
        );
        assert!(!is_provider_message(&by("Patient/p1")), "a member's");
        let to_provider = json!({ "sender": { "reference": "Practitioner/osei" }, "recipient": [{ "reference": "Practitioner/ali" }] });
        assert!(!is_provider_message(&to_provider));
    }
}
