//! Patients: applying demographic changes (create, update, merge, identifier change) together
//! with their indexes, and finding patients by id, identifier, email and phone.
//!
//! A Patient is stored as FHIR R4 JSON under its logical id. Its identifiers, emails and phone
//! numbers are indexed; a retired (merged) record keeps its data but leaves the indexes, so its
//! identifiers find the survivor.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::domain::resources;
use crate::store::{Keyspace, Overlay, Reader, Store, StoreError};

pub use crate::domain::resources::change::{ApplyError, ResourceChange};

/// Applies a change into `tx`; returns the ids of every patient it wrote.
/// A Patient's change; see `resources::change::apply`, which every change goes through.
pub(crate) fn apply(
    tx: &mut Overlay<'_>,
    change: &ResourceChange,
    now: &str,
) -> Result<Vec<String>, ApplyError> {
    match change {
        ResourceChange::Upsert { resource } => {
            let (id, old, new) = prepare_upsert(tx, resource)?;
            write(tx, &id, old.as_ref(), new, now)?;
            Ok(vec![id])
        }
        ResourceChange::Merge { survivor, retired } => merge(tx, survivor, retired, now),
        ResourceChange::ChangeIdentifier { resource, previous } => {
            change_identifier(tx, resource, previous, now)
        }
        ResourceChange::Delete { .. } => Err(ApplyError::PatientNotDeleted),
    }
}

/// FHIR update (`PUT Patient/{id}`): the patient `id` becomes `patient` as given, created if
/// new. An identifier another patient holds is refused, as two records cannot share one.
/// Returns the record before and after.
pub fn replace(
    tx: &mut Overlay<'_>,
    id: &str,
    patient: &Value,
    now: &str,
) -> Result<(Option<Value>, Value), ApplyError> {
    for identifier in identifiers_of(patient) {
        if let Some(owner) = find_by_any(tx, std::slice::from_ref(identifier))?
            && owner != id
        {
            return Err(ApplyError::DuplicateKey(describe(identifier), owner));
        }
    }
    let old = load(tx, id)?;
    write(tx, id, old.as_ref(), patient.clone(), now)?;
    let new = load(tx, id)?.expect("just written");
    Ok((old, new))
}

/// A new id for a patient created through FHIR (`POST Patient`): from its first identifier, as
/// for a feed, or random-free from the journal sequence when it has none (`n` numbers the
/// creates of one command, so two Patients without identifiers in one transaction differ).
pub fn new_id(reader: &dyn Reader, patient: &Value, seq: u64, n: u32) -> Result<String, StoreError> {
    let identifiers = identifiers_of(patient);
    if identifiers.is_empty() {
        let value = if n == 0 {
            seq.to_string()
        } else {
            format!("{seq}-{n}")
        };
        return fresh_id(
            reader,
            &[json!({ "system": "urn:tributary:fhir-create", "value": value })],
        );
    }
    fresh_id(reader, identifiers)
}

/// The id an upsert writes to, the record as it was, and the record it becomes.
fn prepare_upsert(tx: &Overlay<'_>, incoming: &Value) -> Result<(String, Option<Value>, Value), ApplyError> {
    let identifiers = identifiers_of(incoming);
    if let Some(id) = find_by_any(tx, matching(identifiers))? {
        let old = load(tx, &id)?;
        let new = match &old {
            Some(old) => updated(old, incoming),
            None => created(incoming),
        };
        return Ok((id, old, new));
    }
    let id = fresh_id(tx, identifiers)?;
    Ok((id, None, created(incoming)))
}

/// A new record from what a message carries: without its nulls, and each identifier once (a
/// message may name one twice: PID-2 repeating PID-3, an SSN in PID-3 and PID-19), as an update
/// keeps them.
fn created(incoming: &Value) -> Value {
    let mut new = without_nulls(incoming);
    if new["identifier"].is_array() {
        new["identifier"] = json!([]);
        for identifier in identifiers_of(incoming) {
            add_identifier(&mut new, identifier.clone(), None);
        }
    }
    new
}

