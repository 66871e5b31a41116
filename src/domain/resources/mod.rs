//! FHIR resources in the store: the current version of each, every version kept (vread,
//! `_history`), deletions, and the search index, for every type the endpoint serves.
//!
//! Patients live in their own keyspace (`domain::patients` owns them and their identifier,
//! email and phone indexes); this module keeps their history and generic search values too, so
//! a Patient read, versioned and searched through FHIR looks like any other resource. Every
//! other type is kept here under `Type/id`.
//!
//! - [`params`]: the search parameters per type and the values each takes from a resource.
//! - [`search`]: running a search: candidates from the index, sorting, paging.

pub(crate) mod change;
mod moved_records;
pub(crate) mod params;
#[cfg(test)]
mod results_props_tests;
pub(crate) mod search;
pub(crate) mod write;

use serde_json::{Value, json};

use crate::store::{Keyspace, Overlay, Reader, Store, StoreError};

/// Where the current version of a resource is kept.
fn current_key(resource_type: &str, id: &str) -> (Keyspace, Vec<u8>) {
    if resource_type == "Patient" {
        (Keyspace::Patient, id.as_bytes().to_vec())
    } else {
        (Keyspace::Resource, key(resource_type, id))
    }
}

/// The current version as stored: the resource, or a deletion's tombstone.
fn current_raw(reader: &dyn Reader, resource_type: &str, id: &str) -> Result<Option<Value>, StoreError> {
    let (keyspace, key) = current_key(resource_type, id);
    reader
        .get(keyspace, &key)?
        .map(|bytes| parse(&bytes, &format!("{resource_type}/{id}")))
        .transpose()
}

/// What a read finds.
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    Live(Value),
    /// Deleted at `version` (a read answers 410 Gone).
    Deleted {
        version: u64,
    },
}

fn key(resource_type: &str, id: &str) -> Vec<u8> {
    format!("{resource_type}/{id}").into_bytes()
}

