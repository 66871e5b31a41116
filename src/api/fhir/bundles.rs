//! `POST /fhir` with a Bundle: a transaction (all or nothing, one durable commit, `urn:uuid`
//! references resolved), a batch (each entry on its own), or a message (an IHE PMIR ITI-93
//! patient feed, answered with a response message).
//!
//! Everything a Bundle writes runs as one command on the committer, so a transaction's entries
//! commit together with their journal entry and the deliveries they cause, and a batch's
//! successful entries do too. Reads (`GET` entries) run after the commit.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::format::{self, Format};
use super::idempotent::{self, Key};
use super::refused::{Refused, status_of};
use super::{FhirState, base_url, rest};
use crate::core::idempotency;
use crate::domain::mpi::patients;
use crate::domain::resources::change::ResourceChange;
use crate::domain::resources::params;
use crate::domain::resources::search::{self, Sort};
use crate::domain::resources::write::{self, Done, Effect, Write};
use crate::domain::resources::{self, Current};
use crate::store::Overlay;

/// The PMIR patient feed event (ITI-93).
pub const PMIR_FEED: &str = "urn:ihe:iti:pmir:2019:patient-feed";

/// The event of its response message (the PMIR `MessageHeader` response profile,
/// `IHE.PMIR.MessageHeader.Response`: `event[x]` is this uri).
pub const PMIR_FEED_RESPONSE: &str = "urn:ihe:iti:pmir:2019:patient-feed-response";

/// The `MessageDefinition` the response profile fixes for `MessageHeader.definition`.
const PMIR_RESPONSE_DEFINITION: &str =
    "https://profiles.ihe.net/ITI/PMIR/MessageDefinition/IHE.PMIR.MessageDefinition.Response";

pub async fn post(
    State(state): State<FhirState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let asked = params
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.as_str());
    let format = match Format::of_response(&headers, asked) {
        Ok(format) => format,
        Err(e) => return format::error(Format::Json, StatusCode::NOT_ACCEPTABLE, "not-supported", &e),
    };
    let bundle = match rest::checked_body(&headers, &body, "Bundle", format) {
        Ok(bundle) => bundle,
        Err(response) => return response,
    };
    let base = base_url(&headers);
    match bundle["type"].as_str().unwrap_or("") {
        "transaction" => transaction(&state, &headers, bundle, &base, format, true).await,
        "batch" => transaction(&state, &headers, bundle, &base, format, false).await,
        "message" => message(&state, bundle, &base, format).await,
        other => format::error(
            format,
            StatusCode::BAD_REQUEST,
            "not-supported",
            &format!("a Bundle of type `{other}` cannot be posted here (transaction, batch, message)"),
        ),
    }
}

/// One entry of a transaction or batch, read and checked before the command runs.
struct Entry {
    /// `urn:uuid:...` (or any fullUrl) others may reference.
    full_url: Option<String>,
    action: Action,
}

enum Action {
    Write(Write),
    /// A create whose id is given inside the command (so references to it can be resolved).
    Create {
        resource_type: String,
        resource: Value,
    },
    Read,
    /// Refused before anything ran (bad method, url, resource): its answer.
    Bad(Refused),
    /// A conditional create that matched: nothing to write, this is the match.
    Exists {
        resource_type: String,
        resource: Value,
    },
}

fn bad(status: StatusCode, code: &'static str, message: String) -> Action {
    Action::Bad(Refused::new(status, code, message))
}

