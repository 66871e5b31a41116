//! ADT demographics to a FHIR R4 Patient change (A01, A04, A08, A28, A31 upsert; A40 merge; A47
//! identifier change), following the HL7 v2-to-FHIR mapping of PID, MRG and their data types.

use serde_json::{Map, Value, json};

use crate::domain::patients::PatientChange;
use crate::hl7::{Component, ErrLocation, ErrorCode, Message, Outcome, ParseError, Repetition};

/// The ADT trigger events this mapping handles.
pub const SUPPORTED_EVENTS: &[&str] = &["A01", "A04", "A08", "A28", "A31", "A40", "A47"];

/// Maps one ADT message to the store change it asks for, or says why it cannot.
pub fn map(message: &Message) -> Result<PatientChange, Outcome> {
    check_header(message)?;
    let event = message.trigger_event();
    let pid = message.segment("PID").ok_or_else(|| {
        Outcome::Error(error(
            ErrorCode::SegmentSequence,
            location("PID", 1, None),
            "the message has no PID segment".into(),
        ))
    })?;
    let patient = patient_from_pid(&pid);
    if patient["identifier"].as_array().is_none_or(|ids| ids.is_empty()) {
        return Err(Outcome::Error(error(
            ErrorCode::RequiredFieldMissing,
            location("PID", 1, Some(3)),
            "PID-3 (patient identifier list) has no identifier".into(),
        )));
    }
    match event.as_str() {
        "A40" | "A47" => {
            let mrg = message.segment("MRG").ok_or_else(|| {
                Outcome::Error(error(
                    ErrorCode::SegmentSequence,
                    location("MRG", 1, None),
                    format!("ADT^{event} needs an MRG segment"),
                ))
            })?;
            let previous: Vec<Value> = mrg
                .field(1)
                .repetitions()
                .filter_map(|r| identifier(&r))
                .collect();
            if previous.is_empty() {
                return Err(Outcome::Error(error(
                    ErrorCode::RequiredFieldMissing,
                    location("MRG", 1, Some(1)),
                    "MRG-1 (prior patient identifier list) has no identifier".into(),
                )));
            }
            if event == "A40" {
                Ok(PatientChange::Merge {
                    survivor: patient,
                    retired: previous,
                })
            } else {
                Ok(PatientChange::ChangeIdentifier { patient, previous })
            }
        }
        _ => Ok(PatientChange::Upsert { patient }),
    }
}

/// Message type, event and version this mapping accepts; anything else is rejected (AR).
fn check_header(message: &Message) -> Result<(), Outcome> {
    let message_type = message.message_type();
    if message_type != "ADT" {
        return Err(Outcome::Rejected(error(
            ErrorCode::UnsupportedMessageType,
            msh_location(9, 1),
            format!("message type `{message_type}` is not supported by this channel (ADT only)"),
        )));
    }
    let event = message.trigger_event();
    if !SUPPORTED_EVENTS.contains(&event.as_str()) {
        return Err(Outcome::Rejected(error(
            ErrorCode::UnsupportedEvent,
            msh_location(9, 2),
            format!(
                "ADT event `{event}` is not supported (supported: {})",
                SUPPORTED_EVENTS.join(", ")
            ),
        )));
    }
    let version = message.version();
    if !version.starts_with("2.") {
        return Err(Outcome::Rejected(error(
            ErrorCode::UnsupportedVersion,
            msh_location(12, 1),
            format!("HL7 version `{version}` is not supported (2.x only)"),
        )));
    }
    Ok(())
}

fn error(code: ErrorCode, location: Option<ErrLocation>, text: String) -> ParseError {
    ParseError { code, location, text }
}

fn location(segment: &str, sequence: u32, field: Option<u32>) -> Option<ErrLocation> {
    Some(ErrLocation {
        segment: segment.into(),
        sequence,
        field,
        repetition: None,
        component: None,
        subcomponent: None,
    })
}

fn msh_location(field: u32, component: u32) -> Option<ErrLocation> {
    Some(ErrLocation {
        segment: "MSH".into(),
        sequence: 1,
        field: Some(field),
        repetition: Some(1),
        component: Some(component),
        subcomponent: None,
    })
}

