//! The FHIR REST interactions on one resource type: read, vread, history, search, create,
//! update and delete. Writes are checked (format, type, id, structure) before they reach the
//! committer, run there as one command each (journaled, committed with the deliveries they
//! cause, answered after the sync), and answered per `Prefer`.

// The error of a check here is the finished answer to send; it is the cold path, so its size
// does not matter.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::format::{self, Format};
use super::idempotent::{self, Key};
use super::refused::{Refused, status_of};
use super::{FhirState, base_url, pixm};
use crate::core::{Prepared, commit_time};
use crate::domain::mpi::patients;
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::write::{self, Write};
use crate::domain::resources::{self, Current, params};
use crate::fhir::bundle::{history_page, searchset_page};
use crate::fhir::validate;

const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 1000;

type Params = Query<Vec<(String, String)>>;

/// `_format` of a query, if any.
fn format_param(params: &[(String, String)]) -> Option<&str> {
    params
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.as_str())
}

/// The answer format, or the error answer (in JSON) when `_format` is unknown.
fn answer_format(headers: &HeaderMap, params: &[(String, String)]) -> Result<Format, Response> {
    Format::of_response(headers, format_param(params))
        .map_err(|e| format::error(Format::Json, StatusCode::NOT_ACCEPTABLE, "not-supported", &e))
}

/// What every interaction on a type checks first: the answer format, and that the type is
/// served. The error is the answer to give.
fn prelude(
    headers: &HeaderMap,
    params: &[(String, String)],
    resource_type: &str,
) -> Result<Format, Response> {
    let format = answer_format(headers, params)?;
    served(resource_type, format)?;
    Ok(format)
}

/// The type is one we serve, or the 404 that says so.
fn served(resource_type: &str, format: Format) -> Result<(), Response> {
    if params::is_served(resource_type) {
        return Ok(());
    }
    Err(format::error(
        format,
        StatusCode::NOT_FOUND,
        "not-supported",
        &format!(
            "resource type `{resource_type}` is not served here (served: {})",
            params::TYPES.join(", ")
        ),
    ))
}

pub async fn read(
    State(state): State<FhirState>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let format = match answer_format(&headers, &params) {
        Ok(format) => format,
        Err(response) => return response,
    };
    if resource_type == "Patient" && id == "$ihe-pix" {
        return pixm::query(&state, &params, format);
    }
    if let Err(response) = served(&resource_type, format) {
        return response;
    }
    match resources::read(state.store.as_ref(), &resource_type, &id) {
        Ok(Some(Current::Live(resource))) => {
            let etag = etag(&resource);
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == etag)
            {
                return format::respond(format, StatusCode::NOT_MODIFIED, None, vec![(header::ETAG, etag)]);
            }
            format::respond(
                format,
                StatusCode::OK,
                Some(&resource),
                version_headers(&resource),
            )
        }
        Ok(Some(Current::Deleted { version })) => format::error(
            format,
            StatusCode::GONE,
            "deleted",
            &format!("{resource_type}/{id} was deleted (version {version})"),
        ),
        Ok(None) => format::error(
            format,
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{resource_type}/{id} is not known"),
        ),
        Err(e) => format::error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}