/// Reads one entry's request into what it asks.
fn read_entry(state: &FhirState, entry: &Value, index: usize) -> Entry {
    let full_url = entry["fullUrl"].as_str().map(str::to_string);
    let method = entry["request"]["method"].as_str().unwrap_or("");
    let url = entry["request"]["url"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/');
    let (path, _query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.split('/').collect();
    let resource = entry.get("resource").cloned();
    let refused_message = match (parts.as_slice(), &resource) {
        ([resource_type, ..], Some(resource)) if matches!(method, "POST" | "PUT") => {
            state.message_refused(resource_type, resource)
        }
        _ => None,
    };
    if let Some(mut refused) = refused_message {
        refused.message = format!("entry {index}: {}", refused.message);
        return Entry {
            full_url,
            action: Action::Bad(refused),
        };
    }
    let action = match (method, parts.as_slice(), resource) {
        ("GET", [resource_type, ..], _) if params::is_served(resource_type) => Action::Read,
        ("POST", [resource_type], Some(resource)) if params::is_served(resource_type) => {
            if resource["resourceType"] != *resource_type {
                bad(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("entry {index}: the resource is not a {resource_type}"),
                )
            } else if let Some(criteria) = entry["request"]["ifNoneExist"].as_str() {
                let filters: Vec<(String, String)> = serde_urlencoded::from_str(criteria).unwrap_or_default();
                match search::search(state.store.as_ref(), resource_type, &filters, Sort::Id) {
                    Ok(found) if found.len() == 1 => Action::Exists {
                        resource_type: resource_type.to_string(),
                        resource: found.into_iter().next().expect("one"),
                    },
                    Ok(found) if found.len() > 1 => bad(
                        StatusCode::PRECONDITION_FAILED,
                        "multiple-matches",
                        format!(
                            "entry {index}: ifNoneExist `{criteria}` matches {} resources",
                            found.len()
                        ),
                    ),
                    Ok(_) => create_action(state, resource_type, resource, index),
                    Err(e) => bad(StatusCode::BAD_REQUEST, "invalid", format!("entry {index}: {e}")),
                }
            } else {
                create_action(state, resource_type, resource, index)
            }
        }
        ("PUT", [resource_type, id], Some(resource)) if params::is_served(resource_type) => {
            if resource["resourceType"] != *resource_type
                || resource["id"].as_str().is_some_and(|given| given != *id)
            {
                bad(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("entry {index}: the resource is not {resource_type}/{id}"),
                )
            } else if !rest::valid_id(id) {
                bad(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("entry {index}: `{id}` is not a FHIR id"),
                )
            } else {
                let if_match = entry["request"]["ifMatch"]
                    .as_str()
                    .and_then(|v| v.trim_start_matches("W/").trim_matches('"').parse().ok());
                let kept = if *resource_type == "Patient" {
                    state.put_patient(resource)
                } else {
                    Ok(resource)
                };
                match kept {
                    Ok(resource) => Action::Write(Write::Update {
                        resource_type: resource_type.to_string(),
                        id: id.to_string(),
                        resource,
                        if_match,
                    }),
                    Err(mut refused) => {
                        refused.message = format!("entry {index}: {}", refused.message);
                        Action::Bad(refused)
                    }
                }
            }
        }
        ("DELETE", [resource_type, id], _) if params::is_served(resource_type) => {
            Action::Write(Write::Delete {
                resource_type: resource_type.to_string(),
                id: id.to_string(),
            })
        }
        _ => bad(
            StatusCode::BAD_REQUEST,
            "not-supported",
            format!("entry {index}: `{method} {url}` is not an interaction served here"),
        ),
    };
    Entry { full_url, action }
}

fn create_action(state: &FhirState, resource_type: &str, resource: Value, index: usize) -> Action {
    match state.feed_write(resource_type, &resource) {
        Ok(Some(write)) => Action::Write(write),
        Ok(None) => Action::Create {
            resource_type: resource_type.to_string(),
            resource,
        },
        Err(mut refused) => {
            refused.message = format!("entry {index}: {}", refused.message);
            Action::Bad(refused)
        }
    }
}

/// What one entry came to.
type EntryResult = Result<Done, Refused>;

async fn transaction(
    state: &FhirState,
    headers: &HeaderMap,
    bundle: Value,
    base: &str,
    format: Format,
    atomic: bool,
) -> Response {
    let entries: Vec<Entry> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, entry)| read_entry(state, entry, i))
        .collect();
    if atomic
        && let Some(refused) = entries.iter().find_map(|e| match &e.action {
            Action::Bad(refused) => Some(refused.clone()),
            _ => None,
        })
    {
        return rest::refusal(format, &refused);
    }
    let kind = if atomic { "FHIR transaction" } else { "FHIR batch" };
    let journal = bundle.to_string();
    let key = Key::from_header(headers, kind, &journal);
    let base_owned = base.to_string();
    let answer = state
        .committer
        .run(kind, "fhir", move |ctx| {
            idempotent::once(ctx, key.as_ref(), journal, |ctx| {
                let results = run_entries(ctx.tx, entries, ctx.seq, ctx.now, atomic);
                let failed = results.iter().flatten().find_map(|r| r.as_ref().err()).cloned();
                if let Some(refused) = failed.filter(|_| atomic) {
                    return Err(refused);
                }
                let ids: Vec<String> = results
                    .iter()
                    .flatten()
                    .filter_map(|r| r.as_ref().ok())
                    .flat_map(|done| done.patients.clone())
                    .collect();
                // Each write's response entry; reads (null) are answered after the commit.
                let entries: Vec<Value> = results
                    .into_iter()
                    .map(|result| match result {
                        None => Value::Null,
                        Some(result) => response_entry(&base_owned, result),
                    })
                    .collect();
                Ok((Value::Array(entries), ids))
            })
        })
        .await;
    let response_entries: Vec<Value> = match answer {
        Some(Ok(Ok(Value::Array(entries)))) => entries,
        Some(Ok(Ok(_))) => vec![],
        Some(Ok(Err(refused))) => return rest::refusal(format, &refused),
        Some(Err(reason)) => {
            return format::error(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                &reason.to_string(),
            );
        }
        None => {
            return format::error(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "shutting down",
            );
        }
    };
    // Reads run once the writes are in.
    let response_entries: Vec<Value> = response_entries
        .into_iter()
        .zip(bundle["entry"].as_array().cloned().unwrap_or_default())
        .map(|(answered, asked)| {
            if answered.is_null() {
                read_entry_response(state, base, asked["request"]["url"].as_str().unwrap_or(""))
            } else {
                answered
            }
        })
        .collect();
    let body = json!({
        "resourceType": "Bundle",
        "type": if atomic { "transaction-response" } else { "batch-response" },
        "entry": response_entries,
    });
    format::respond(format, StatusCode::OK, Some(&body), vec![])
}

