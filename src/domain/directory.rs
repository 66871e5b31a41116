//! The provider directory members search to write to (release notes 6.6): providers (FHIR
//! Practitioners, with the specialties and groups their PractitionerRoles give) and groups
//! (Organizations), fed to `/fhir` by the organization's systems; and each member's favourites
//! among them, kept under the member.

use serde_json::{Value, json};

use crate::domain::refusal::{Kind, Refusal};
use crate::domain::resources::params::normalize;
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current};
use crate::store::{Keyspace, Overlay, Reader, Store, StoreError};

/// The resource types a member may write to.
pub const DIRECTORY_TYPES: [&str; 3] = ["Practitioner", "PractitionerRole", "Organization"];

/// The most entries one search gives.
pub const MAX_ENTRIES: usize = 50;

/// Which part of the directory to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Providers,
    Groups,
    Both,
}

/// `Type/id` of the directory, read: the live, active resource, or 422 `unknown-provider`.
fn directory_resource(reader: &dyn Reader, reference: &str) -> Result<(String, Value), Refusal> {
    let unknown = || {
        Refusal::new(
            Kind::Invalid,
            "unknown-provider",
            format!(
                "`{reference}` is no provider or group of the directory (Practitioner/id, PractitionerRole/id or Organization/id)"
            ),
        )
    };
    let (resource_type, id) = reference.split_once('/').ok_or_else(unknown)?;
    if !DIRECTORY_TYPES.contains(&resource_type) || id.is_empty() || id.contains('/') {
        return Err(unknown());
    }
    match resources::read(reader, resource_type, id)? {
        Some(Current::Live(resource)) if resource["active"] != false => {
            Ok((resource_type.to_string(), resource))
        }
        _ => Err(unknown()),
    }
}

/// The recipient a message to `reference` names: `{"reference", "display"}`.
pub fn entry_of(reader: &dyn Reader, reference: &str) -> Result<Value, Refusal> {
    let (resource_type, resource) = directory_resource(reader, reference)?;
    let display = match resource_type.as_str() {
        "Practitioner" => person_name(&resource),
        "Organization" => resource["name"].as_str().map(str::to_string),
        _ => role_name(reader, &resource)?,
    };
    Ok(json!({ "reference": reference, "display": display.unwrap_or_default() }))
}

