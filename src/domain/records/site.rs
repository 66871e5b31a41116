//! The Records tab's site switches in force: the last ones a Configuration Manager saved (kept
//! in the store beside the member settings, so every engine node reads the same), else the
//! config's `[records.site]`. A part switched off is not served (404 `not-offered`); a type or
//! category switched off is left out; info buttons link each record to patient education.

use serde_json::Value;

use crate::config::RecordSwitches;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::saved_settings;
use crate::store::{Reader, StoreError};

const SWITCHES_KEY: &[u8] = b"records";

/// A part of the Records tab, for [`require`].
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Summary,
    Results,
    Documents,
    CarePlans,
}

/// The switches in force.
pub fn switches(reader: &dyn Reader, configured: &RecordSwitches) -> Result<RecordSwitches, StoreError> {
    saved_settings::load(reader, SWITCHES_KEY, configured)
}

/// Saves new switches (in the command's write set, with its audit record).
pub fn save(
    op: &mut Op<'_, '_>,
    configured: &RecordSwitches,
    new: RecordSwitches,
    reason: &str,
) -> Result<RecordSwitches, Refusal> {
    new.check().map_err(Refusal::invalid)?;
    saved_settings::save(
        op,
        SWITCHES_KEY,
        configured,
        new,
        "settings.update",
        "settings/records",
        reason,
    )
}

/// The switches in force, when the site offers `part` now; refused (404 `not-offered`) when the
/// Records tab or that part is off.
pub fn offered(
    reader: &dyn Reader,
    configured: &RecordSwitches,
    part: Part,
) -> Result<RecordSwitches, Refusal> {
    let switches = switches(reader, configured)?;
    require(&switches, part)?;
    Ok(switches)
}

fn require(switches: &RecordSwitches, part: Part) -> Result<(), Refusal> {
    let (on, name) = match part {
        Part::Summary => (switches.summary, "Summary"),
        Part::Results => (switches.results, "Results"),
        Part::Documents => (switches.documents, "Documents"),
        Part::CarePlans => (switches.care_plans, "Care Plans"),
    };
    if switches.records && on {
        return Ok(());
    }
    Err(Refusal::new(
        Kind::NotFound,
        "not-offered",
        format!("this site does not offer {name} now"),
    ))
}

/// The info button's link for a record named `name` coded `code` (a FHIR CodeableConcept), when
/// the site shows info buttons.
pub fn info_url(switches: &RecordSwitches, concept: &Value) -> Option<String> {
    if !switches.info_buttons {
        return None;
    }
    let coding = &concept["coding"][0];
    let code = coding["code"].as_str().unwrap_or("");
    let name = concept["text"]
        .as_str()
        .or(coding["display"].as_str())
        .unwrap_or(code);
    if code.is_empty() && name.is_empty() {
        return None;
    }
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    Some(
        switches
            .education_link
            .replace("{code}", &encode(code))
            .replace("{system}", &encode(coding["system"].as_str().unwrap_or("")))
            .replace("{name}", &encode(name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_info_link_names_the_record_url_encoded_and_only_when_the_buttons_are_on() {
        let mut switches = RecordSwitches {
            education_link: "https://education.example/lookup?c={code}&s={system}&q={name}".into(),
            ..RecordSwitches::default()
        };
        let concept = json!({ "coding": [{ "system": "http://loinc.org", "code": "2345-7" }], "text": "Glucose & sugar" });
        assert_eq!(info_url(&switches, &concept), None);
        switches.info_buttons = true;
        assert_eq!(
            info_url(&switches, &concept).unwrap(),
            "https://education.example/lookup?c=2345-7&s=http%3A%2F%2Floinc.org&q=Glucose+%26+sugar"
        );
        assert_eq!(info_url(&switches, &json!({})), None);
    }
}