/// Applies the entries in the order FHIR sets for a transaction (deletes, creates, updates;
/// reads are left as None for later). A transaction stops at the first failure (its writes are
/// then dropped by the caller); a batch applies each entry in its own overlay.
fn run_entries(
    tx: &mut Overlay<'_>,
    entries: Vec<Entry>,
    seq: u64,
    now: &str,
    atomic: bool,
) -> Vec<Option<EntryResult>> {
    let mut results: Vec<Option<EntryResult>> = entries.iter().map(|_| None).collect();
    let mut n: u32 = 0;
    // The ids of creates, given first so references to them can be rewritten.
    let mut resolved: HashMap<String, String> = HashMap::new();
    let mut planned: Vec<(usize, Write)> = vec![];
    let mut feeds: Vec<(usize, Write)> = vec![];
    let urls: Vec<Option<String>> = entries.iter().map(|e| e.full_url.clone()).collect();
    for (i, entry) in entries.into_iter().enumerate() {
        match entry.action {
            Action::Bad(refused) => results[i] = Some(Err(refused)),
            Action::Read => {}
            Action::Exists {
                resource_type,
                resource,
            } => {
                if let Some(url) = &entry.full_url {
                    resolved.insert(
                        url.clone(),
                        format!("{resource_type}/{}", resource["id"].as_str().unwrap_or("")),
                    );
                }
                results[i] = Some(Ok(Done {
                    effect: Effect::Updated,
                    location: Some(write::location(&resource_type, &resource)),
                    resource: Some(resource),
                    patients: vec![],
                }));
            }
            Action::Create {
                resource_type,
                resource,
            } => {
                let id = if resource_type == "Patient" {
                    patients::new_id(tx, &resource, seq, n).unwrap_or_else(|_| write::new_id(seq, 9999))
                } else {
                    write::new_id(seq, n)
                };
                n += 1;
                if let Some(url) = &entry.full_url {
                    resolved.insert(url.clone(), format!("{resource_type}/{id}"));
                }
                planned.push((
                    i,
                    Write::Update {
                        resource_type,
                        id,
                        resource,
                        if_match: None,
                    },
                ));
            }
            Action::Write(write @ Write::Feed { .. }) => feeds.push((i, write)),
            Action::Write(write) => planned.push((i, write)),
        }
    }
    // Order: deletes, then creates and updates in the Bundle's order; feeds (Patients through the
    // feed mapping) go first among the creates so others can reference them.
    planned.sort_by_key(|(i, write)| (!matches!(write, Write::Delete { .. }), *i));
    let order: Vec<(usize, Write)> = planned
        .iter()
        .filter(|(_, w)| matches!(w, Write::Delete { .. }))
        .cloned()
        .chain(feeds)
        .chain(
            planned
                .iter()
                .filter(|(_, w)| !matches!(w, Write::Delete { .. }))
                .cloned(),
        )
        .collect();
    for (i, write) in order {
        let write = match write {
            Write::Update {
                resource_type,
                id,
                mut resource,
                if_match,
            } => {
                rewrite_references(&mut resource, &resolved);
                Write::Update {
                    resource_type,
                    id,
                    resource,
                    if_match,
                }
            }
            Write::Create {
                resource_type,
                mut resource,
            } => {
                rewrite_references(&mut resource, &resolved);
                Write::Create {
                    resource_type,
                    resource,
                }
            }
            other => other,
        };
        let result = if atomic {
            write::apply(tx, write, seq, &mut n, now).map_err(Refused::from)
        } else {
            let mut staged = Overlay::new(tx);
            let result = write::apply(&mut staged, write, seq, &mut n, now).map_err(Refused::from);
            if result.is_ok() {
                let staged = staged.into_staged();
                tx.absorb_staged(staged);
            }
            result
        };
        // A fed Patient's id is known only once it is applied.
        if let (Ok(done), Some(url)) = (&result, &urls[i])
            && let Some(first) = done.patients.first()
        {
            resolved
                .entry(url.clone())
                .or_insert_with(|| format!("Patient/{first}"));
        }
        let failed = result.is_err();
        results[i] = Some(result);
        if failed && atomic {
            break;
        }
    }
    results
}

