//! The search parameters we serve, per resource type, and the values each takes from a resource.
//!
//! A parameter is a name, a kind (how values are normalized and matched) and the element paths
//! it reads (dotted, arrays flattened on the way). Values are what the index stores:
//! - token: `code \0 system` (an Identifier's value and system, a Coding's code and system, a
//!   plain code with an empty system), so `code` alone is a key prefix and `system|code` a key;
//! - string: each name part, lowercased (matching is "starts with", as FHIR's default);
//! - date: the date or dateTime as written (compared as text, precision-aware);
//! - reference: `Type/id` (a base URL before it is dropped).

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Token,
    String,
    Date,
    Reference,
}

#[derive(Debug)]
pub struct Param {
    pub resource: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    pub paths: &'static [&'static str],
    /// For reference parameters: the resource type they point to (`patient` -> `Patient`).
    pub target: Option<&'static str>,
}

const fn p(resource: &'static str, name: &'static str, kind: Kind, paths: &'static [&'static str]) -> Param {
    Param {
        resource,
        name,
        kind,
        paths,
        target: None,
    }
}

const fn patient_ref(resource: &'static str, paths: &'static [&'static str]) -> Param {
    Param {
        resource,
        name: "patient",
        kind: Kind::Reference,
        paths,
        target: Some("Patient"),
    }
}

/// Every parameter besides `_id` and `_lastUpdated`, which every type has, and Patient's
/// `identifier`, `email` and `phone`, which `domain::patients` indexes itself.
pub const PARAMS: &[Param] = &[
    p("Patient", "name", Kind::String, &["name"]),
    p("Patient", "family", Kind::String, &["name.family"]),
    p("Patient", "given", Kind::String, &["name.given"]),
    p("Patient", "birthdate", Kind::Date, &["birthDate"]),
    p("Patient", "gender", Kind::Token, &["gender"]),
    patient_ref("RelatedPerson", &["patient"]),
    p("RelatedPerson", "identifier", Kind::Token, &["identifier"]),
    p("RelatedPerson", "name", Kind::String, &["name"]),
    patient_ref("Task", &["for"]),
    p("Task", "status", Kind::Token, &["status"]),
    p("Task", "owner", Kind::Reference, &["owner"]),
    p("Task", "identifier", Kind::Token, &["identifier"]),
    p("Task", "code", Kind::Token, &["code"]),
    patient_ref("Appointment", &["participant.actor"]),
    p("Appointment", "date", Kind::Date, &["start"]),
    p("Appointment", "status", Kind::Token, &["status"]),
    p("Appointment", "identifier", Kind::Token, &["identifier"]),
    p(
        "Appointment",
        "appointment-type",
        Kind::Token,
        &["appointmentType"],
    ),
    p("Appointment", "service-type", Kind::Token, &["serviceType"]),
    p("Questionnaire", "url", Kind::String, &["url"]),
    p("Questionnaire", "name", Kind::String, &["name"]),
    p("Questionnaire", "status", Kind::Token, &["status"]),
    patient_ref("QuestionnaireResponse", &["subject"]),
    p(
        "QuestionnaireResponse",
        "questionnaire",
        Kind::String,
        &["questionnaire"],
    ),
    p("QuestionnaireResponse", "status", Kind::Token, &["status"]),
    patient_ref("Communication", &["subject"]),
    p("Communication", "status", Kind::Token, &["status"]),
    p("Communication", "recipient", Kind::Reference, &["recipient"]),
    p("Communication", "sender", Kind::Reference, &["sender"]),
    p("Communication", "category", Kind::Token, &["category"]),
    p("Communication", "sent", Kind::Date, &["sent"]),
    patient_ref("CommunicationRequest", &["subject"]),
    p("CommunicationRequest", "status", Kind::Token, &["status"]),
    patient_ref("Consent", &["patient"]),
    p("Consent", "status", Kind::Token, &["status"]),
    patient_ref("DocumentReference", &["subject"]),
    p("DocumentReference", "status", Kind::Token, &["status"]),
    p("DocumentReference", "type", Kind::Token, &["type"]),
    p("DocumentReference", "category", Kind::Token, &["category"]),
    p("DocumentReference", "date", Kind::Date, &["date"]),
    p(
        "DocumentReference",
        "identifier",
        Kind::Token,
        &["masterIdentifier", "identifier"],
    ),
    patient_ref("Observation", &["subject"]),
    p("Observation", "code", Kind::Token, &["code"]),
    p("Observation", "status", Kind::Token, &["status"]),
    p("Observation", "category", Kind::Token, &["category"]),
    p(
        "Observation",
        "date",
        Kind::Date,
        &["effectiveDateTime", "effectivePeriod.start", "effectiveInstant"],
    ),
    patient_ref("DiagnosticReport", &["subject"]),
    p("DiagnosticReport", "code", Kind::Token, &["code"]),
    p("DiagnosticReport", "status", Kind::Token, &["status"]),
    p("DiagnosticReport", "category", Kind::Token, &["category"]),
    p(
        "DiagnosticReport",
        "date",
        Kind::Date,
        &["effectiveDateTime", "effectivePeriod.start"],
    ),
    patient_ref("CarePlan", &["subject"]),
    p("CarePlan", "status", Kind::Token, &["status"]),
    p("CarePlan", "category", Kind::Token, &["category"]),
    p("CarePlan", "date", Kind::Date, &["period.start"]),
    // The Summary types, with FHIR R4's names for their parameters.
    patient_ref("AllergyIntolerance", &["patient"]),
    p("AllergyIntolerance", "code", Kind::Token, &["code"]),
    p(
        "AllergyIntolerance",
        "clinical-status",
        Kind::Token,
        &["clinicalStatus"],
    ),
    p("AllergyIntolerance", "category", Kind::Token, &["category"]),
    p("AllergyIntolerance", "criticality", Kind::Token, &["criticality"]),
    p("AllergyIntolerance", "date", Kind::Date, &["recordedDate"]),
    p("AllergyIntolerance", "identifier", Kind::Token, &["identifier"]),
    patient_ref("Condition", &["subject"]),
    p("Condition", "code", Kind::Token, &["code"]),
    p("Condition", "clinical-status", Kind::Token, &["clinicalStatus"]),
    p("Condition", "category", Kind::Token, &["category"]),
    p(
        "Condition",
        "onset-date",
        Kind::Date,
        &["onsetDateTime", "onsetPeriod.start"],
    ),
    p("Condition", "recorded-date", Kind::Date, &["recordedDate"]),
    p("Condition", "identifier", Kind::Token, &["identifier"]),
    patient_ref("Procedure", &["subject"]),
    p("Procedure", "code", Kind::Token, &["code"]),
    p("Procedure", "status", Kind::Token, &["status"]),
    p("Procedure", "category", Kind::Token, &["category"]),
    p(
        "Procedure",
        "date",
        Kind::Date,
        &["performedDateTime", "performedPeriod.start"],
    ),
    p("Procedure", "identifier", Kind::Token, &["identifier"]),
    patient_ref("Immunization", &["patient"]),
    p("Immunization", "vaccine-code", Kind::Token, &["vaccineCode"]),
    p("Immunization", "status", Kind::Token, &["status"]),
    p("Immunization", "date", Kind::Date, &["occurrenceDateTime"]),
    p("Immunization", "identifier", Kind::Token, &["identifier"]),
    patient_ref("MedicationRequest", &["subject"]),
    p(
        "MedicationRequest",
        "code",
        Kind::Token,
        &["medicationCodeableConcept"],
    ),
    p("MedicationRequest", "status", Kind::Token, &["status"]),
    p("MedicationRequest", "intent", Kind::Token, &["intent"]),
    p("MedicationRequest", "category", Kind::Token, &["category"]),
    p("MedicationRequest", "authoredon", Kind::Date, &["authoredOn"]),
    p("MedicationRequest", "identifier", Kind::Token, &["identifier"]),
    patient_ref("MedicationStatement", &["subject"]),
    p(
        "MedicationStatement",
        "code",
        Kind::Token,
        &["medicationCodeableConcept"],
    ),
    p("MedicationStatement", "status", Kind::Token, &["status"]),
    p("MedicationStatement", "category", Kind::Token, &["category"]),
    p(
        "MedicationStatement",
        "effective",
        Kind::Date,
        &["effectiveDateTime", "effectivePeriod.start"],
    ),
    p("MedicationStatement", "identifier", Kind::Token, &["identifier"]),
    patient_ref("CareTeam", &["subject"]),
    p("CareTeam", "status", Kind::Token, &["status"]),
    p("CareTeam", "category", Kind::Token, &["category"]),
    p("CareTeam", "date", Kind::Date, &["period.start"]),
    p(
        "CareTeam",
        "participant",
        Kind::Reference,
        &["participant.member"],
    ),
    p("CareTeam", "identifier", Kind::Token, &["identifier"]),
    patient_ref("Encounter", &["subject"]),
    p("Encounter", "status", Kind::Token, &["status"]),
    p("Encounter", "class", Kind::Token, &["class"]),
    p("Encounter", "type", Kind::Token, &["type"]),
    p("Encounter", "date", Kind::Date, &["period.start"]),
    p("Encounter", "identifier", Kind::Token, &["identifier"]),
    patient_ref("Invoice", &["subject"]),
    p("Invoice", "status", Kind::Token, &["status"]),
    p("Invoice", "date", Kind::Date, &["date"]),
    p("Invoice", "identifier", Kind::Token, &["identifier"]),
    // The provider directory members search to write to (issue 17).
    p("Practitioner", "name", Kind::String, &["name"]),
    p("Practitioner", "family", Kind::String, &["name.family"]),
    p("Practitioner", "given", Kind::String, &["name.given"]),
    p("Practitioner", "identifier", Kind::Token, &["identifier"]),
    p("Practitioner", "active", Kind::Token, &["active"]),
    p(
        "PractitionerRole",
        "practitioner",
        Kind::Reference,
        &["practitioner"],
    ),
    p(
        "PractitionerRole",
        "organization",
        Kind::Reference,
        &["organization"],
    ),
    p("PractitionerRole", "specialty", Kind::Token, &["specialty"]),
    p("PractitionerRole", "role", Kind::Token, &["code"]),
    p("PractitionerRole", "identifier", Kind::Token, &["identifier"]),
    p("PractitionerRole", "active", Kind::Token, &["active"]),
    p("Organization", "name", Kind::String, &["name", "alias"]),
    p("Organization", "identifier", Kind::Token, &["identifier"]),
    p("Organization", "type", Kind::Token, &["type"]),
    p("Organization", "active", Kind::Token, &["active"]),
    p("Organization", "partof", Kind::Reference, &["partOf"]),
];

/// The resource types the endpoint serves.
pub const TYPES: [&str; 26] = [
    "Patient",
    "RelatedPerson",
    "Task",
    "Questionnaire",
    "QuestionnaireResponse",
    "Appointment",
    "Communication",
    "CommunicationRequest",
    "Consent",
    "DocumentReference",
    "Observation",
    "DiagnosticReport",
    "CarePlan",
    "AllergyIntolerance",
    "Condition",
    "Procedure",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "CareTeam",
    "Encounter",
    "Invoice",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    // The files a Communication's attachment points at (`contentAttachment.url`).
    "Binary",
];

pub fn is_served(resource_type: &str) -> bool {
    TYPES.contains(&resource_type)
}

pub fn find(resource_type: &str, name: &str) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|p| p.resource == resource_type && p.name == name)
}