fn merge(
    tx: &mut Overlay<'_>,
    survivor: &Value,
    retired: &[Value],
    now: &str,
) -> Result<Vec<String>, ApplyError> {
    let (survivor_id, survivor_old, mut survivor_new) = prepare_upsert(tx, survivor)?;
    let mut written = vec![];
    let mut retired_ids: Vec<String> = vec![];
    for identifier in retired {
        if let Some(id) = find_by_any(tx, std::slice::from_ref(identifier))?
            && id != survivor_id
            && !retired_ids.contains(&id)
        {
            retired_ids.push(id);
        }
    }
    let mut moved: Vec<Value> = retired.to_vec();
    for id in &retired_ids {
        let Some(old) = load(tx, id)? else { continue };
        let mut gone = old.clone();
        moved.extend(identifiers_of(&old).iter().cloned());
        gone["active"] = json!(false);
        set_link(&mut gone, &survivor_id, "replaced-by");
        write(tx, id, Some(&old), gone, now)?;
        set_link(&mut survivor_new, id, "replaces");
        written.push(id.clone());
    }
    for identifier in moved {
        add_identifier(&mut survivor_new, identifier, Some("old"));
    }
    write(tx, &survivor_id, survivor_old.as_ref(), survivor_new, now)?;
    written.insert(0, survivor_id);
    Ok(written)
}

fn change_identifier(
    tx: &mut Overlay<'_>,
    patient: &Value,
    previous: &[Value],
    now: &str,
) -> Result<Vec<String>, ApplyError> {
    let id = find_by_any(tx, previous)?.ok_or_else(|| ApplyError::UnknownKey(describe(&previous[0])))?;
    let Some(old) = load(tx, &id)? else {
        return Err(ApplyError::UnknownKey(describe(&previous[0])));
    };
    let incoming = identifiers_of(patient);
    for identifier in incoming {
        if let Some(owner) = find_by_any(tx, std::slice::from_ref(identifier))?
            && owner != id
        {
            return Err(ApplyError::DuplicateKey(describe(identifier), owner));
        }
    }
    let mut new = old.clone();
    let kept: Vec<Value> = identifiers_of(&old)
        .iter()
        .filter(|i| !previous.iter().any(|p| same_identifier(i, p)))
        .cloned()
        .collect();
    new["identifier"] = Value::Array(kept);
    for identifier in incoming {
        add_identifier(&mut new, identifier.clone(), None);
    }
    write(tx, &id, Some(&old), new, now)?;
    Ok(vec![id])
}

