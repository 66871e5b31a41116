//! A member's Summary: the record's allergies, conditions, medications, immunizations,
//! procedures, care team and encounters, each type from its FHIR resources (fed over HL7 v2 or
//! FHIR), newest first, shaped alike for the portal: a name, its code, a status, a date, and
//! what is particular to the type (an allergy's reactions, a medication's dosage, a care team's
//! members ...). Records entered in error are left out.

use serde_json::{Map, Value, json};

use crate::config::RecordSwitches;
use crate::domain::records::site;
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::store::Store;

/// The FHIR types behind each Summary type.
fn resource_types(kind: &str) -> &'static [&'static str] {
    match kind {
        "allergies" => &["AllergyIntolerance"],
        "conditions" => &["Condition"],
        "medications" => &["MedicationRequest", "MedicationStatement"],
        "immunizations" => &["Immunization"],
        "procedures" => &["Procedure"],
        "care-team" => &["CareTeam"],
        "encounters" => &["Encounter"],
        _ => &[],
    }
}

/// The patient's Summary: each of `kinds` (Summary type names) with its records.
pub fn of_patient(
    store: &dyn Store,
    patient_id: &str,
    kinds: &[String],
    switches: &RecordSwitches,
) -> Result<Map<String, Value>, SearchError> {
    let filters = vec![("patient".to_string(), patient_id.to_string())];
    let mut summary = Map::new();
    for kind in kinds {
        let mut items = vec![];
        for resource_type in resource_types(kind) {
            for resource in search::search(store, resource_type, &filters, Sort::default())? {
                if !entered_in_error(&resource) {
                    items.push(item(&resource, switches));
                }
            }
        }
        items.sort_by(|a, b| {
            b["date"]
                .as_str()
                .unwrap_or("")
                .cmp(a["date"].as_str().unwrap_or(""))
        });
        summary.insert(kind.clone(), Value::Array(items));
    }
    Ok(summary)
}

fn entered_in_error(resource: &Value) -> bool {
    resource["status"] == "entered-in-error"
        || resource["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
}

/// One record as the Summary shows it.
fn item(resource: &Value, switches: &RecordSwitches) -> Value {
    let first = |paths: &[&str]| -> Value {
        paths
            .iter()
            .map(|path| {
                path.split('.')
                    .fold(resource, |node, step| match step.parse::<usize>() {
                        Ok(index) => &node[index],
                        Err(_) => &node[step],
                    })
            })
            .find(|value| !value.is_null())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let concept = first(&["code", "vaccineCode", "medicationCodeableConcept", "type.0"]);
    let concept = if concept.is_null() { json!({}) } else { concept };
    let name = concept["text"]
        .as_str()
        .or(concept["coding"][0]["display"].as_str())
        .or(resource["name"].as_str())
        .or(resource["class"]["display"].as_str())
        .or(concept["coding"][0]["code"].as_str())
        .or(resource["class"]["code"].as_str());
    let status = resource["clinicalStatus"]["coding"][0]["code"]
        .as_str()
        .or(resource["status"].as_str());
    let date = first(&[
        "onsetDateTime",
        "recordedDate",
        "authoredOn",
        "effectiveDateTime",
        "effectivePeriod.start",
        "occurrenceDateTime",
        "performedDateTime",
        "performedPeriod.start",
        "period.start",
    ]);
    let mut item = json!({
        "id": resource["id"],
        "type": resource["resourceType"],
        "name": name,
        "code": concept["coding"][0]["code"],
        "system": concept["coding"][0]["system"],
        "status": status,
        "date": date,
    });
    let texts = |list: &Value, field: &str| -> Vec<Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let node = if field.is_empty() { entry } else { &entry[field] };
                node["text"]
                    .as_str()
                    .or(node["coding"][0]["display"].as_str())
                    .or(node["display"].as_str())
                    .map(|t| json!(t))
            })
            .collect()
    };
    let details: Vec<(&str, Value)> = match resource["resourceType"].as_str().unwrap_or("") {
        "AllergyIntolerance" => vec![
            ("criticality", resource["criticality"].clone()),
            ("category", resource["category"].clone()),
            (
                "reactions",
                json!(
                    resource["reaction"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|r| texts(&r["manifestation"], ""))
                        .collect::<Vec<_>>()
                ),
            ),
        ],
        "Condition" => vec![("category", json!(texts(&resource["category"], "")))],
        "MedicationRequest" | "MedicationStatement" => vec![
            ("dosage", first(&["dosageInstruction.0.text", "dosage.0.text"])),
            (
                "prescribed",
                json!(resource["resourceType"] == "MedicationRequest"),
            ),
        ],
        "CareTeam" => vec![(
            "members",
            json!(
                resource["participant"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| json!({
                        "name": p["member"]["display"],
                        "role": texts(&p["role"], "").into_iter().next(),
                    }))
                    .collect::<Vec<_>>()
            ),
        )],
        "Encounter" => vec![
            ("end", resource["period"]["end"].clone()),
            ("class", resource["class"]["code"].clone()),
            ("location", resource["location"][0]["location"]["display"].clone()),
        ],
        _ => vec![],
    };
    for (key, value) in details {
        if !value.is_null() {
            item[key] = value;
        }
    }
    if let Some(url) = site::info_url(switches, &concept) {
        item["info_url"] = json!(url);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allergy_shows_its_name_status_reactions_and_info_link() {
        let switches = RecordSwitches {
            info_buttons: true,
            education_link: "https://education.example/?q={name}".into(),
            ..RecordSwitches::default()
        };
        let allergy = json!({
            "resourceType": "AllergyIntolerance", "id": "a1",
            "clinicalStatus": { "coding": [{ "code": "active" }] },
            "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "91936005", "display": "Penicillin" }] },
            "criticality": "high",
            "recordedDate": "2024-02-10",
            "reaction": [{ "manifestation": [{ "text": "Rash" }, { "coding": [{ "display": "Hives" }] }] }]
        });
        let shown = item(&allergy, &switches);
        assert_eq!(shown["name"], "Penicillin");
        assert_eq!(shown["status"], "active");
        assert_eq!(shown["date"], "2024-02-10");
        assert_eq!(shown["reactions"], json!(["Rash", "Hives"]));
        assert_eq!(shown["info_url"], "https://education.example/?q=Penicillin");
    }
}