/// A Practitioner's name as members read it: its `text`, else prefix, given and family.
fn person_name(practitioner: &Value) -> Option<String> {
    let name = &practitioner["name"][0];
    if let Some(text) = name["text"].as_str() {
        return Some(text.to_string());
    }
    let words = |part: &str| -> Vec<String> {
        name[part]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let mut parts = words("prefix");
    parts.extend(words("given"));
    parts.extend(name["family"].as_str().map(str::to_string));
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A role as members read it: its practitioner's name and its first specialty.
fn role_name(reader: &dyn Reader, role: &Value) -> Result<Option<String>, StoreError> {
    let practitioner = match role["practitioner"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Practitioner/"))
    {
        Some(id) => match resources::read(reader, "Practitioner", id)? {
            Some(Current::Live(p)) => person_name(&p),
            _ => None,
        },
        None => None,
    };
    let who = practitioner.or(role["practitioner"]["display"].as_str().map(str::to_string));
    let specialty = concept_text(&role["specialty"][0]);
    Ok(match (who, specialty) {
        (Some(who), Some(specialty)) => Some(format!("{who} ({specialty})")),
        (who, specialty) => who.or(specialty),
    })
}

fn concept_text(concept: &Value) -> Option<String> {
    concept["text"]
        .as_str()
        .or(concept["coding"][0]["display"].as_str())
        .map(str::to_string)
}

/// Searches the directory: providers and groups whose names have a word starting with each
/// word of `query` (all of them, when there is none), at most [`MAX_ENTRIES`], by name, each
/// marked whether it is one of `member`'s favourites.
pub fn search(store: &dyn Store, query: &str, part: Part, member: &str) -> Result<Vec<Value>, SearchError> {
    let filters: Vec<(String, String)> = query
        .split_whitespace()
        .map(|word| ("name".to_string(), normalize(word)))
        .collect();
    let mut entries = vec![];
    if part != Part::Groups {
        for practitioner in search::search(store, "Practitioner", &filters, Sort::default())? {
            if practitioner["active"] != false {
                entries.push(provider_entry(store, &practitioner)?);
            }
        }
    }
    if part != Part::Providers {
        for organization in search::search(store, "Organization", &filters, Sort::default())? {
            if organization["active"] != false {
                entries.push(group_entry(&organization));
            }
        }
    }
    entries.sort_by_key(|e| normalize(e["name"].as_str().unwrap_or("")));
    entries.truncate(MAX_ENTRIES);
    for entry in &mut entries {
        let reference = entry["reference"].as_str().unwrap_or("").to_string();
        entry["favourite"] = json!(is_favourite(store, member, &reference)?);
    }
    Ok(entries)
}

fn provider_entry(store: &dyn Store, practitioner: &Value) -> Result<Value, SearchError> {
    let id = practitioner["id"].as_str().unwrap_or("");
    let roles = search::search(
        store,
        "PractitionerRole",
        &[("practitioner".to_string(), format!("Practitioner/{id}"))],
        Sort::default(),
    )?;
    let roles: Vec<&Value> = roles.iter().filter(|r| r["active"] != false).collect();
    let specialties: Vec<String> = roles
        .iter()
        .flat_map(|r| r["specialty"].as_array().into_iter().flatten())
        .filter_map(concept_text)
        .collect();
    let mut groups = vec![];
    for role in &roles {
        let organization = &role["organization"];
        let name = match organization["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Organization/"))
        {
            Some(id) => match resources::read(store, "Organization", id)? {
                Some(Current::Live(o)) => o["name"].as_str().map(str::to_string),
                _ => None,
            },
            None => None,
        };
        if let Some(name) = name.or(organization["display"].as_str().map(str::to_string))
            && !groups.contains(&name)
        {
            groups.push(name);
        }
    }
    Ok(json!({
        "reference": format!("Practitioner/{id}"),
        "kind": "provider",
        "name": person_name(practitioner),
        "specialties": specialties,
        "groups": groups,
    }))
}

fn group_entry(organization: &Value) -> Value {
    json!({
        "reference": format!("Organization/{}", organization["id"].as_str().unwrap_or("")),
        "kind": "group",
        "name": organization["name"],
        "type": concept_text(&organization["type"][0]),
    })
}

fn favourite_key(member: &str, reference: &str) -> Vec<u8> {
    format!("{member}\0{reference}").into_bytes()
}

fn is_favourite(reader: &dyn Reader, member: &str, reference: &str) -> Result<bool, StoreError> {
    Ok(reader
        .get(Keyspace::Favourite, &favourite_key(member, reference))?
        .is_some())
}

/// The member's favourites that are still in the directory, as a search gives them.
pub fn favourites(store: &dyn Store, member: &str) -> Result<Vec<Value>, SearchError> {
    let prefix = format!("{member}\0");
    let mut entries = vec![];
    for (key, _) in store.scan_prefix(Keyspace::Favourite, prefix.as_bytes(), MAX_ENTRIES * 4)? {
        let reference = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        let Ok((resource_type, resource)) = directory_resource(store, &reference) else {
            continue;
        };
        let mut entry = match resource_type.as_str() {
            "Practitioner" => provider_entry(store, &resource)?,
            "Organization" => group_entry(&resource),
            _ => json!({
                "reference": reference,
                "kind": "provider",
                "name": role_name(store, &resource)?,
            }),
        };
        entry["favourite"] = json!(true);
        entries.push(entry);
    }
    entries.sort_by_key(|e| normalize(e["name"].as_str().unwrap_or("")));
    Ok(entries)
}

/// Makes `reference` one of the member's favourites (again is the same).
pub fn add_favourite(
    tx: &mut Overlay<'_>,
    member: &str,
    reference: &str,
    now: &str,
) -> Result<Value, Refusal> {
    let entry = entry_of(tx, reference)?;
    tx.put(
        Keyspace::Favourite,
        favourite_key(member, reference),
        now.as_bytes().to_vec(),
    );
    Ok(entry)
}

/// Takes `reference` out of the member's favourites; 404 when it is not one.
pub fn remove_favourite(tx: &mut Overlay<'_>, member: &str, reference: &str) -> Result<(), Refusal> {
    if !is_favourite(tx, member, reference)? {
        return Err(Refusal::new(
            Kind::NotFound,
            "not-a-favourite",
            format!("`{reference}` is not one of your favourites"),
        ));
    }
    tx.delete(Keyspace::Favourite, favourite_key(member, reference));
    Ok(())
}