pub fn of_type(resource_type: &str) -> impl Iterator<Item = &'static Param> {
    PARAMS.iter().filter(move |p| p.resource == resource_type)
}

/// The index values `param` takes from `resource`.
pub fn values(param: &Param, resource: &Value) -> Vec<String> {
    let mut found = vec![];
    for path in param.paths {
        let mut nodes = vec![resource];
        for step in path.split('.') {
            nodes = nodes
                .into_iter()
                .filter_map(|n| n.get(step))
                .flat_map(|v| match v {
                    Value::Array(items) => items.iter().collect::<Vec<_>>(),
                    other => vec![other],
                })
                .collect();
        }
        for node in nodes {
            extract(param, node, &mut found);
        }
    }
    found.sort();
    found.dedup();
    found
}

fn extract(param: &Param, node: &Value, out: &mut Vec<String>) {
    match param.kind {
        Kind::Token => match node {
            Value::String(code) => out.push(token(code, "")),
            Value::Bool(flag) => out.push(token(&flag.to_string(), "")),
            Value::Object(object) => {
                if let Some(value) = object.get("value").and_then(Value::as_str) {
                    out.push(token(
                        value,
                        object.get("system").and_then(Value::as_str).unwrap_or(""),
                    ));
                }
                if let Some(code) = object.get("code").and_then(Value::as_str) {
                    out.push(token(
                        code,
                        object.get("system").and_then(Value::as_str).unwrap_or(""),
                    ));
                }
                for coding in object
                    .get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(code) = coding.get("code").and_then(Value::as_str) {
                        out.push(token(
                            code,
                            coding.get("system").and_then(Value::as_str).unwrap_or(""),
                        ));
                    }
                }
            }
            _ => {}
        },
        Kind::String => match node {
            Value::String(text) => out.push(normalize(text)),
            Value::Object(name) => {
                for part in ["family", "text"] {
                    if let Some(text) = name.get(part).and_then(Value::as_str) {
                        out.push(normalize(text));
                    }
                }
                for part in ["given", "prefix", "suffix"] {
                    for text in name.get(part).and_then(Value::as_array).into_iter().flatten() {
                        if let Some(text) = text.as_str() {
                            out.push(normalize(text));
                        }
                    }
                }
            }
            _ => {}
        },
        Kind::Date => {
            if let Some(date) = node.as_str() {
                out.push(date.to_string());
            }
        }
        Kind::Reference => {
            if let Some(reference) = node.get("reference").and_then(Value::as_str) {
                out.push(reference_key(reference));
            }
        }
    }
}