/// Replaces every `reference` naming a resolved fullUrl with `Type/id`.
fn rewrite_references(value: &mut Value, resolved: &HashMap<String, String>) {
    if resolved.is_empty() {
        return;
    }
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                // A Reference's `reference`, and an Attachment's `url` (a Binary in the Bundle).
                if (key == "reference" || key == "url")
                    && let Some(target) = child.as_str().and_then(|r| resolved.get(r))
                {
                    *child = Value::String(target.clone());
                } else {
                    rewrite_references(child, resolved);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_references(item, resolved)),
        _ => {}
    }
}

fn status_line(status: StatusCode) -> String {
    format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
}

fn response_entry(base: &str, result: EntryResult) -> Value {
    match result {
        Ok(done) => {
            let mut response = json!({ "status": status_line(status_of(done.effect)) });
            if let Some(location) = &done.location {
                response["location"] = json!(format!("{base}/{location}"));
            }
            let mut entry = json!({});
            if let Some(resource) = &done.resource {
                response["etag"] = json!(format!("W/\"{}\"", resources::version_of(resource)));
                response["lastModified"] = resource["meta"]["lastUpdated"].clone();
                entry["fullUrl"] = json!(format!(
                    "{base}/{}/{}",
                    resource["resourceType"].as_str().unwrap_or(""),
                    resource["id"].as_str().unwrap_or("")
                ));
                entry["resource"] = resource.clone();
            }
            entry["response"] = response;
            entry
        }
        Err(refused) => json!({
            "response": {
                "status": status_line(refused.status),
                "outcome": crate::fhir::outcome::operation_outcome("error", refused.code, &refused.message),
            }
        }),
    }
}

/// The answer to a `GET` entry: a read (`Type/id`) or a search (`Type?params`).
fn read_entry_response(state: &FhirState, base: &str, url: &str) -> Value {
    let url = url.trim_start_matches('/');
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.split('/').collect();
    let refused = |status: StatusCode, code: &'static str, message: String| {
        response_entry(base, Err(Refused::new(status, code, message)))
    };
    match parts.as_slice() {
        [resource_type, id] => match resources::read(state.store.as_ref(), resource_type, id) {
            Ok(Some(Current::Live(resource))) => json!({
                "fullUrl": format!("{base}/{resource_type}/{id}"),
                "resource": resource,
                "response": { "status": "200 OK", "etag": format!("W/\"{}\"", resources::version_of(&resource)) },
            }),
            Ok(Some(Current::Deleted { .. })) => {
                refused(StatusCode::GONE, "deleted", format!("{path} was deleted"))
            }
            Ok(None) => refused(StatusCode::NOT_FOUND, "not-found", format!("{path} is not known")),
            Err(e) => refused(StatusCode::INTERNAL_SERVER_ERROR, "exception", e.to_string()),
        },
        [resource_type] => {
            let filters: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
            match search::search(state.store.as_ref(), resource_type, &filters, Sort::Id) {
                Ok(found) => json!({
                    "resource": crate::fhir::bundle::searchset_page(base, resource_type, &filters, &found, 0, found.len()),
                    "response": { "status": "200 OK" },
                }),
                Err(e) => refused(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
            }
        }
        _ => refused(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("`{url}` is not a read"),
        ),
    }
}