/// A FHIR Patient (no id, no meta: the store assigns those) from a PID segment.
fn patient_from_pid(pid: &crate::hl7::Segment<'_>) -> Value {
    let mut patient = Map::new();
    patient.insert("resourceType".into(), json!("Patient"));
    let identifiers: Vec<Value> = pid
        .field(3)
        .repetitions()
        .filter_map(|r| identifier(&r))
        .collect();
    patient.insert("identifier".into(), Value::Array(identifiers));
    patient.insert("active".into(), json!(true));
    put_array(
        &mut patient,
        "name",
        pid.field(5)
            .repetitions()
            .filter_map(|r| human_name(&r))
            .collect(),
    );
    let mut telecom: Vec<Value> = pid
        .field(13)
        .repetitions()
        .filter_map(|r| contact_point(&r, "home"))
        .collect();
    telecom.extend(
        pid.field(14)
            .repetitions()
            .filter_map(|r| contact_point(&r, "work")),
    );
    put_array(&mut patient, "telecom", telecom);
    if let Some(gender) = gender(&pid.field(8).text()) {
        patient.insert("gender".into(), json!(gender));
    }
    if let Some(date) = fhir_date(&pid.field(7).component(1).text()) {
        patient.insert("birthDate".into(), json!(date));
    }
    if pid.field(30).text() == "Y" {
        patient.insert("deceasedBoolean".into(), json!(true));
    }
    put_array(
        &mut patient,
        "address",
        pid.field(11).repetitions().filter_map(|r| address(&r)).collect(),
    );
    let language = pid.field(15).first();
    if !language.component(1).is_empty() {
        let mut concept = Map::new();
        concept.insert(
            "coding".into(),
            json!([{ "system": "urn:ietf:bcp:47", "code": language.component(1).text().to_lowercase() }]),
        );
        put_str(&mut concept, "text", language.component(2).text());
        patient.insert("communication".into(), json!([{ "language": concept }]));
    }
    // HL7's explicit null `""` asks for the element to be removed; an empty field leaves it be.
    let is_null = |n: usize| pid.field(n).raw() == "\"\"";
    for (field, key) in [
        (5, "name"),
        (7, "birthDate"),
        (8, "gender"),
        (11, "address"),
        (15, "communication"),
    ] {
        if is_null(field) {
            patient.insert(key.into(), Value::Null);
        }
    }
    if is_null(13) && (is_null(14) || pid.field(14).is_empty()) {
        patient.insert("telecom".into(), Value::Null);
    }
    Value::Object(patient)
}

/// CX -> Identifier: value, system from the assigning authority (CX-4), type from CX-5.
pub fn identifier(cx: &Repetition<'_>) -> Option<Value> {
    let value = cx.component(1).text();
    if value.is_empty() || value == "\"\"" {
        return None;
    }
    let mut id = Map::new();
    if let Some(system) = authority_system(&cx.component(4)) {
        id.insert("system".into(), json!(system));
    }
    id.insert("value".into(), json!(value));
    let id_type = cx.component(5).text();
    if !id_type.is_empty() {
        id.insert(
            "type".into(),
            json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": id_type }] }),
        );
    }
    let namespace = cx.component(4).subcomponent_text(1);
    if !namespace.is_empty() {
        id.insert("assigner".into(), json!({ "display": namespace }));
    }
    Some(Value::Object(id))
}

/// HD (namespace & universal id & universal id type) -> an identifier system URI.
fn authority_system(hd: &Component<'_>) -> Option<String> {
    let namespace = hd.subcomponent_text(1);
    let universal = hd.subcomponent_text(2);
    let universal_type = hd.subcomponent_text(3).to_ascii_uppercase();
    if !universal.is_empty() {
        return Some(match universal_type.as_str() {
            "URI" | "URL" => universal,
            _ if universal.starts_with("urn:") => universal,
            _ => format!("urn:oid:{universal}"),
        });
    }
    if namespace.is_empty() {
        None
    } else {
        Some(format!("urn:tributary:authority:{namespace}"))
    }
}

/// XPN -> HumanName.
fn human_name(xpn: &Repetition<'_>) -> Option<Value> {
    let mut name = Map::new();
    let use_code = match xpn.component(7).text().as_str() {
        "L" => Some("official"),
        "D" => Some("usual"),
        "M" => Some("maiden"),
        "N" => Some("nickname"),
        "A" => Some("anonymous"),
        "T" => Some("temp"),
        _ => None,
    };
    if let Some(use_code) = use_code {
        name.insert("use".into(), json!(use_code));
    }
    put_str(&mut name, "family", xpn.component(1).subcomponent_text(1));
    let given: Vec<Value> = [xpn.component(2).text(), xpn.component(3).text()]
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(Value::String)
        .collect();
    put_array(&mut name, "given", given);
    put_array(&mut name, "prefix", non_empty(xpn.component(5).text()));
    let mut suffix = non_empty(xpn.component(4).text());
    suffix.extend(non_empty(xpn.component(6).text()));
    put_array(&mut name, "suffix", suffix);
    let has_content = name.keys().any(|k| k != "use");
    has_content.then_some(Value::Object(name))
}