fn token(code: &str, system: &str) -> String {
    format!("{code}\0{system}")
}

/// Lowercase, for case-insensitive "starts with" matching.
pub fn normalize(text: &str) -> String {
    text.trim().to_lowercase()
}

/// `http://host/fhir/Patient/1` or `Patient/1` -> `Patient/1`.
pub fn reference_key(reference: &str) -> String {
    let parts: Vec<&str> = reference.trim_end_matches('/').rsplitn(3, '/').collect();
    match parts.as_slice() {
        [id, resource_type, ..] => format!("{resource_type}/{id}"),
        _ => reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_taken_and_normalized_per_kind() {
        let patient = json!({
            "resourceType": "Patient",
            "name": [{ "family": "Nguyen", "given": ["Linh", "Thi"] }],
            "gender": "female",
            "birthDate": "1992-09-05"
        });
        assert_eq!(
            values(find("Patient", "given").unwrap(), &patient),
            vec!["linh", "thi"]
        );
        assert_eq!(
            values(find("Patient", "name").unwrap(), &patient),
            vec!["linh", "nguyen", "thi"]
        );
        assert_eq!(
            values(find("Patient", "gender").unwrap(), &patient),
            vec!["female\0"]
        );
        let task = json!({ "for": { "reference": "http://h/fhir/Patient/p1" }, "status": "ready" });
        assert_eq!(
            values(find("Task", "patient").unwrap(), &task),
            vec!["Patient/p1"]
        );
        let appointment = json!({ "participant": [{ "actor": { "reference": "Patient/p1" } }, { "actor": { "reference": "Practitioner/x" } }] });
        assert_eq!(
            values(find("Appointment", "patient").unwrap(), &appointment),
            vec!["Patient/p1", "Practitioner/x"]
        );
    }
}
