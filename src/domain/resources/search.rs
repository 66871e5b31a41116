//! Running a FHIR search: each parameter gives a set of ids from an index, the sets are
//! intersected (parameters AND), values separated by commas are united (OR), then the matches
//! are loaded and sorted. Paging is the caller's (it slices what this returns).
//!
//! Supported, per kind: token `code`, `system|code`, `|code`, `system|`; string (starts with,
//! case-insensitive; `:exact` for the whole value); date with the prefixes `eq ne gt lt ge le`
//! at any precision; reference `id`, `Type/id` or a full URL. `_id` and `_lastUpdated` on every
//! type; `_sort` by `_lastUpdated`, `-_lastUpdated`, `_id` or `-_id`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::params::{self, Kind};
use super::{Current, index_prefix, read};
use crate::domain::mpi::patients;
use crate::store::{Keyspace, Store, StoreError};

/// Most matches a search considers (a search matching more is cut, and says so).
pub const MAX_MATCHES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is wrong (unknown parameter, bad value): a 400.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How matches are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Id,
    IdDescending,
    LastUpdated,
    LastUpdatedDescending,
}

impl Sort {
    pub fn parse(text: &str) -> Result<Sort, SearchError> {
        match text {
            "_id" => Ok(Sort::Id),
            "-_id" => Ok(Sort::IdDescending),
            "_lastUpdated" => Ok(Sort::LastUpdated),
            "-_lastUpdated" => Ok(Sort::LastUpdatedDescending),
            other => Err(SearchError::Invalid(format!(
                "_sort `{other}` is not supported (_id, -_id, _lastUpdated, -_lastUpdated)"
            ))),
        }
    }
}

/// Whether `name` (with or without a `:modifier`) is a search parameter of `resource_type`
/// here. An unsupported modifier on a known parameter is still an error of the search itself.
pub fn is_supported(resource_type: &str, name: &str) -> bool {
    let name = name.split_once(':').map_or(name, |(name, _)| name);
    matches!(name, "_id" | "_lastUpdated")
        || (resource_type == "Patient" && matches!(name, "identifier" | "email" | "phone"))
        || params::find(resource_type, name).is_some()
}

/// Every resource of `resource_type` matching all `filters` (name, value), sorted.
pub fn search(
    store: &dyn Store,
    resource_type: &str,
    filters: &[(String, String)],
    sort: Sort,
) -> Result<Vec<Value>, SearchError> {
    let mut matched: Option<BTreeSet<String>> = None;
    for (name, value) in filters {
        let mut ids = BTreeSet::new();
        for one in value.split(',') {
            ids.extend(ids_for(store, resource_type, name, one)?);
        }
        matched = Some(match matched {
            None => ids,
            Some(before) => before.intersection(&ids).cloned().collect(),
        });
    }
    let ids = match matched {
        Some(ids) => ids,
        None => all_ids(store, resource_type)?,
    };
    let mut resources = Vec::with_capacity(ids.len());
    for id in ids.into_iter().take(MAX_MATCHES) {
        if let Some(Current::Live(resource)) = read(store, resource_type, &id)? {
            resources.push(resource);
        }
    }
    let updated = |r: &Value| r["meta"]["lastUpdated"].as_str().unwrap_or("").to_string();
    match sort {
        Sort::Id => {}
        Sort::IdDescending => resources.reverse(),
        Sort::LastUpdated => resources.sort_by_key(updated),
        Sort::LastUpdatedDescending => {
            resources.sort_by_key(updated);
            resources.reverse();
        }
    }
    Ok(resources)
}