/// An ITI-93 patient feed: its Patients applied as one command (merges included), answered with
/// a response message. A resent message (same MessageHeader id from the same source) gets the
/// first answer again and changes nothing.
async fn message(state: &FhirState, bundle: Value, base: &str, format: Format) -> Response {
    let header = &bundle["entry"][0]["resource"];
    if header["resourceType"] != "MessageHeader" {
        return format::error(
            format,
            StatusCode::BAD_REQUEST,
            "invalid",
            "a message Bundle starts with a MessageHeader",
        );
    }
    let event = header["eventUri"]
        .as_str()
        .or_else(|| header["eventCoding"]["code"].as_str())
        .unwrap_or("");
    if event != PMIR_FEED {
        return format::error(
            format,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-supported",
            &format!("message event `{event}` is not processed here (only {PMIR_FEED})"),
        );
    }
    let Some(mapping) = state.patient_feed_mapping.clone() else {
        return format::error(
            format,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-supported",
            "no patient feed mapping is configured (fhir.patient_feed_mapping)",
        );
    };
    let history = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Bundle" && r["type"] == "history");
    let Some(history) = history else {
        return format::error(
            format,
            StatusCode::BAD_REQUEST,
            "required",
            "the message has no history Bundle of Patients",
        );
    };
    // Each Patient as the feed mapping sees it, and merges resolved to their survivor.
    let entries: Vec<Value> = history["entry"].as_array().cloned().unwrap_or_default();
    let by_url: HashMap<String, Value> = entries
        .iter()
        .filter_map(|e| Some((e["fullUrl"].as_str()?.to_string(), e["resource"].clone())))
        .collect();
    let mut changes = vec![];
    for (i, entry) in entries.iter().enumerate() {
        let resource = &entry["resource"];
        if resource["resourceType"] != "Patient" {
            return format::error(
                format,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                &format!("history entry {i} is not a Patient"),
            );
        }
        let change = match state.feed_change(&mapping, resource) {
            Ok(change) => change,
            Err(refused) => return rest::refusal(format, &refused),
        };
        let survivor = resource["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["type"] == "replaced-by")
            .and_then(|l| l["other"]["reference"].as_str());
        let change = match (change, survivor) {
            (ResourceChange::Upsert { resource: patient }, Some(survivor)) => {
                let survivor_resource = match by_url.get(survivor) {
                    Some(resource) => match state.feed_change(&mapping, resource) {
                        Ok(ResourceChange::Upsert { resource }) => resource,
                        Ok(_) => resource.clone(),
                        Err(refused) => return rest::refusal(format, &refused),
                    },
                    None => {
                        let id = params::reference_key(survivor);
                        let id = id.trim_start_matches("Patient/");
                        match patients::read(state.store.as_ref(), id) {
                            Ok(Some(stored)) => stored,
                            _ => {
                                return format::error(
                                    format,
                                    StatusCode::UNPROCESSABLE_ENTITY,
                                    "not-found",
                                    &format!(
                                        "history entry {i} is replaced by `{survivor}`, which is not known"
                                    ),
                                );
                            }
                        }
                    }
                };
                let retired = patient["identifier"].as_array().cloned().unwrap_or_default();
                ResourceChange::Merge {
                    survivor: survivor_resource,
                    retired,
                }
            }
            (change, _) => change,
        };
        changes.push(change);
    }
    let source = header["source"]["endpoint"].as_str().unwrap_or("").to_string();
    let message_id = header["id"].as_str().unwrap_or("").to_string();
    // The response names the message it answers by its MessageHeader.id (FHIR messaging).
    if message_id.is_empty() {
        return format::error(
            format,
            StatusCode::BAD_REQUEST,
            "required",
            "the MessageHeader has no id: the response message names the message it answers by it",
        );
    }
    let header = header.clone();
    let base = base.to_string();
    let journal = bundle.to_string();
    // The message is keyed by its source and MessageHeader id; its content is its history.
    let key = Key {
        scope: format!("fhir|{source}"),
        key: message_id,
        fingerprint: idempotency::fingerprint_lines(&history.to_string()),
    };
    let answer = state
        .committer
        .run("FHIR PMIR patient feed", source, move |ctx| {
            idempotent::once(ctx, Some(&key), journal, |ctx| {
                let mut entries = vec![];
                let mut ids = vec![];
                for (i, change) in changes.into_iter().enumerate() {
                    let mut n = 0;
                    match write::apply(ctx.tx, Write::Feed { change }, ctx.seq, &mut n, ctx.now) {
                        Ok(done) => {
                            ids.extend(done.patients.iter().cloned());
                            entries.push(response_entry(&base, Ok(done)));
                        }
                        Err(refused) => {
                            let mut refused = Refused::from(refused);
                            refused.message = format!("history entry {i}: {}", refused.message);
                            return Err(refused);
                        }
                    }
                }
                Ok((response_message(&header, &base, ctx.seq, entries), ids))
            })
        })
        .await;
    match answer {
        Some(Ok(Ok(response))) => format::respond(format, StatusCode::OK, Some(&response), vec![]),
        Some(Ok(Err(refused))) => rest::refusal(format, &refused),
        Some(Err(reason)) => format::error(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            &reason.to_string(),
        ),
        None => format::error(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            "shutting down",
        ),
    }
}

/// The response message of a PMIR feed, as the PMIR response profile has it: a MessageHeader
/// with the response event, no destination, and `response` naming the request's MessageHeader
/// id with the code `ok`; then a history Bundle with the outcome of each Patient (its focus).
/// The ids are `urn:uuid`s made from the journal sequence and the request id, so a replayed
/// journal answers the same.
fn response_message(request: &Value, base: &str, seq: u64, entries: Vec<Value>) -> Value {
    let request_id = request["id"].as_str().unwrap_or("");
    let id = |part: &str| name_uuid(&format!("pmir-response\0{seq}\0{request_id}\0{part}"));
    let (bundle, header, history) = (id("bundle"), id("header"), id("history"));
    json!({
        "resourceType": "Bundle",
        "id": bundle,
        "identifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{bundle}") },
        "type": "message",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "entry": [
            {
                "fullUrl": format!("urn:uuid:{header}"),
                "resource": {
                    "resourceType": "MessageHeader",
                    "id": header,
                    "eventUri": PMIR_FEED_RESPONSE,
                    "source": { "endpoint": base },
                    "response": { "identifier": request_id, "code": "ok" },
                    "focus": [{ "reference": format!("urn:uuid:{history}") }],
                    "definition": PMIR_RESPONSE_DEFINITION,
                }
            },
            {
                "fullUrl": format!("urn:uuid:{history}"),
                "resource": { "resourceType": "Bundle", "id": history, "type": "history", "entry": entries }
            }
        ]
    })
}

