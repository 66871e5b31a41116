//! A Patient a FHIR client posts or puts is kept as it was sent: what the feed mapping derives
//! from it (identity and search: identifiers, names, telecoms, addresses ...) is merged into the
//! sent resource instead of replacing it, so that every element the client sent reads back.
//!
//! The feed mapping keeps only what it maps (a UCR Patient and an ADT about the same person must
//! land on the same record), so its output alone loses extensions, contacts, photos, the
//! narrative, `identifier.use`/`period`, `address.district` and every other element it has no
//! line for. A FHIR server keeps what it accepts, so the rule here is:
//!
//! - every element the client sent stays, in its place;
//! - where the mapping says something about an element the client sent, what it says wins (the
//!   form the ADT feed writes: a phone number with its groups normalised), and what it adds is
//!   added (an identifier's system made from its assigner);
//! - an element of a list (an identifier, a name, a telecom) is matched to the sent element it
//!   came from by the values they share: the sent one keeps what the mapping does not produce;
//! - the mapping's default `active: true` is not added to a Patient that did not say; its
//!   `active: false` (a record replaced by another) is, as the store takes such a record out of
//!   its indexes.

use serde_json::{Map, Value};

/// `sent` (as the client sent it) with `derived` (the feed mapping's output for it) merged in.
pub(crate) fn merge(sent: &Value, derived: &Value) -> Value {
    let (Some(sent_fields), Some(derived_fields)) = (sent.as_object(), derived.as_object()) else {
        return derived.clone();
    };
    let mut merged = sent_fields.clone();
    for (key, value) in derived_fields {
        match merged.get_mut(key) {
            Some(existing) => *existing = merge_value(existing, value),
            // The mapping's default says nothing the client did not: an absent `active` is true.
            None if key == "active" && *value == Value::Bool(true) => {}
            None => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(merged)
}

/// One element: objects merge key by key, lists element by element, a value the mapping gives
/// replaces the sent one.
fn merge_value(sent: &Value, derived: &Value) -> Value {
    match (sent, derived) {
        (Value::Object(s), Value::Object(d)) => {
            let mut merged: Map<String, Value> = s.clone();
            for (key, value) in d {
                let next = match merged.get(key) {
                    Some(existing) => merge_value(existing, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), next);
            }
            Value::Object(merged)
        }
        (Value::Array(s), Value::Array(d)) if d.iter().all(Value::is_object) => {
            Value::Array(merge_list(s, d))
        }
        _ => derived.clone(),
    }
}

/// A list of elements: each derived element goes into the sent element it came from (of those
/// not yet taken, the one that shares the most values with it, the first on a tie), or is added
/// at the end when none matches; sent elements the
/// mapping left out (a telecom without a value, an old one) stay where they were.
fn merge_list(sent: &[Value], derived: &[Value]) -> Vec<Value> {
    let mut merged = sent.to_vec();
    let mut taken = vec![false; sent.len()];
    for element in derived {
        let mut found: Option<(usize, usize)> = None;
        for (i, candidate) in sent.iter().enumerate() {
            if taken[i] {
                continue;
            }
            if let Some(shared) = shared_values(candidate, element)
                && found.is_none_or(|(_, best)| shared > best)
            {
                found = Some((i, shared));
            }
        }
        let found = found.map(|(i, _)| i);
        match found {
            Some(i) => {
                taken[i] = true;
                merged[i] = merge_value(&sent[i], element);
            }
            None if element.as_object().is_some_and(|o| !o.is_empty()) => merged.push(element.clone()),
            None => {}
        }
    }
    merged
}

/// How many values `derived` shares with `sent`, when it may have come from it: every value they
/// both have agrees (ignoring case, spaces and punctuation, which the mapping normalises), and
/// there is at least one.
fn shared_values(sent: &Value, derived: &Value) -> Option<usize> {
    let mut agreed = 0;
    (agrees(sent, derived, &mut agreed) && agreed > 0).then_some(agreed)
}

fn agrees(sent: &Value, derived: &Value, agreed: &mut usize) -> bool {
    match (sent, derived) {
        (Value::Object(s), Value::Object(d)) => d.iter().all(|(key, value)| match s.get(key) {
            Some(other) => agrees(other, value, agreed),
            None => true,
        }),
        // A list of elements (codings): each counts with the values of the sent element it
        // shares the most with; one that matches none is added by the merge, not a mismatch.
        (Value::Array(s), Value::Array(d)) if d.iter().any(Value::is_object) => {
            *agreed += d
                .iter()
                .filter_map(|element| s.iter().filter_map(|other| shared_values(other, element)).max())
                .sum::<usize>();
            true
        }
        (Value::Array(s), Value::Array(d)) => {
            let same = s.len() == d.len() && s.iter().zip(d).all(|(a, b)| same_text(a, b));
            *agreed += usize::from(same);
            same
        }
        (a, b) => {
            let same = same_text(a, b);
            *agreed += usize::from(same);
            same
        }
    }
}

/// Two scalars as the same text: letters and digits only, lower case.
fn same_text(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| -> String {
        let raw = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        raw.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    text(a) == text(b)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn what_the_mapping_has_no_line_for_is_kept_and_what_it_derives_is_added() {
        let sent = json!({
            "resourceType": "Patient",
            "extension": [{ "url": "http://example.org/x", "valueString": "kept" }],
            "identifier": [
                { "use": "official", "value": "1234", "assigner": { "display": "Council" }, "period": { "start": "2010" } },
                { "system": "urn:x", "type": { "coding": [{ "system": "urn:other", "code": "A" }, { "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record" }] }, "value": "9" }
            ],
            "telecom": [{ "use": "home" }, { "system": "phone", "value": "+1-617-555-1234", "use": "home", "rank": 1 }],
            "address": [{ "line": ["1 Main St"], "city": "Boston", "district": "Suffolk" }],
            "_birthDate": { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1990-01-01T10:00:00Z" }] },
            "birthDate": "1990-01-01",
        });
        let derived = json!({
            "active": true,
            "identifier": [
                { "system": "urn:tributary:authority:Council", "value": "1234", "assigner": { "display": "Council" } },
                { "system": "urn:x", "value": "9", "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR" }] } }
            ],
            "telecom": [{ "system": "phone", "value": "+1 617 5551234", "use": "home" }],
            "address": [{ "line": ["1 Main St"], "city": "Boston" }],
            "birthDate": "1990-01-01",
        });
        let merged = merge(&sent, &derived);
        assert_eq!(merged["extension"], sent["extension"]);
        assert_eq!(merged["_birthDate"], sent["_birthDate"]);
        assert!(merged.get("active").is_none(), "no default added: {merged}");
        assert_eq!(
            merged["identifier"][0],
            json!({ "use": "official", "system": "urn:tributary:authority:Council", "value": "1234", "assigner": { "display": "Council" }, "period": { "start": "2010" } })
        );
        // The v2-0203 coding went into the coding it came from, not over the first one.
        assert_eq!(merged["identifier"][1]["type"], sent["identifier"][1]["type"]);
        assert_eq!(merged["telecom"][0], json!({ "use": "home" }));
        assert_eq!(
            merged["telecom"][1],
            json!({ "system": "phone", "value": "+1 617 5551234", "use": "home", "rank": 1 })
        );
        assert_eq!(merged["address"][0]["district"], "Suffolk");
        assert_eq!(merged["identifier"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_replaced_record_is_inactive_whatever_it_said() {
        let sent = json!({ "active": true, "link": [{ "type": "replaced-by", "other": { "reference": "Patient/a" } }] });
        let derived = json!({ "active": false, "link": [{ "type": "replaced-by", "other": { "reference": "Patient/a" } }] });
        let merged = merge(&sent, &derived);
        assert_eq!(merged["active"], false);
        assert_eq!(merged["link"], sent["link"]);
        assert_eq!(merge(&json!({}), &derived)["active"], false);
    }

    #[test]
    fn an_element_that_shares_no_value_is_not_taken_for_another() {
        let sent = json!({ "name": [{ "family": "Costa", "period": { "start": "2001" } }, { "family": "Lima", "use": "maiden" }] });
        let derived = json!({ "name": [{ "family": "Costa" }, { "family": "Lima", "use": "maiden" }] });
        assert_eq!(merge(&sent, &derived), sent);
        // A derived element nothing matches is added, not lost.
        let derived = json!({ "name": [{ "family": "Silva" }] });
        assert_eq!(merge(&sent, &derived)["name"].as_array().unwrap().len(), 3);
    }
}