fn all_ids(store: &dyn Store, resource_type: &str) -> Result<BTreeSet<String>, StoreError> {
    if resource_type == "Patient" {
        return Ok(store
            .scan_prefix(Keyspace::Patient, b"", MAX_MATCHES)?
            .into_iter()
            .map(|(key, _)| String::from_utf8_lossy(&key).into_owned())
            .collect());
    }
    let prefix = format!("{resource_type}/");
    Ok(store
        .scan_prefix(Keyspace::Resource, prefix.as_bytes(), MAX_MATCHES)?
        .into_iter()
        .map(|(key, _)| String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
        .collect())
}

/// The ids one parameter value matches.
fn ids_for(
    store: &dyn Store,
    resource_type: &str,
    name: &str,
    value: &str,
) -> Result<BTreeSet<String>, SearchError> {
    let (name, modifier) = match name.split_once(':') {
        Some((name, modifier)) => (name, Some(modifier)),
        None => (name, None),
    };
    if value.is_empty() {
        return Err(SearchError::Invalid(format!(
            "search parameter `{name}` has an empty value"
        )));
    }
    match (resource_type, name) {
        (_, "_id") => {
            let exists = matches!(read(store, resource_type, value)?, Some(Current::Live(_)));
            return Ok(exists.then(|| value.to_string()).into_iter().collect());
        }
        (_, "_lastUpdated") => return dates(store, resource_type, "_lastUpdated", value),
        ("Patient", "identifier") => {
            let (system, code) = match value.split_once('|') {
                Some((system, code)) => ((!system.is_empty()).then_some(system), code),
                None => (None, value),
            };
            return Ok(BTreeSet::from_iter(patients::ids_by_identifier(
                store,
                system,
                code,
                MAX_MATCHES,
            )?));
        }
        ("Patient", "email") => {
            return Ok(BTreeSet::from_iter(patients::ids_by_email(
                store,
                value,
                MAX_MATCHES,
            )?));
        }
        ("Patient", "phone") => {
            return Ok(BTreeSet::from_iter(patients::ids_by_phone(
                store,
                value,
                MAX_MATCHES,
            )?));
        }
        _ => {}
    }
    let param = params::find(resource_type, name).ok_or_else(|| {
        let known: Vec<&str> = params::of_type(resource_type).map(|p| p.name).collect();
        SearchError::Invalid(format!(
            "search parameter `{name}` is not supported for {resource_type} (supported: _id, _lastUpdated, {}{})",
            if resource_type == "Patient" { "identifier, email, phone, " } else { "" },
            known.join(", ")
        ))
    })?;
    if let Some(modifier) = modifier
        && !(param.kind == Kind::String && modifier == "exact")
    {
        return Err(SearchError::Invalid(format!(
            "modifier `:{modifier}` is not supported on `{name}`"
        )));
    }
    match param.kind {
        Kind::Token => {
            let key = match value.split_once('|') {
                Some((system, "")) => {
                    return scan_filtered(store, resource_type, name, "", |v| {
                        v.ends_with(&format!("\0{system}"))
                    });
                }
                Some((system, code)) => format!("{code}\0{system}\0"),
                None => format!("{value}\0"),
            };
            scan_filtered(store, resource_type, name, &key, |_| true)
        }
        Kind::String => {
            let wanted = params::normalize(value);
            if modifier == Some("exact") {
                scan_filtered(store, resource_type, name, &format!("{wanted}\0"), |_| true)
            } else {
                scan_filtered(store, resource_type, name, &wanted, |_| true)
            }
        }
        Kind::Date => dates(store, resource_type, name, value),
        Kind::Reference => {
            let reference = if value.contains('/') {
                params::reference_key(value)
            } else {
                format!("{}/{value}", param.target.unwrap_or(""))
            };
            scan_filtered(store, resource_type, name, &format!("{reference}\0"), |_| true)
        }
    }
}

/// Ids whose index value starts with `value_prefix` and passes `keep` (given the value).
fn scan_filtered(
    store: &dyn Store,
    resource_type: &str,
    param: &str,
    value_prefix: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<BTreeSet<String>, SearchError> {
    let prefix = index_prefix(resource_type, param);
    let mut start = prefix.clone();
    start.extend_from_slice(value_prefix.as_bytes());
    let mut ids = BTreeSet::new();
    for (key, _) in store.scan_prefix(Keyspace::SearchIndex, &start, MAX_MATCHES)? {
        let entry = &key[prefix.len()..];
        let Some(split) = entry.iter().rposition(|b| *b == 0) else {
            continue;
        };
        let value = String::from_utf8_lossy(&entry[..split]);
        if keep(&value) {
            ids.insert(String::from_utf8_lossy(&entry[split + 1..]).into_owned());
        }
    }
    Ok(ids)
}

/// Ids whose date value compares with `query` (`[prefix]date`) as the prefix says.
fn dates(
    store: &dyn Store,
    resource_type: &str,
    param: &str,
    query: &str,
) -> Result<BTreeSet<String>, SearchError> {
    let (op, date) = match query.get(..2) {
        Some(op @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le")) => (op, &query[2..]),
        _ => ("eq", query),
    };
    if !valid_date(date) {
        return Err(SearchError::Invalid(format!(
            "`{query}` is not a date search value like 1990-05-01, ge2024-01 or lt2025-03-01T10:00:00Z"
        )));
    }
    let date = date.replace(' ', "+");
    scan_filtered(store, resource_type, param, "", |value| {
        // A value is "in" the query's range when it starts with it (same day, month, ...).
        let within = value.starts_with(date.as_str()) || date.starts_with(value);
        match op {
            "eq" => within,
            "ne" => !within,
            "gt" => !within && value > date.as_str(),
            "lt" => !within && value < date.as_str(),
            "ge" => within || value > date.as_str(),
            "le" => within || value < date.as_str(),
            _ => false,
        }
    })
}

fn valid_date(date: &str) -> bool {
    let bytes = date.as_bytes();
    bytes.len() >= 4
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && date
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | 'T' | 'Z' | '+' | '.' | ' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Overlay, WriteSet};
    use proptest::prelude::*;
    use serde_json::json;

    fn store_with_tasks() -> MemoryStore {
        let store = MemoryStore::new();
        let mut tx = Overlay::new(&store);
        for (id, status, day) in [("t1", "ready", "2026-01-05"), ("t2", "completed", "2026-02-07")] {
            let task = json!({ "resourceType": "Task", "status": status, "intent": "order",
                "for": { "reference": "Patient/p1" }, "code": { "coding": [{ "system": "urn:x", "code": "intake" }] } });
            super::super::put(&mut tx, "Task", id, task, &format!("{day}T10:00:00.000Z")).unwrap();
        }
        let writes: WriteSet = tx.into_writes();
        store.commit(writes).unwrap();
        store
    }

    fn ids(found: Vec<Value>) -> Vec<String> {
        found
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn token_date_and_reference_values_match_as_documented() {
        let store = store_with_tasks();
        let find = |name: &str, value: &str| {
            ids(search(&store, "Task", &[(name.to_string(), value.to_string())], Sort::Id).unwrap())
        };
        assert_eq!(find("code", "intake"), ["t1", "t2"]);
        assert_eq!(find("code", "urn:x|intake"), ["t1", "t2"]);
        assert_eq!(find("code", "urn:y|intake"), Vec::<String>::new());
        assert_eq!(find("code", "urn:x|"), ["t1", "t2"]);
        assert_eq!(find("status", "ready,completed"), ["t1", "t2"]);
        assert_eq!(find("_lastUpdated", "ge2026-02"), ["t2"]);
        assert_eq!(find("_lastUpdated", "lt2026-02"), ["t1"]);
        assert_eq!(find("_lastUpdated", "2026-01"), ["t1"]);
        assert_eq!(find("_lastUpdated", "ne2026-01"), ["t2"]);
        assert_eq!(find("patient", "p1"), ["t1", "t2"]);
        assert_eq!(find("patient", "http://elsewhere/fhir/Patient/p1"), ["t1", "t2"]);
        assert_eq!(find("_id", "t2"), ["t2"]);
        assert!(matches!(
            search(&store, "Task", &[("colour".into(), "x".into())], Sort::Id),
            Err(SearchError::Invalid(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any parameter name and value is either a search or a clear 400, never a panic.
        #[test]
        fn any_query_is_answered_or_refused(name in "[_a-z:]{0,12}", value in "\\PC{0,24}") {
            static STORE: std::sync::LazyLock<MemoryStore> = std::sync::LazyLock::new(store_with_tasks);
            match search(&*STORE, "Task", &[(name, value)], Sort::Id) {
                Ok(_) | Err(SearchError::Invalid(_)) => {}
                Err(e) => prop_assert!(false, "store error: {e}"),
            }
        }
    }
}