/// Stores `new` under `id` with the next version, moving its index entries from `old`'s.
fn write(
    tx: &mut Overlay<'_>,
    id: &str,
    old: Option<&Value>,
    mut new: Value,
    now: &str,
) -> Result<(), ApplyError> {
    let version = old
        .and_then(|o| o["meta"]["versionId"].as_str())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    new["resourceType"] = json!("Patient");
    new["id"] = json!(id);
    resources::stamp(&mut new, "Patient", id, version, now);
    // Only the index entries that change are written: an update that keeps its identifiers,
    // emails and phones writes none.
    let was_indexed = old.filter(|o| is_indexed(o));
    let old_identifiers: BTreeSet<Vec<u8>> = was_indexed.map(identifier_keys).unwrap_or_default();
    let new_identifiers: BTreeSet<Vec<u8>> = if is_indexed(&new) {
        identifier_keys(&new)
    } else {
        BTreeSet::new()
    };
    for key in old_identifiers.difference(&new_identifiers) {
        if tx.get(Keyspace::IdentifierIndex, key)?.as_deref() == Some(id.as_bytes()) {
            tx.delete(Keyspace::IdentifierIndex, key.clone());
        }
    }
    for key in &new_identifiers {
        if tx.get(Keyspace::IdentifierIndex, key)?.as_deref() != Some(id.as_bytes()) {
            tx.put(Keyspace::IdentifierIndex, key.clone(), id.as_bytes().to_vec());
            // The identifier domains (systems) known here, for PIX queries to tell an unknown
            // domain from an unknown identifier.
            if let Some(system) = key.iter().position(|b| *b == 0).map(|at| &key[at + 1..]) {
                let domain = domain_key(&String::from_utf8_lossy(system));
                if tx.get(Keyspace::Meta, &domain)?.is_none() {
                    tx.put(Keyspace::Meta, domain, vec![]);
                }
            }
        }
    }
    let old_contacts = was_indexed.map(|o| contact_keys(o, id)).unwrap_or_default();
    let new_contacts = if is_indexed(&new) {
        contact_keys(&new, id)
    } else {
        BTreeSet::new()
    };
    for (keyspace, key) in old_contacts.difference(&new_contacts) {
        tx.delete(*keyspace, key.clone());
    }
    for (keyspace, key) in new_contacts.difference(&old_contacts) {
        tx.put(*keyspace, key.clone(), vec![]);
    }
    resources::update_index(
        tx,
        "Patient",
        id,
        was_indexed,
        Some(&new).filter(|n| is_indexed(n)),
    )?;
    if let Some(old) = old {
        resources::record_version(tx, "Patient", id, old);
    }
    let bytes = serde_json::to_vec(&new).expect("a JSON value always serializes");
    tx.put(Keyspace::Patient, id.as_bytes().to_vec(), bytes);
    // What follows from a patient (a member's search entries, fan-out) is the projections'.
    tx.note_version("Patient", id, resources::version_of(&new));
    Ok(())
}

/// `old` updated with what `incoming` carries: present elements replace, nulls remove, absent
/// elements stay; identifiers accumulate (one is only ever removed by an identifier change).
fn updated(old: &Value, incoming: &Value) -> Value {
    let mut new = old.clone();
    let Some(fields) = incoming.as_object() else {
        return new;
    };
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("identifier", _) => {
                for identifier in identifiers_of(incoming) {
                    refresh_identifier(&mut new, identifier);
                    add_identifier(&mut new, identifier.clone(), None);
                }
            }
            (_, Value::Null) => {
                new.as_object_mut().map(|o| o.remove(key));
            }
            _ => new[key] = value.clone(),
        }
    }
    new
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

fn add_identifier(patient: &mut Value, mut identifier: Value, use_code: Option<&str>) {
    if !patient["identifier"].is_array() {
        patient["identifier"] = json!([]);
    }
    let list = patient["identifier"].as_array_mut().expect("just made an array");
    if list.iter().any(|i| same_identifier(i, &identifier)) {
        return;
    }
    if let Some(use_code) = use_code {
        identifier["use"] = json!(use_code);
    }
    list.push(identifier);
}

/// An identifier the record already holds takes what `incoming` says of it (its use, type,
/// period ...): the identity (system and value) is the same, its other elements are the
/// sender's latest word.
fn refresh_identifier(patient: &mut Value, incoming: &Value) {
    let (Some(list), Some(fields)) = (patient["identifier"].as_array_mut(), incoming.as_object()) else {
        return;
    };
    if let Some(held) = list.iter_mut().find(|i| same_identifier(i, incoming))
        && let Some(held) = held.as_object_mut()
    {
        for (key, value) in fields {
            held.insert(key.clone(), value.clone());
        }
    }
}

fn set_link(patient: &mut Value, other_id: &str, link_type: &str) {
    if !patient["link"].is_array() {
        patient["link"] = json!([]);
    }
    let reference = format!("Patient/{other_id}");
    let links = patient["link"].as_array_mut().expect("just made an array");
    if !links.iter().any(|l| l["other"]["reference"] == json!(reference)) {
        links.push(json!({ "other": { "reference": reference }, "type": link_type }));
    }
}