pub async fn vread(
    State(state): State<FhirState>,
    Path((resource_type, id, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let format = match prelude(&headers, &params, &resource_type) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let Ok(number) = version.parse::<u64>() else {
        return format::error(
            format,
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("`{version}` is not a version"),
        );
    };
    match resources::vread(state.store.as_ref(), &resource_type, &id, number) {
        Ok(Some(resource)) if resource.get("deleted").is_some() => format::error(
            format,
            StatusCode::GONE,
            "deleted",
            &format!("version {number} of {resource_type}/{id} is its deletion"),
        ),
        Ok(Some(resource)) => format::respond(
            format,
            StatusCode::OK,
            Some(&resource),
            version_headers(&resource),
        ),
        Ok(None) => format::error(
            format,
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{resource_type}/{id} has no version {number}"),
        ),
        Err(e) => format::error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}

pub async fn history(
    State(state): State<FhirState>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let format = match prelude(&headers, &params, &resource_type) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let (count, offset) = match count_param(&params).and_then(|c| Ok((c, offset_param(&params)?))) {
        Ok(paging) => paging,
        Err(e) => return format::error(format, StatusCode::BAD_REQUEST, "invalid", &e),
    };
    let store = state.store.clone();
    let (of_type, of_id) = (resource_type.clone(), id.clone());
    // A long history is a scan: off the threads that serve connections.
    let found = tokio::task::spawn_blocking(move || {
        resources::history(store.as_ref(), &of_type, &of_id, offset, count)
    })
    .await;
    match found {
        Ok(Ok(page)) if page.total == 0 => format::error(
            format,
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{resource_type}/{id} is not known"),
        ),
        Ok(Ok(page)) => {
            let bundle = history_page(
                &base_url(&headers),
                &format!("{resource_type}/{id}"),
                &params,
                &page.versions,
                page.total,
                offset,
                count,
            );
            format::respond(format, StatusCode::OK, Some(&bundle), vec![])
        }
        Ok(Err(e)) => format::error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
        Err(e) => format::error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}

fn count_param(params: &[(String, String)]) -> Result<usize, String> {
    match params.iter().find(|(k, _)| k == "_count") {
        None => Ok(DEFAULT_COUNT),
        Some((_, v)) => v
            .parse::<usize>()
            .map(|n| n.min(MAX_COUNT))
            .map_err(|_| format!("_count must be a whole number, not `{v}`")),
    }
}

fn offset_param(params: &[(String, String)]) -> Result<usize, String> {
    match params.iter().find(|(k, _)| k == "_offset") {
        None => Ok(0),
        Some((_, v)) => v
            .parse::<usize>()
            .map_err(|_| format!("_offset must be a whole number, not `{v}`")),
    }
}

/// `GET [type]?params` and `POST [type]/_search` (form parameters).
pub async fn search(
    State(state): State<FhirState>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    search_with(state, resource_type, headers, params).await
}

pub async fn search_post(
    State(state): State<FhirState>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    Query(mut params): Params,
    body: Bytes,
) -> Response {
    match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        Ok(form) => params.extend(form),
        Err(e) => {
            return format::error(
                Format::Json,
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("the body is not a form of search parameters: {e}"),
            );
        }
    }
    search_with(state, resource_type, headers, params).await
}

async fn search_with(
    state: FhirState,
    resource_type: String,
    headers: HeaderMap,
    params: Vec<(String, String)>,
) -> Response {
    let format = match prelude(&headers, &params, &resource_type) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let mut count = DEFAULT_COUNT;
    let mut offset = 0;
    let mut sort = Sort::default();
    let mut filters = vec![];
    let mut ignored = vec![];
    let mut includes = vec![];
    for (name, value) in &params {
        let parsed: Result<(), String> = match name.as_str() {
            "_include" => include_param(&resource_type, value).map(|p| includes.push(p)),
            "_count" => count_param(&params).map(|c| count = c),
            "_offset" => offset_param(&params).map(|o| offset = o),
            "_sort" => Sort::parse(value).map(|s| sort = s).map_err(|e| e.to_string()),
            "_format" | "_pretty" | "_summary" | "_total" => Ok(()),
            _ if search::is_supported(&resource_type, name) => {
                filters.push((name.clone(), value.clone()));
                Ok(())
            }
            _ => {
                if !ignored.contains(name) {
                    ignored.push(name.clone());
                }
                Ok(())
            }
        };
        if let Err(e) = parsed {
            return format::error(format, StatusCode::BAD_REQUEST, "invalid", &e);
        }
    }
    // FHIR R4 search 3.1.1.5.6: an unknown parameter is ignored unless the client asks for
    // strict handling; the searchset then says which were ignored.
    if !ignored.is_empty() && prefers_strict(&headers) {
        return format::error(
            format,
            StatusCode::BAD_REQUEST,
            "not-supported",
            &format!(
                "{} (Prefer: handling=strict)",
                ignored_message(&resource_type, &ignored)
            ),
        );
    }
    // Point lookups (by id or identifier) take microseconds and run here; anything that may
    // scan an index goes to the blocking pool, off the threads that serve connections.
    let point_lookup = !filters.is_empty()
        && filters
            .iter()
            .all(|(name, _)| name == "_id" || name == "identifier");
    let found = if point_lookup {
        Ok(search::search(
            state.store.as_ref(),
            &resource_type,
            &filters,
            sort,
        ))
    } else {
        let store = state.store.clone();
        let resource_type = resource_type.clone();
        tokio::task::spawn_blocking(move || search::search(store.as_ref(), &resource_type, &filters, sort))
            .await
    };
    match found {
        Ok(Ok(matches)) => {
            let base = base_url(&headers);
            // The links repeat the search as it was done: without the parameters it ignored.
            let used: Vec<(String, String)> = params
                .iter()
                .filter(|(name, _)| !ignored.contains(name))
                .cloned()
                .collect();
            let mut bundle = searchset_page(&base, &resource_type, &used, &matches, offset, count);
            if let Err(e) = add_includes(state.store.as_ref(), &base, &includes, &mut bundle) {
                return format::error(
                    format,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    &e.to_string(),
                );
            }
            if !ignored.is_empty()
                && let Some(entries) = bundle["entry"].as_array_mut()
            {
                let outcome = crate::fhir::outcome::operation_outcome(
                    "warning",
                    "not-supported",
                    &ignored_message(&resource_type, &ignored),
                );
                entries.push(json!({ "resource": outcome, "search": { "mode": "outcome" } }));
            }
            format::respond(format, StatusCode::OK, Some(&bundle), vec![])
        }
        Ok(Err(SearchError::Invalid(e))) => format::error(format, StatusCode::BAD_REQUEST, "invalid", &e),
        Ok(Err(e)) => format::error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
        Err(e) => format::error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}

/// `Prefer: handling=strict`: the client wants an unknown search parameter refused.
fn prefers_strict(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=strict"))
}

/// What a search says of the parameters it does not know.
fn ignored_message(resource_type: &str, ignored: &[String]) -> String {
    let names: Vec<String> = ignored.iter().map(|n| format!("`{n}`")).collect();
    format!(
        "search parameter(s) {} not supported for {resource_type}, ignored",
        names.join(", ")
    )
}

/// Reads and checks a request body: its format, that it is a `resource_type`, that it is
/// structurally valid. The error is the answer to give.
pub fn checked_body(
    headers: &HeaderMap,
    body: &[u8],
    resource_type: &str,
    format: Format,
) -> Result<Value, Response> {
    let request_format = Format::of_request(headers)
        .map_err(|e| format::error(format, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-supported", &e))?;
    let resource = format::parse_body(request_format, body)
        .map_err(|e| format::error(format, StatusCode::BAD_REQUEST, "structure", &e))?;
    let given = resource["resourceType"].as_str().unwrap_or("");
    if given != resource_type {
        return Err(format::error(
            format,
            StatusCode::BAD_REQUEST,
            "invalid",
            &format!("the body is a `{given}`, not a {resource_type}"),
        ));
    }
    let issues = validate::validate(&resource);
    if validate::has_errors(&issues) {
        return Err(format::respond(
            format,
            StatusCode::BAD_REQUEST,
            Some(&validate::operation_outcome(&issues)),
            vec![],
        ));
    }
    Ok(resource)
}

pub async fn create(
    State(state): State<FhirState>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let format = match prelude(&headers, &params, &resource_type) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let resource = match checked_body(&headers, &body, &resource_type, format) {
        Ok(resource) => resource,
        Err(response) => return response,
    };
    if let Some(refused) = state.message_refused(&resource_type, &resource) {
        return refusal(format, &refused);
    }
    // Conditional create: nothing is created when the criteria already match one resource.
    if let Some(criteria) = headers.get("if-none-exist").and_then(|v| v.to_str().ok()) {
        match conditional_match(&state, &resource_type, criteria) {
            Ok(None) => {}
            Ok(Some(existing)) => {
                return write_answer(&headers, format, StatusCode::OK, &resource_type, Some(&existing));
            }
            Err(response) => return response,
        }
    }
    let write = match state.feed_write(&resource_type, &resource) {
        Ok(Some(write)) => write,
        Ok(None) => Write::Create {
            resource_type: resource_type.clone(),
            resource: resource.clone(),
        },
        Err(refused) => return refusal(format, &refused),
    };
    let journal = resource.to_string();
    write_and_answer(&state, &headers, format, "create", &resource_type, journal, write).await
}

/// The one resource `criteria` (a search query) matches, none, or the 412 for several.
fn conditional_match(
    state: &FhirState,
    resource_type: &str,
    criteria: &str,
) -> Result<Option<Value>, Response> {
    let filters: Vec<(String, String)> = serde_urlencoded::from_str(criteria.trim_start_matches('?'))
        .map_err(|e| format::error(Format::Json, StatusCode::BAD_REQUEST, "invalid", &e.to_string()))?;
    match search::search(state.store.as_ref(), resource_type, &filters, Sort::Id) {
        Ok(found) if found.len() > 1 => Err(format::error(
            Format::Json,
            StatusCode::PRECONDITION_FAILED,
            "multiple-matches",
            &format!("If-None-Exist `{criteria}` matches {} resources", found.len()),
        )),
        Ok(found) => Ok(found.into_iter().next()),
        Err(SearchError::Invalid(e)) => Err(format::error(
            Format::Json,
            StatusCode::BAD_REQUEST,
            "invalid",
            &e,
        )),
        Err(e) => Err(format::error(
            Format::Json,
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        )),
    }
}

pub async fn update(
    State(state): State<FhirState>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let format = match prelude(&headers, &params, &resource_type) {
        Ok(format) => format,
        Err(response) => return response,
    };
    if !valid_id(&id) {
        return format::error(
            format,
            StatusCode::BAD_REQUEST,
            "invalid",
            &format!("`{id}` is not a FHIR id"),
        );
    }
    let resource = match checked_body(&headers, &body, &resource_type, format) {
        Ok(resource) => resource,
        Err(response) => return response,
    };
    if let Some(given) = resource["id"].as_str()
        && given != id
    {
        return format::error(
            format,
            StatusCode::BAD_REQUEST,
            "invalid",
            &format!("the body's id `{given}` is not the id in the URL `{id}`"),
        );
    }
    let if_match = match if_match(&headers) {
        Ok(version) => version,
        Err(e) => return format::error(format, StatusCode::BAD_REQUEST, "invalid", &e),
    };
    if let Some(refused) = state.message_refused(&resource_type, &resource) {
        return refusal(format, &refused);
    }
    let journal = resource.to_string();
    let resource = if resource_type == "Patient" {
        match state.put_patient(resource) {
            Ok(resource) => resource,
            Err(refused) => return refusal(format, &refused),
        }
    } else {
        resource
    };
    let write = Write::Update {
        resource_type: resource_type.clone(),
        id,
        resource,
        if_match,
    };
    write_and_answer(&state, &headers, format, "update", &resource_type, journal, write).await
}

pub async fn delete(
    State(state): State<FhirState>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let format = match prelude(&headers, &params, &resource_type) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let write = Write::Delete {
        resource_type: resource_type.clone(),
        id: id.clone(),
    };
    match execute(
        &state,
        &headers,
        format,
        format!("FHIR delete {resource_type}"),
        format!("{resource_type}/{id}"),
        write,
    )
    .await
    {
        Ok(done) => format::respond(format, done.status, None, vec![]),
        Err(response) => response,
    }
}

/// Runs a create or update and answers it (status, headers, body as `Prefer` asks).
async fn write_and_answer(
    state: &FhirState,
    headers: &HeaderMap,
    format: Format,
    verb: &str,
    resource_type: &str,
    journal: String,
    write: Write,
) -> Response {
    let kind = format!("FHIR {verb} {resource_type}");
    match execute(state, headers, format, kind, journal, write).await {
        Ok(done) => write_answer(
            headers,
            format,
            done.status,
            resource_type,
            done.resource.as_ref(),
        ),
        Err(response) => response,
    }
}

/// What a write answers: its status and the resource.
pub struct Answer {
    pub status: StatusCode,
    pub resource: Option<Value>,
}

/// Runs one write as a command; the refusal or failure is the answer to give.
///
/// With an `Idempotency-Key` header a write is done once ([`idempotent`]).
async fn execute(
    state: &FhirState,
    headers: &HeaderMap,
    format: Format,
    kind: String,
    journal: String,
    write: Write,
) -> Result<Answer, Response> {
    let key = Key::from_header(headers, &kind, &journal);
    let prepared = prepare_write(state, &write);
    let answer = state
        .committer
        .run_prepared(kind, "fhir", prepared, move |ctx, prepared| {
            idempotent::once(ctx, key.as_ref(), journal, |ctx| {
                let done = ctx.apply_prepared(prepared, |ctx| {
                    write::apply(ctx.tx, write, ctx.seq, &mut 0, ctx.now)
                })?;
                let answer = json!({
                    "status": status_of(done.effect).as_u16(),
                    "location": done.location,
                    "resource": done.resource,
                });
                Ok((answer, done.patients))
            })
        })
        .await;
    match answer {
        Some(Ok(Ok(answer))) => Ok(Answer {
            status: StatusCode::from_u16(answer["status"].as_u64().unwrap_or(200) as u16)
                .unwrap_or(StatusCode::OK),
            resource: answer.get("resource").cloned().filter(|r| !r.is_null()),
        }),
        Some(Ok(Err(refused))) => Err(refusal(format, &refused)),
        // The store could not write it (a full disk, a failed sync): nothing changed, try again.
        Some(Err(reason)) => Err(format::error(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            &format!("the change could not be stored: {reason}"),
        )),
        None => Err(format::error(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            "the engine is shutting down",
        )),
    }
}

/// Works a write out against the store as it is, before the committer
/// (`CommitterHandle::prepare`), when
/// its outcome does not hang on the command's journal sequence: every write but a create that
/// takes its id from it (any type but a Patient, or a Patient without identifiers).
fn prepare_write(state: &FhirState, write: &Write) -> Option<Prepared<write::Done>> {
    if let Write::Create {
        resource_type,
        resource,
    } = write
        && (resource_type != "Patient" || patients::identifiers_of(resource).is_empty())
    {
        return None;
    }
    let now = commit_time();
    state.committer.prepare(state.store.as_ref(), |tx| {
        write::apply(tx, write.clone(), 0, &mut 0, &now)
    })
}

pub fn refusal(format: Format, refused: &Refused) -> Response {
    format::error(format, refused.status, refused.code, &refused.message)
}

/// The answer to a create or update: Location, ETag, Last-Modified, and the body `Prefer` asks.
fn write_answer(
    headers: &HeaderMap,
    format: Format,
    status: StatusCode,
    resource_type: &str,
    stored: Option<&Value>,
) -> Response {
    let Some(stored) = stored else {
        return format::respond(format, status, None, vec![]);
    };
    let mut extra = version_headers(stored);
    extra.push((
        header::LOCATION,
        format!("{}/{}", base_url(headers), write::location(resource_type, stored)),
    ));
    let prefer = headers.get("prefer").and_then(|v| v.to_str().ok()).unwrap_or("");
    if prefer.contains("return=minimal") {
        format::respond(format, status, None, extra)
    } else if prefer.contains("return=OperationOutcome") {
        let outcome = crate::fhir::outcome::operation_outcome(
            "information",
            "informational",
            &format!("{} written", write::location(resource_type, stored)),
        );
        format::respond(format, status, Some(&outcome), extra)
    } else {
        format::respond(format, status, Some(stored), extra)
    }
}

fn etag(resource: &Value) -> String {
    format!("W/\"{}\"", resources::version_of(resource))
}

/// ETag and Last-Modified of a stored resource.
fn version_headers(resource: &Value) -> Vec<(header::HeaderName, String)> {
    let mut headers = vec![(header::ETAG, etag(resource))];
    if let Some(updated) = resource["meta"]["lastUpdated"].as_str()
        && let Ok(time) = chrono::DateTime::parse_from_rfc3339(updated)
    {
        headers.push((
            header::LAST_MODIFIED,
            time.with_timezone(&chrono::Utc)
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        ));
    }
    headers
}

/// `If-Match: W/"3"` (or `"3"`) -> 3.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, String> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| "If-Match is not text".to_string())?;
    let version = text.trim().trim_start_matches("W/").trim_matches('"');
    version
        .parse()
        .map(Some)
        .map_err(|_| format!("If-Match `{text}` is not a version like W/\"3\""))
}

/// FHIR ids: 1 to 64 letters, digits, `-` and `.`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// `_include=<Type>:<reference parameter>` (`Observation:patient`): the parameter, which must be
/// a reference parameter of the searched type. `:iterate` and `*` are not supported.
fn include_param(resource_type: &str, value: &str) -> Result<&'static params::Param, String> {
    let mut parts = value.split(':');
    let (source, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let param = params::find(resource_type, name).filter(|p| p.kind == params::Kind::Reference);
    match param {
        Some(param) if source == resource_type && parts.next().is_none() => Ok(param),
        _ => Err(format!(
            "`_include={value}`: this server includes `{resource_type}:<reference parameter>` ({})",
            params::of_type(resource_type)
                .filter(|p| p.kind == params::Kind::Reference)
                .map(|p| format!("{resource_type}:{}", p.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Adds to a searchset page the resources its matches reference through each `_include`
/// parameter, once each, with search mode `include`.
fn add_includes(
    store: &dyn crate::store::Store,
    base: &str,
    includes: &[&'static params::Param],
    bundle: &mut Value,
) -> Result<(), crate::store::StoreError> {
    if includes.is_empty() {
        return Ok(());
    }
    let Some(entries) = bundle["entry"].as_array_mut() else {
        return Ok(());
    };
    let mut referenced: Vec<String> = vec![];
    for entry in entries.iter() {
        for param in includes {
            for reference in params::values(param, &entry["resource"]) {
                let wanted = param
                    .target
                    .is_none_or(|t| reference.starts_with(&format!("{t}/")));
                if wanted && !referenced.contains(&reference) {
                    referenced.push(reference);
                }
            }
        }
    }
    for reference in referenced {
        let Some((resource_type, id)) = reference.split_once('/') else {
            continue;
        };
        if let Some(Current::Live(resource)) = resources::read(store, resource_type, id)? {
            entries.push(json!({
                "fullUrl": crate::fhir::bundle::full_url(base, &resource),
                "resource": resource,
                "search": { "mode": "include" },
            }));
        }
    }
    Ok(())
}
