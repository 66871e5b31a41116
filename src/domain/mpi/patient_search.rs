//! Finding synced patients to enroll: by identifier (MRN), email, phone, name and birth date,
//! optionally only those registered at one facility; each with whether they are enrolled.
//!
//! Identifier, email and phone use the patient indexes of `patients`; name and birth date use
//! the FHIR search index (`SearchIndex`: `Patient \0 name \0 part \0 id`, `Patient \0 birthdate
//! \0 date \0 id`). One criterion drives the lookup, the others are checked on each candidate.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::accounts::members::{self, name_parts, phone_digits};
use crate::domain::mpi::patients;
use crate::domain::refusal::Refusal;
use crate::store::{Keyspace, Reader, Store, StoreError};

/// A patient by id, from any reader (the store, or a command's write set).
pub fn load(reader: &dyn Reader, id: &str) -> Result<Option<Value>, StoreError> {
    match reader.get(Keyspace::Patient, id.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::corrupt(format!("patient {id} is not valid JSON"), e)),
        None => Ok(None),
    }
}

/// What a patient search asks; every field given must match.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Criteria {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub birth_date: Option<String>,
    /// `system|value` or a value alone (any system).
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// Only patients with an identifier assigned by this facility (its namespace, OID or
    /// system), or managed by it.
    #[serde(default)]
    pub facility: Option<String>,
}

const MAX_CANDIDATES: usize = 5_000;

/// Patients matching every criterion given (merged-away records left out), at most `limit`.
pub fn search(store: &dyn Store, criteria: &Criteria, limit: usize) -> Result<Vec<Value>, Refusal> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (identifier, email, phone, birth, name) = (
        given(&criteria.identifier),
        given(&criteria.email),
        given(&criteria.phone),
        given(&criteria.birth_date),
        given(&criteria.name),
    );
    if let Some(birth) = &birth
        && chrono::NaiveDate::parse_from_str(birth, "%Y-%m-%d").is_err()
    {
        return Err(Refusal::invalid(format!(
            "birth_date `{birth}` is not YYYY-MM-DD"
        )));
    }
    let candidates: Vec<Value> = if let Some(identifier) = &identifier {
        let (system, value) = match identifier.split_once('|') {
            Some((s, v)) if !s.is_empty() => (Some(s), v),
            Some((_, v)) => (None, v),
            None => (None, identifier.as_str()),
        };
        patients::search_identifier(store, system, value, MAX_CANDIDATES)?
    } else if let Some(email) = &email {
        patients::search_email(store, email, MAX_CANDIDATES)?
    } else if let Some(phone) = &phone {
        patients::search_phone(store, phone, MAX_CANDIDATES)?
    } else if let Some(birth) = &birth {
        by_index(store, "birthdate", birth, true)?
    } else if let Some(name) = &name {
        let first = name_parts(name).into_iter().next().unwrap_or_default();
        by_index(store, "name", &first, false)?
    } else {
        return Err(Refusal::invalid(
            "give at least one of name, birth_date, identifier, email, phone",
        ));
    };
    let mut found = vec![];
    for patient in candidates {
        if patient["active"] == json!(false) {
            continue;
        }
        let ok = email.as_ref().is_none_or(|e| has_telecom(&patient, "email", e))
            && phone.as_ref().is_none_or(|p| has_telecom(&patient, "phone", p))
            && birth
                .as_ref()
                .is_none_or(|b| patient["birthDate"].as_str() == Some(b))
            && name.as_ref().is_none_or(|n| has_name(&patient, n))
            && criteria
                .facility
                .as_deref()
                .filter(|f| !f.trim().is_empty())
                .is_none_or(|f| at_facility(&patient, f));
        if ok {
            found.push(patient);
            if found.len() >= limit {
                break;
            }
        }
    }
    Ok(found)
}

fn by_index(store: &dyn Store, param: &str, term: &str, exact: bool) -> Result<Vec<Value>, StoreError> {
    let mut prefix = format!("Patient\0{param}\0{term}").into_bytes();
    if exact {
        prefix.push(0);
    }
    let mut out = vec![];
    let mut seen = std::collections::HashSet::new();
    for (key, _) in store.scan_prefix(Keyspace::SearchIndex, &prefix, MAX_CANDIDATES)? {
        let Some(zero) = key.iter().rposition(|b| *b == 0) else {
            continue;
        };
        let id = String::from_utf8_lossy(&key[zero + 1..]).into_owned();
        if seen.insert(id.clone())
            && let Some(patient) = load(store, &id)?
        {
            out.push(patient);
        }
    }
    Ok(out)
}

fn has_telecom(patient: &Value, system: &str, wanted: &str) -> bool {
    patient["telecom"].as_array().into_iter().flatten().any(|t| {
        t["system"] == system
            && t["value"].as_str().is_some_and(|v| {
                if system == "email" {
                    v.trim().eq_ignore_ascii_case(wanted.trim())
                } else {
                    let (have, want) = (phone_digits(v), phone_digits(wanted));
                    !want.is_empty() && (have.ends_with(&want) || want.ends_with(&have))
                }
            })
    })
}

/// Every part asked for starts some part of one of the patient's names.
fn has_name(patient: &Value, wanted: &str) -> bool {
    let mut parts = vec![];
    for name in patient["name"].as_array().into_iter().flatten() {
        if let Some(family) = name["family"].as_str() {
            parts.extend(name_parts(family));
        }
        for given in name["given"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            parts.extend(name_parts(given));
        }
    }
    name_parts(wanted)
        .iter()
        .all(|w| parts.iter().any(|p| p.starts_with(w.as_str())))
}

fn at_facility(patient: &Value, facility: &str) -> bool {
    let facility = facility.trim().to_lowercase();
    let same = |v: &Value| v.as_str().is_some_and(|s| s.trim().to_lowercase() == facility);
    let by_identifier = patient["identifier"].as_array().into_iter().flatten().any(|i| {
        same(&i["assigner"]["display"])
            || same(&i["system"])
            || i["system"]
                .as_str()
                .is_some_and(|s| s.strip_prefix("urn:oid:").is_some_and(|oid| oid == facility))
    });
    by_identifier || same(&patient["managingOrganization"]["display"])
}

/// A patient as the enrollment screens list it, with its enrollment and membership status.
pub fn summary(store: &dyn Store, patient: &Value) -> Result<Value, StoreError> {
    let id = patient["id"].as_str().unwrap_or_default();
    let member = members::load(store, id)?;
    let telecom = |system: &str| -> Vec<Value> {
        patient["telecom"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["system"] == system)
            .filter_map(|t| t["value"].as_str().map(|v| json!(v)))
            .collect()
    };
    Ok(json!({
        "id": id,
        "name": members::display_name(patient),
        "birth_date": patient["birthDate"],
        "gender": patient["gender"],
        "identifiers": patient["identifier"],
        "emails": telecom("email"),
        "phones": telecom("phone"),
        "enrolled": member.is_some(),
        "membership_status": member.map(|m| m.status.name()),
    }))
}