/// The identifiers a message's patient is matched by: all but the social security number and
/// the driver's licence (v2-0203 SS, DL). Those are kept, indexed and searchable, but one alone
/// does not say two records are the same person: a mistyped or shared number would otherwise
/// write one patient's demographics over another's.
fn matching(identifiers: &[Value]) -> impl Iterator<Item = &Value> {
    identifiers.iter().filter(|i| {
        !i["type"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| matches!(c["code"].as_str(), Some("SS" | "DL")))
    })
}

/// The identifiers a patient resource carries, borrowed: most callers only look them up.
pub(crate) fn identifiers_of(patient: &Value) -> &[Value] {
    patient["identifier"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn same_identifier(a: &Value, b: &Value) -> bool {
    a["value"] == b["value"] && a["system"] == b["system"]
}

fn describe(identifier: &Value) -> String {
    format!(
        "{}|{}",
        identifier["system"].as_str().unwrap_or(""),
        identifier["value"].as_str().unwrap_or("")
    )
}

/// Index key of an identifier: `value \0 system`, so a search by value alone is a prefix scan.
fn domain_key(system: &str) -> Vec<u8> {
    format!("identifier-domain\0{system}").into_bytes()
}

/// True when some patient has (or had) an identifier of `system`.
pub fn is_known_domain(reader: &dyn Reader, system: &str) -> Result<bool, StoreError> {
    Ok(reader.get(Keyspace::Meta, &domain_key(system))?.is_some())
}

fn identifier_key(system: &str, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + system.len() + 1);
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key.extend_from_slice(system.as_bytes());
    key
}

/// A retired (merged) record keeps its data but leaves the indexes.
fn is_indexed(patient: &Value) -> bool {
    patient["active"] != json!(false)
}

fn identifier_keys(patient: &Value) -> BTreeSet<Vec<u8>> {
    identifiers_of(patient)
        .iter()
        .filter_map(|i| {
            Some(identifier_key(
                i["system"].as_str().unwrap_or(""),
                i["value"].as_str()?,
            ))
        })
        .collect()
}

fn contact_keys(patient: &Value, id: &str) -> BTreeSet<(Keyspace, Vec<u8>)> {
    let mut keys = BTreeSet::new();
    for contact in patient["telecom"].as_array().into_iter().flatten() {
        let Some(value) = contact["value"].as_str() else {
            continue;
        };
        match contact["system"].as_str() {
            Some("email") => {
                keys.insert((Keyspace::EmailIndex, index_key(&normalize_email(value), id)));
            }
            Some("phone") => {
                for digits in phone_forms(value) {
                    keys.insert((Keyspace::PhoneIndex, index_key(&digits, id)));
                }
            }
            _ => {}
        }
    }
    keys
}

fn index_key(term: &str, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(term.len() + id.len() + 1);
    key.extend_from_slice(term.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The digit strings a phone number is found by: all its digits, and without the country code
/// when it was written with one (`+1 617 555 1234` is found by 16175551234 and 6175551234).
fn phone_forms(phone: &str) -> Vec<String> {
    let main = phone.split(" x").next().unwrap_or(phone);
    let digits: String = main.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return vec![];
    }
    let mut forms = vec![digits.clone()];
    if let Some(rest) = main.trim().strip_prefix('+') {
        let national: String = rest
            .split_once(' ')
            .map(|(_, n)| n)
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect();
        if !national.is_empty() && national != digits {
            forms.push(national);
        }
    }
    forms
}

/// The patient any of these identifiers names, trying them in order.
pub(crate) fn find_by_any<'a>(
    reader: &dyn Reader,
    identifiers: impl IntoIterator<Item = &'a Value>,
) -> Result<Option<String>, StoreError> {
    for identifier in identifiers {
        let Some(value) = identifier["value"].as_str() else {
            continue;
        };
        let system = identifier["system"].as_str().unwrap_or("");
        if let Some(id) = reader.get(Keyspace::IdentifierIndex, &identifier_key(system, value))? {
            return Ok(Some(String::from_utf8_lossy(&id).into_owned()));
        }
    }
    Ok(None)
}

/// A deterministic id from the first identifier, so the same feed yields the same ids anywhere.
fn fresh_id(reader: &dyn Reader, identifiers: &[Value]) -> Result<String, StoreError> {
    let seed = identifiers.first().map(describe).unwrap_or_default();
    let digest = Sha256::digest(seed.as_bytes());
    let base: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    let mut id = base.clone();
    let mut n = 1;
    // The id may be taken by a patient that has since given this identifier up (A47).
    while reader.get(Keyspace::Patient, id.as_bytes())?.is_some() {
        n += 1;
        id = format!("{base}-{n}");
    }
    Ok(id)
}

fn load(reader: &dyn Reader, id: &str) -> Result<Option<Value>, StoreError> {
    match reader.get(Keyspace::Patient, id.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::corrupt(format!("patient {id} is not valid JSON"), e)),
        None => Ok(None),
    }
}