/// XTN -> ContactPoint: an email when XTN-2 is NET or XTN-4 holds one, a phone otherwise.
fn contact_point(xtn: &Repetition<'_>, default_use: &str) -> Option<Value> {
    let use_code = xtn.component(2).text();
    let equipment = xtn.component(3).text();
    let email = xtn.component(4).text();
    let legacy = xtn.component(1).text();
    let is_email = !email.is_empty() || use_code == "NET" || equipment == "Internet" || equipment == "X.400";
    if is_email {
        let address = if email.is_empty() { legacy } else { email };
        if address.is_empty() {
            return None;
        }
        return Some(json!({ "system": "email", "value": address }));
    }
    let structured: String = [
        xtn.component(5).text(),
        xtn.component(6).text(),
        xtn.component(7).text(),
    ]
    .concat();
    let mut number = if structured.is_empty() {
        legacy
    } else {
        let country = xtn.component(5).text();
        let area = xtn.component(6).text();
        let local = xtn.component(7).text();
        let mut n = String::new();
        if !country.is_empty() {
            n.push('+');
            n.push_str(&country);
            n.push(' ');
        }
        if !area.is_empty() {
            n.push_str(&area);
            n.push(' ');
        }
        n.push_str(&local);
        n
    };
    let extension = xtn.component(8).text();
    if !extension.is_empty() {
        number.push_str(" x");
        number.push_str(&extension);
    }
    if number.trim().is_empty() {
        return None;
    }
    let use_code = match (equipment.as_str(), use_code.as_str()) {
        ("CP", _) | ("BP", _) => "mobile",
        (_, "WPN") => "work",
        (_, "PRN") | (_, "ORN") | (_, "VHN") => "home",
        _ => default_use,
    };
    let system = match equipment.as_str() {
        "FX" => "fax",
        "BP" => "pager",
        _ => "phone",
    };
    Some(json!({ "system": system, "value": number.trim(), "use": use_code }))
}

/// XAD -> Address.
fn address(xad: &Repetition<'_>) -> Option<Value> {
    let mut address = Map::new();
    let use_code = match xad.component(7).text().as_str() {
        "H" | "P" => Some("home"),
        "B" | "O" => Some("work"),
        "C" => Some("temp"),
        "BA" => Some("billing"),
        "OLD" | "BDL" => Some("old"),
        _ => None,
    };
    if let Some(use_code) = use_code {
        address.insert("use".into(), json!(use_code));
    }
    let lines: Vec<Value> = [xad.component(1).subcomponent_text(1), xad.component(2).text()]
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(Value::String)
        .collect();
    put_array(&mut address, "line", lines);
    put_str(&mut address, "city", xad.component(3).text());
    put_str(&mut address, "state", xad.component(4).text());
    put_str(&mut address, "postalCode", xad.component(5).text());
    put_str(&mut address, "country", xad.component(6).text());
    let has_content = address.keys().any(|k| k != "use");
    has_content.then_some(Value::Object(address))
}

/// HL7 table 0001 administrative sex -> FHIR administrative-gender.
fn gender(code: &str) -> Option<&'static str> {
    match code {
        "M" => Some("male"),
        "F" => Some("female"),
        "O" | "A" => Some("other"),
        "U" | "N" => Some("unknown"),
        _ => None,
    }
}

/// HL7 TS/DT (YYYY[MM[DD[...]]]) -> FHIR date (YYYY, YYYY-MM or YYYY-MM-DD); None when malformed.
pub fn fhir_date(ts: &str) -> Option<String> {
    let digits: String = ts.chars().take_while(|c| c.is_ascii_digit()).collect();
    let (year, month, day) = match digits.len() {
        4 | 5 => (&digits[0..4], None, None),
        6 | 7 => (&digits[0..4], Some(&digits[4..6]), None),
        n if n >= 8 => (&digits[0..4], Some(&digits[4..6]), Some(&digits[6..8])),
        _ => return None,
    };
    let month_ok = month.is_none_or(|m| matches!(m.parse::<u32>(), Ok(1..=12)));
    let day_ok = day.is_none_or(|d| matches!(d.parse::<u32>(), Ok(1..=31)));
    if !month_ok || !day_ok {
        return None;
    }
    Some(match (month, day) {
        (Some(m), Some(d)) => format!("{year}-{m}-{d}"),
        (Some(m), None) => format!("{year}-{m}"),
        _ => year.to_string(),
    })
}

fn non_empty(text: String) -> Vec<Value> {
    if text.is_empty() {
        vec![]
    } else {
        vec![Value::String(text)]
    }
}

fn put_str(map: &mut Map<String, Value>, key: &str, value: String) {
    if !value.is_empty() {
        map.insert(key.into(), Value::String(value));
    }
}

fn put_array(map: &mut Map<String, Value>, key: &str, values: Vec<Value>) {
    if !values.is_empty() {
        map.insert(key.into(), Value::Array(values));
    }
}