fn history_key(resource_type: &str, id: &str, version: u64) -> Vec<u8> {
    let mut key = key(resource_type, id);
    key.push(0);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// The version number in a stored resource's `meta.versionId` (0 when none).
pub fn version_of(resource: &Value) -> u64 {
    resource["meta"]["versionId"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn parse(bytes: &[u8], what: &str) -> Result<Value, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(format!("{what} is not valid JSON"), e))
}

/// The current version of a resource.
pub fn read(reader: &dyn Reader, resource_type: &str, id: &str) -> Result<Option<Current>, StoreError> {
    let Some(value) = current_raw(reader, resource_type, id)? else {
        return Ok(None);
    };
    if value.get("deleted").and_then(Value::as_bool) == Some(true) {
        return Ok(Some(Current::Deleted {
            version: version_of(&value),
        }));
    }
    Ok(Some(Current::Live(value)))
}

/// One version of a resource: the resource, or a deletion (`{"deleted": true, meta}`).
pub fn vread(
    reader: &dyn Reader,
    resource_type: &str,
    id: &str,
    version: u64,
) -> Result<Option<Value>, StoreError> {
    if let Some(kept) = reader.get(Keyspace::History, &history_key(resource_type, id, version))? {
        return parse(&kept, &format!("{resource_type}/{id}/_history/{version}")).map(Some);
    }
    // The current version is kept only as the current one.
    Ok(current_raw(reader, resource_type, id)?.filter(|current| version_of(current) == version))
}

/// One page of a resource's history, newest first.
#[derive(Debug)]
pub struct HistoryPage {
    /// How many versions there are in all (deletions included).
    pub total: usize,
    /// `limit` of them from `offset`.
    pub versions: Vec<Value>,
}

/// `limit` versions of a resource from `offset`, newest first, and how many there are in all.
/// Only the page is parsed; the others are only counted.
pub fn history(
    store: &dyn Store,
    resource_type: &str,
    id: &str,
    offset: usize,
    limit: usize,
) -> Result<HistoryPage, StoreError> {
    let mut prefix = key(resource_type, id);
    prefix.push(0);
    let earlier = store.scan_prefix(Keyspace::History, &prefix, usize::MAX)?;
    let current = current_raw(store, resource_type, id)?;
    let total = earlier.len() + usize::from(current.is_some());
    // The current version is the newest; the kept ones are keyed oldest first.
    let mut versions = Vec::new();
    let mut skip = offset;
    if let Some(current) = current {
        if skip == 0 {
            versions.push(current);
        } else {
            skip -= 1;
        }
    }
    for (_, bytes) in earlier.iter().rev().skip(skip) {
        if versions.len() >= limit {
            break;
        }
        versions.push(parse(bytes, resource_type)?);
    }
    versions.truncate(limit);
    Ok(HistoryPage { total, versions })
}

/// Keeps a version that is about to be replaced in the resource's history (the current version
/// itself lives only in its own keyspace, so a write copies nothing it does not have to).
pub fn record_version(tx: &mut Overlay<'_>, resource_type: &str, id: &str, resource: &Value) {
    let version = version_of(resource);
    let bytes = serde_json::to_vec(resource).expect("a JSON value always serializes");
    tx.put(Keyspace::History, history_key(resource_type, id, version), bytes);
}

/// Writes a new version of a resource that is not a Patient: id, meta (version and time) set
/// here, index and history kept. Returns the stored resource.
pub fn put(
    tx: &mut Overlay<'_>,
    resource_type: &str,
    id: &str,
    mut resource: Value,
    now: &str,
) -> Result<Value, StoreError> {
    let current = current_raw(tx, resource_type, id)?;
    let previous_version = current.as_ref().map(version_of).unwrap_or(0);
    let live = current.as_ref().filter(|c| c.get("deleted").is_none());
    stamp(&mut resource, resource_type, id, previous_version + 1, now);
    update_index(tx, resource_type, id, live, Some(&resource))?;
    if let Some(current) = &current {
        record_version(tx, resource_type, id, current);
    }
    let bytes = serde_json::to_vec(&resource).expect("a JSON value always serializes");
    tx.put(Keyspace::Resource, key(resource_type, id), bytes);
    tx.note_version(resource_type, id, previous_version + 1);
    Ok(resource)
}

/// Sets a resource's type, id and meta (keeping any other meta elements, such as profiles).
pub fn stamp(resource: &mut Value, resource_type: &str, id: &str, version: u64, now: &str) {
    resource["resourceType"] = json!(resource_type);
    resource["id"] = json!(id);
    let mut meta = resource
        .get("meta")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    meta["versionId"] = json!(version.to_string());
    meta["lastUpdated"] = json!(now);
    resource["meta"] = meta;
}

/// Deletes a resource that is not a Patient; returns the deletion's version, or None when there
/// was nothing to delete.
pub fn delete(
    tx: &mut Overlay<'_>,
    resource_type: &str,
    id: &str,
    now: &str,
) -> Result<Option<u64>, StoreError> {
    let Some(Current::Live(old)) = read(tx, resource_type, id)? else {
        return Ok(None);
    };
    let version = version_of(&old) + 1;
    let tombstone = json!({
        "deleted": true,
        "resourceType": resource_type,
        "id": id,
        "meta": { "versionId": version.to_string(), "lastUpdated": now },
    });
    update_index(tx, resource_type, id, Some(&old), None)?;
    record_version(tx, resource_type, id, &old);
    let bytes = serde_json::to_vec(&tombstone).expect("a JSON value always serializes");
    tx.put(Keyspace::Resource, key(resource_type, id), bytes);
    tx.note_version(resource_type, id, version);
    Ok(Some(version))
}

/// The index entries of one resource. `_lastUpdated` is indexed by its day (`YYYY-MM-DD`) only,
/// not by the instant: an update on the same day as the version it replaces then changes no
/// entry at all. A search takes candidates from the days and compares each one's own
/// `meta.lastUpdated` exactly (see `search::search`).
fn index_keys(resource_type: &str, id: &str, resource: &Value) -> Vec<Vec<u8>> {
    let mut keys = vec![];
    for param in params::of_type(resource_type) {
        for value in params::values(param, resource) {
            keys.push(index_key(resource_type, param.name, &value, id));
        }
    }
    if let Some(updated) = resource["meta"]["lastUpdated"].as_str() {
        keys.push(index_key(resource_type, "_lastUpdated", updated_day(updated), id));
    }
    keys
}

/// The day of a `meta.lastUpdated` (`YYYY-MM-DD`; all of it when it is no longer than that).
fn updated_day(updated: &str) -> &str {
    updated.get(..10).unwrap_or(updated)
}

pub(crate) fn index_key(resource_type: &str, param: &str, value: &str, id: &str) -> Vec<u8> {
    let mut key = index_prefix(resource_type, param);
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

pub(crate) fn index_prefix(resource_type: &str, param: &str) -> Vec<u8> {
    format!("{resource_type}\0{param}\0").into_bytes()
}

/// Replaces a resource's index entries: only the ones that change are written.
pub fn update_index(
    tx: &mut Overlay<'_>,
    resource_type: &str,
    id: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), StoreError> {
    let old_keys: std::collections::BTreeSet<Vec<u8>> = old
        .map(|o| index_keys(resource_type, id, o))
        .unwrap_or_default()
        .into_iter()
        .collect();
    let new_keys: std::collections::BTreeSet<Vec<u8>> = new
        .map(|n| index_keys(resource_type, id, n))
        .unwrap_or_default()
        .into_iter()
        .collect();
    // Releases before the day index kept `_lastUpdated` by the whole instant, so the old
    // version's entry has either form, depending on which release wrote it: both are handled.
    // The instant form is looked up (one point read) rather than deleted blindly, as a blind
    // delete would write to the index on every update, which the day index is there to avoid.
    let legacy = match old.and_then(|o| o["meta"]["lastUpdated"].as_str()) {
        Some(updated) if updated_day(updated) != updated => {
            let key = index_key(resource_type, "_lastUpdated", updated, id);
            tx.get(Keyspace::SearchIndex, &key)?.map(|_| key)
        }
        _ => None,
    };
    for key in old_keys.difference(&new_keys) {
        tx.delete(Keyspace::SearchIndex, key.clone());
    }
    for key in new_keys.difference(&old_keys) {
        tx.put(Keyspace::SearchIndex, key.clone(), vec![]);
    }
    if let Some(legacy) = legacy {
        tx.delete(Keyspace::SearchIndex, legacy);
        // The old version had no day entry for the difference above to keep: write the new one.
        if let Some(updated) = new.and_then(|n| n["meta"]["lastUpdated"].as_str()) {
            let key = index_key(resource_type, "_lastUpdated", updated_day(updated), id);
            tx.put(Keyspace::SearchIndex, key, vec![]);
        }
    }
    Ok(())
}