/// A UUID (RFC 9562 version 8: its bits are ours to choose) from the SHA-256 of `seed`, in the
/// lower-case form `urn:uuid:` takes.
fn name_uuid(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut bytes: [u8; 16] = [0; 16];
    bytes.copy_from_slice(&Sha256::digest(seed.as_bytes())[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::validate;

    #[test]
    fn references_to_resolved_full_urls_are_rewritten_everywhere() {
        let mut resource = json!({
            "for": { "reference": "urn:uuid:a" },
            "input": [{ "valueReference": { "reference": "urn:uuid:b" } }, { "valueReference": { "reference": "Patient/x" } }],
            "payload": [{ "contentAttachment": { "url": "urn:uuid:c" } }]
        });
        let resolved = HashMap::from([
            ("urn:uuid:a".to_string(), "Patient/p1".to_string()),
            ("urn:uuid:b".to_string(), "DocumentReference/7-0".to_string()),
            ("urn:uuid:c".to_string(), "Binary/7-1".to_string()),
        ]);
        rewrite_references(&mut resource, &resolved);
        assert_eq!(resource["for"]["reference"], "Patient/p1");
        assert_eq!(
            resource["input"][0]["valueReference"]["reference"],
            "DocumentReference/7-0"
        );
        assert_eq!(resource["input"][1]["valueReference"]["reference"], "Patient/x");
        assert_eq!(
            resource["payload"][0]["contentAttachment"]["url"], "Binary/7-1",
            "an attachment's file"
        );
    }

    #[test]
    fn response_ids_are_valid_urn_uuids_and_stable() {
        let a = name_uuid("x");
        assert_eq!(a, name_uuid("x"));
        assert_ne!(a, name_uuid("y"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "{a}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{a}");
        assert!(validate::validate(&json!({ "resourceType": "Bundle", "type": "message", "entry": [{ "fullUrl": format!("urn:uuid:{a}"), "resource": { "resourceType": "MessageHeader", "eventUri": PMIR_FEED_RESPONSE, "source": { "endpoint": "http://x" } } }] })).iter().all(|i| !validate::has_errors(std::slice::from_ref(i))));
    }

    #[test]
    fn the_validator_is_applied_to_bundles_too() {
        let issues =
            validate::validate(&json!({ "resourceType": "Bundle", "type": "transaction", "entry": "nope" }));
        assert!(validate::has_errors(&issues));
    }
}
