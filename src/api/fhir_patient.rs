//! `GET /fhir/Patient/{id}` and `GET /fhir/Patient?identifier=|email=|phone=`.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::{StoreRef, fhir_error, fhir_json};
use crate::domain::patients;
use crate::fhir::bundle::searchset;

const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 1000;

pub async fn read(State(store): State<StoreRef>, Path(id): Path<String>) -> Response {
    match patients::read(store.as_ref(), &id) {
        Ok(Some(patient)) => {
            let mut response = fhir_json(StatusCode::OK, &patient);
            if let Some(version) = patient["meta"]["versionId"].as_str()
                && let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version}\""))
            {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Ok(None) => fhir_error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("Patient/{id} is not known"),
        ),
        Err(e) => fhir_error(StatusCode::INTERNAL_SERVER_ERROR, "exception", &e.to_string()),
    }
}

pub async fn search(
    State(store): State<StoreRef>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let mut count = DEFAULT_COUNT;
    let mut sets: Vec<Vec<Value>> = vec![];
    for (name, value) in &params {
        let found = match name.as_str() {
            "_count" => match value.parse::<usize>() {
                Ok(n) => {
                    count = n.min(MAX_COUNT);
                    continue;
                }
                Err(_) => return invalid(&format!("_count must be a whole number, not `{value}`")),
            },
            "_format" if value == "json" || value.contains("json") => continue,
            "identifier" => {
                let (system, value) = match value.split_once('|') {
                    Some((system, value)) => ((!system.is_empty()).then_some(system), value),
                    None => (None, value.as_str()),
                };
                patients::search_identifier(store.as_ref(), system, value, MAX_COUNT)
            }
            "email" => patients::search_email(store.as_ref(), value, MAX_COUNT),
            "phone" => patients::search_phone(store.as_ref(), value, MAX_COUNT),
            other => {
                return invalid(&format!(
                    "search parameter `{other}` is not supported here (identifier, email, phone, _count)"
                ));
            }
        };
        match found {
            Ok(found) => sets.push(found),
            Err(e) => return fhir_error(StatusCode::INTERNAL_SERVER_ERROR, "exception", &e.to_string()),
        }
    }
    let Some(mut matches) = sets.first().cloned() else {
        return invalid("give at least one of identifier, email or phone");
    };
    matches.retain(|p| sets[1..].iter().all(|set| set.iter().any(|q| q["id"] == p["id"])));
    matches.truncate(count);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}/fhir");
    let self_url = if query.is_empty() {
        format!("{base}/Patient")
    } else {
        format!("{base}/Patient?{query}")
    };
    fhir_json(StatusCode::OK, &searchset(&base, &self_url, matches))
}

fn invalid(diagnostics: &str) -> Response {
    fhir_error(StatusCode::BAD_REQUEST, "invalid", diagnostics)
}
