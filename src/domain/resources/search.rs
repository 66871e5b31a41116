//! Running a FHIR search: each parameter gives a set of ids from an index, the sets are
//! intersected (parameters AND), values separated by commas are united (OR), then the matches
//! are loaded and sorted. Paging is the caller's (it slices what this returns).
//!
//! Supported, per kind: token `code`, `system|code`, `|code`, `system|`; string (starts with,
//! case-insensitive; `:exact` for the whole value); date with the prefixes `eq ne gt lt ge le`
//! at any precision; reference `id`, `Type/id` or a full URL. `_id` and `_lastUpdated` on every
//! type; `_sort` by `_lastUpdated`, `-_lastUpdated`, `_id` or `-_id`.
//!
//! `_lastUpdated` is indexed by day (see `index_keys`): its index gives the ids whose day could
//! match, and the loaded resources' own `meta.lastUpdated` are then compared exactly, the way
//! every other date is compared in its index.

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
    // Each `_lastUpdated` filter's values (any of which may match), for the exact comparison.
    let mut updated_filters: Vec<Vec<DateQuery>> = vec![];
    for (name, value) in filters {
        let mut ids = BTreeSet::new();
        for one in value.split(',') {
            ids.extend(ids_for(store, resource_type, name, one)?);
        }
        if name.split_once(':').map_or(name.as_str(), |(name, _)| name) == "_lastUpdated" {
            let any = value.split(',').map(DateQuery::parse).collect::<Result<_, _>>()?;
            updated_filters.push(any);
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
    let mut resources = Vec::with_capacity(ids.len().min(MAX_MATCHES));
    // The ids that would match had `_lastUpdated` been indexed by instant count to the limit;
    // the candidates its day index adds and the exact comparison drops do not.
    let mut taken = 0;
    for id in ids {
        if taken == MAX_MATCHES {
            break;
        }
        if let Some(Current::Live(resource)) = read(store, resource_type, &id)? {
            let updated = resource["meta"]["lastUpdated"].as_str();
            let kept = updated_filters
                .iter()
                .all(|any| updated.is_some_and(|updated| any.iter().any(|q| q.matches(updated))));
            if !kept {
                continue;
            }
            resources.push(resource);
        }
        taken += 1;
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
        (_, "_lastUpdated") => {
            // Days, each kept when some instant of it could match: `search` compares exactly.
            let query = DateQuery::parse(value)?;
            return scan_filtered(store, resource_type, "_lastUpdated", "", |day| {
                query.may_match_within(day)
            });
        }
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
        Kind::Date => {
            let query = DateQuery::parse(value)?;
            scan_filtered(store, resource_type, name, "", |value| query.matches(value))
        }
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

/// A date search value (`[prefix]date`), compared with stored values as text, precision-aware.
struct DateQuery {
    prefix: Prefix,
    date: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

impl DateQuery {
    fn parse(query: &str) -> Result<DateQuery, SearchError> {
        let (prefix, date) = match query.get(..2) {
            Some("eq") => (Prefix::Eq, &query[2..]),
            Some("ne") => (Prefix::Ne, &query[2..]),
            Some("gt") => (Prefix::Gt, &query[2..]),
            Some("lt") => (Prefix::Lt, &query[2..]),
            Some("ge") => (Prefix::Ge, &query[2..]),
            Some("le") => (Prefix::Le, &query[2..]),
            _ => (Prefix::Eq, query),
        };
        if !valid_date(date) {
            return Err(SearchError::Invalid(format!(
                "`{query}` is not a date search value like 1990-05-01, ge2024-01 or lt2025-03-01T10:00:00Z"
            )));
        }
        // A `+` of a time zone offset arrives as a space when the query string was not encoded.
        Ok(DateQuery {
            prefix,
            date: date.replace(' ', "+"),
        })
    }

    /// Whether the stored `value` matches.
    fn matches(&self, value: &str) -> bool {
        let date = self.date.as_str();
        // A value is "in" the query's range when it starts with it (same day, month, ...).
        let within = value.starts_with(date) || date.starts_with(value);
        match self.prefix {
            Prefix::Eq => within,
            Prefix::Ne => !within,
            Prefix::Gt => !within && value > date,
            Prefix::Lt => !within && value < date,
            Prefix::Ge => within || value > date,
            Prefix::Le => within || value < date,
        }
    }

    /// Whether some value starting with `start` (a day of `_lastUpdated`'s index, or a whole
    /// instant as releases before the day index wrote it) could match; never false when one
    /// does. When `start` and the query differ at a character both have, every such value
    /// differs from the query there too, so none is "within" it and all compare with it as
    /// `start` does; when the query starts with `start` and is no longer, every such value is
    /// within it. Only when `start` is a strict beginning of the query (a query finer than a
    /// day) can such values answer differently, so they all stay candidates.
    fn may_match_within(&self, start: &str) -> bool {
        (self.date.len() > start.len() && self.date.starts_with(start)) || self.matches(start)
    }
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
    use crate::store::{MemoryStore, Overlay, Reader, WriteSet};
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

    /// Writes a Task as of `at` and commits it; returns the writes.
    fn put_task(store: &MemoryStore, id: &str, status: &str, at: &str) -> WriteSet {
        let mut tx = Overlay::new(store);
        let task = json!({ "resourceType": "Task", "status": status, "intent": "order",
            "for": { "reference": "Patient/p1" } });
        super::super::put(&mut tx, "Task", id, task, at).unwrap();
        let writes = tx.into_writes();
        store.commit(writes.clone()).unwrap();
        writes
    }

    /// The search index writes among `writes`: key and whether it is put (or deleted).
    fn index_writes(writes: &WriteSet) -> Vec<(Vec<u8>, bool)> {
        writes
            .ops
            .iter()
            .filter(|(keyspace, _, _)| *keyspace == Keyspace::SearchIndex)
            .map(|(_, key, value)| (key.clone(), value.is_some()))
            .collect()
    }

    fn updated_key(resource_type: &str, value: &str, id: &str) -> Vec<u8> {
        super::super::index_key(resource_type, "_lastUpdated", value, id)
    }

    /// Every `_lastUpdated` index entry of `resource_type`, in key order.
    fn updated_entries(store: &MemoryStore, resource_type: &str) -> Vec<Vec<u8>> {
        let prefix = index_prefix(resource_type, "_lastUpdated");
        store
            .scan_prefix(Keyspace::SearchIndex, &prefix, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    /// Puts `id`'s `_lastUpdated` entry back in the form releases before the day index wrote:
    /// the whole instant.
    fn to_instant_entry(store: &MemoryStore, resource_type: &str, id: &str, at: &str) {
        let mut tx = Overlay::new(store);
        tx.delete(Keyspace::SearchIndex, updated_key(resource_type, &at[..10], id));
        tx.put(Keyspace::SearchIndex, updated_key(resource_type, at, id), vec![]);
        store.commit(tx.into_writes()).unwrap();
    }

    fn find_tasks(store: &MemoryStore, filters: &[(&str, &str)]) -> Vec<String> {
        let filters: Vec<(String, String)> = filters
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        ids(search(store, "Task", &filters, Sort::Id).unwrap())
    }

    #[test]
    fn updates_on_one_day_write_no_last_updated_entry_and_a_later_day_moves_it() {
        let store = MemoryStore::new();
        let first = put_task(&store, "t1", "ready", "2026-03-01T08:00:00.000Z");
        assert!(index_writes(&first).contains(&(updated_key("Task", "2026-03-01", "t1"), true)));
        for at in [
            "2026-03-01T09:15:00.000Z",
            "2026-03-01T12:30:00.500Z",
            "2026-03-01T23:59:59.999Z",
        ] {
            let writes = put_task(&store, "t1", "ready", at);
            assert_eq!(index_writes(&writes), [], "an update at {at}");
        }
        // The search still compares the instant the resource was last written.
        assert_eq!(
            find_tasks(&store, &[("_lastUpdated", "gt2026-03-01T23:59:59.998Z")]),
            ["t1"]
        );
        assert_eq!(
            find_tasks(&store, &[("_lastUpdated", "lt2026-03-01T23:59:59.999Z")]),
            Vec::<String>::new()
        );
        assert_eq!(
            find_tasks(&store, &[("_lastUpdated", "2026-03-01T09")]),
            Vec::<String>::new()
        );

        let next_day = put_task(&store, "t1", "ready", "2026-03-02T00:00:00.000Z");
        assert_eq!(
            index_writes(&next_day),
            [
                (updated_key("Task", "2026-03-01", "t1"), false),
                (updated_key("Task", "2026-03-02", "t1"), true),
            ]
        );
        assert_eq!(
            updated_entries(&store, "Task"),
            [updated_key("Task", "2026-03-02", "t1")]
        );
        assert_eq!(find_tasks(&store, &[("_lastUpdated", "2026-03-02")]), ["t1"]);

        // A Patient's writes go through the same index (with its own parameters).
        let patient = json!({ "resourceType": "Patient", "name": [{ "family": "Ngata" }] });
        let write_patient = |at: &str| {
            let mut tx = Overlay::new(&store);
            patients::replace(&mut tx, "p1", &patient, at).unwrap();
            let writes = tx.into_writes();
            store.commit(writes.clone()).unwrap();
            writes
        };
        write_patient("2026-03-01T08:00:00.000Z");
        assert_eq!(index_writes(&write_patient("2026-03-01T17:00:00.000Z")), []);
        assert_eq!(
            index_writes(&write_patient("2026-03-04T08:00:00.000Z")),
            [
                (updated_key("Patient", "2026-03-01", "p1"), false),
                (updated_key("Patient", "2026-03-04", "p1"), true),
            ]
        );
    }

    #[test]
    fn an_entry_by_instant_from_an_earlier_release_is_found_and_then_cleaned() {
        let store = MemoryStore::new();
        for (id, at) in [
            ("t1", "2026-03-01T08:00:00.000Z"),
            ("t2", "2026-03-01T10:00:00.000Z"),
        ] {
            put_task(&store, id, "ready", at);
            to_instant_entry(&store, "Task", id, at);
        }
        assert_eq!(
            find_tasks(&store, &[("_lastUpdated", "lt2026-03-01T09:00")]),
            ["t1"]
        );
        assert_eq!(
            find_tasks(&store, &[("_lastUpdated", "gt2026-03-01T09:00")]),
            ["t2"]
        );
        assert_eq!(find_tasks(&store, &[("_lastUpdated", "2026-03")]), ["t1", "t2"]);
        assert_eq!(
            find_tasks(&store, &[("_lastUpdated", "ne2026-03-01T10:00:00.000Z")]),
            ["t1"]
        );

        // Updated on the same day: the instant entry goes, the day entry comes.
        let writes = put_task(&store, "t1", "ready", "2026-03-01T12:00:00.000Z");
        assert_eq!(
            index_writes(&writes),
            [
                (updated_key("Task", "2026-03-01", "t1"), true),
                (updated_key("Task", "2026-03-01T08:00:00.000Z", "t1"), false),
            ]
        );
        assert_eq!(
            find_tasks(&store, &[("_lastUpdated", "gt2026-03-01T11:00")]),
            ["t1"]
        );
        assert_eq!(
            find_tasks(&store, &[("_lastUpdated", "lt2026-03-01T11:00")]),
            ["t2"]
        );
        // Deleted on a later day: its instant entry goes too.
        let mut tx = Overlay::new(&store);
        super::super::delete(&mut tx, "Task", "t2", "2026-03-05T08:00:00.000Z").unwrap();
        store.commit(tx.into_writes()).unwrap();
        assert_eq!(
            updated_entries(&store, "Task"),
            [updated_key("Task", "2026-03-01", "t1")]
        );
        assert_eq!(find_tasks(&store, &[("_lastUpdated", "2026-03")]), ["t1"]);
    }

    /// `_lastUpdated` as it was compared in its index when that held the whole instant: the
    /// brute force the day index and the exact comparison must agree with.
    fn instant_matches(updated: &str, query: &str) -> bool {
        let (op, date) = match query.get(..2) {
            Some(op @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le")) => (op, &query[2..]),
            _ => ("eq", query),
        };
        let within = updated.starts_with(date) || date.starts_with(updated);
        match op {
            "eq" => within,
            "ne" => !within,
            "gt" => !within && updated > date,
            "lt" => !within && updated < date,
            "ge" => within || updated > date,
            "le" => within || updated < date,
            _ => unreachable!(),
        }
    }

    /// An instant near the turn of a day, a month and a year, UTC as the server writes them.
    fn instant() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["2025-12-31", "2026-01-01", "2026-01-31", "2026-02-01"]),
            prop::sample::select(vec!["00", "09", "10", "23"]),
            prop::sample::select(vec!["00", "30", "59"]),
            prop::sample::select(vec!["00", "59"]),
            prop::sample::select(vec!["000", "500", "999"]),
        )
            .prop_map(|(day, h, m, s, ms)| format!("{day}T{h}:{m}:{s}.{ms}Z"))
    }

    /// A `_lastUpdated` search value: a prefix, and an instant cut to year, month, day, minute
    /// (in UTC, at an offset, or with none), second or millisecond.
    fn updated_query() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["", "eq", "ne", "gt", "lt", "ge", "le"]),
            instant(),
            0..8usize,
        )
            .prop_map(|(prefix, at, precision)| {
                let date = match precision {
                    0 => at[..4].to_string(),
                    1 => at[..7].to_string(),
                    2 => at[..10].to_string(),
                    3 => format!("{}Z", &at[..16]),
                    4 => format!("{}+01:00", &at[..16]),
                    5 => at[..16].to_string(),
                    6 => format!("{}Z", &at[..19]),
                    _ => at,
                };
                format!("{prefix}{date}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// `_lastUpdated` filters (ANDed, each with values ORed, with another parameter or not)
        /// find what comparing every resource's `meta.lastUpdated` finds, over resources
        /// written one or more times, some of whose entries an earlier release wrote.
        #[test]
        fn last_updated_search_matches_a_brute_force_filter(
            tasks in prop::collection::vec(
                (prop::collection::vec(instant(), 1..4), any::<bool>(), any::<bool>()),
                1..8,
            ),
            filters in prop::collection::vec(prop::collection::vec(updated_query(), 1..3), 1..3),
            ready_only in any::<bool>(),
        ) {
            let store = MemoryStore::new();
            let mut last = vec![];
            for (n, (writes, ready, earlier_release)) in tasks.iter().enumerate() {
                let id = format!("t{n}");
                let status = if *ready { "ready" } else { "completed" };
                for (k, at) in writes.iter().enumerate() {
                    put_task(&store, &id, status, at);
                    if k == 0 && *earlier_release {
                        to_instant_entry(&store, "Task", &id, at);
                    }
                }
                last.push((id, *ready, writes.last().unwrap().clone()));
            }
            // One entry per resource, whichever form it is in.
            prop_assert_eq!(updated_entries(&store, "Task").len(), tasks.len());

            let mut query: Vec<(String, String)> =
                filters.iter().map(|any| ("_lastUpdated".to_string(), any.join(","))).collect();
            if ready_only {
                query.push(("status".to_string(), "ready".to_string()));
            }
            let found = ids(search(&store, "Task", &query, Sort::Id).unwrap());
            let mut expected: Vec<String> = last
                .iter()
                .filter(|(_, ready, updated)| {
                    (*ready || !ready_only)
                        && filters.iter().all(|any| any.iter().any(|q| instant_matches(updated, q)))
                })
                .map(|(id, _, _)| id.clone())
                .collect();
            expected.sort();
            prop_assert_eq!(found, expected, "query {:?}", query);
        }
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