/// Reads one patient by logical id.
pub fn read(reader: &dyn Reader, id: &str) -> Result<Option<Value>, StoreError> {
    load(reader, id)
}

/// Patients with this identifier; any system when `system` is None.
pub fn search_identifier(
    store: &dyn Store,
    system: Option<&str>,
    value: &str,
    limit: usize,
) -> Result<Vec<Value>, StoreError> {
    load_all(store, ids_by_identifier(store, system, value, limit)?, limit)
}

/// Ids of the patients with identifier `value` (in `system`, or in any system).
pub fn ids_by_identifier(
    store: &dyn Store,
    system: Option<&str>,
    value: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let ids: Vec<Vec<u8>> = match system {
        Some(system) => store
            .get(Keyspace::IdentifierIndex, &identifier_key(system, value))?
            .into_iter()
            .collect(),
        None => store
            .scan_prefix(Keyspace::IdentifierIndex, &identifier_key("", value), limit)?
            .into_iter()
            .map(|(_, id)| id)
            .collect(),
    };
    Ok(distinct(ids, limit))
}

pub fn search_email(store: &dyn Store, email: &str, limit: usize) -> Result<Vec<Value>, StoreError> {
    load_all(store, ids_by_email(store, email, limit)?, limit)
}

pub fn ids_by_email(store: &dyn Store, email: &str, limit: usize) -> Result<Vec<String>, StoreError> {
    ids_by_term(store, Keyspace::EmailIndex, &normalize_email(email), limit)
}

pub fn search_phone(store: &dyn Store, phone: &str, limit: usize) -> Result<Vec<Value>, StoreError> {
    load_all(store, ids_by_phone(store, phone, limit)?, limit)
}

pub fn ids_by_phone(store: &dyn Store, phone: &str, limit: usize) -> Result<Vec<String>, StoreError> {
    let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return Ok(vec![]);
    }
    ids_by_term(store, Keyspace::PhoneIndex, &digits, limit)
}

fn ids_by_term(
    store: &dyn Store,
    keyspace: Keyspace,
    term: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let ids = store
        .scan_prefix(keyspace, &index_key(term, ""), limit)?
        .into_iter()
        .map(|(key, _)| key[term.len() + 1..].to_vec())
        .collect();
    Ok(distinct(ids, limit))
}

/// Ids as text, each once, at most `limit`, in their first order.
fn distinct(ids: Vec<Vec<u8>>, limit: usize) -> Vec<String> {
    let mut seen: Vec<String> = Vec::with_capacity(ids.len().min(limit));
    for id in ids {
        let id = String::from_utf8_lossy(&id).into_owned();
        if seen.len() < limit && !seen.contains(&id) {
            seen.push(id);
        }
    }
    seen
}

fn load_all(store: &dyn Store, ids: Vec<String>, limit: usize) -> Result<Vec<Value>, StoreError> {
    let mut patients = Vec::with_capacity(ids.len().min(limit));
    for id in ids.into_iter().take(limit) {
        if let Some(patient) = load(store, &id)? {
            patients.push(patient);
        }
    }
    Ok(patients)
}
