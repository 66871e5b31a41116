//! PIXm (IHE ITI-83): `GET /fhir/Patient/$ihe-pix?sourceIdentifier=system|value
//! [&targetSystem=uri ...]` answers a Parameters resource with the patient's identifiers in the
//! other domains (`targetIdentifier`) and its reference (`targetId`). 400 for a missing or
//! malformed source identifier or an unknown source domain, 403 for an unknown target domain,
//! 404 for an identifier nobody has.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::FhirState;
use super::format::{self, Format};
use crate::domain::mpi::pix::{PixError, cross_reference};

pub fn query(state: &FhirState, params: &[(String, String)], format: Format) -> Response {
    let mut source = None;
    let mut targets = vec![];
    for (name, value) in params {
        match name.as_str() {
            "sourceIdentifier" => source = Some(value.clone()),
            "targetSystem" => targets.extend(value.split(',').map(str::to_string)),
            "_format" => {}
            other => {
                return format::error(
                    format,
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    &format!("`{other}` is not a parameter of $ihe-pix (sourceIdentifier, targetSystem)"),
                );
            }
        }
    }
    let Some(source) = source else {
        return format::error(
            format,
            StatusCode::BAD_REQUEST,
            "required",
            "sourceIdentifier is required",
        );
    };
    let Some((system, value)) = source
        .split_once('|')
        .filter(|(s, v)| !s.is_empty() && !v.is_empty())
    else {
        return format::error(
            format,
            StatusCode::BAD_REQUEST,
            "invalid",
            &format!("sourceIdentifier `{source}` is not `system|value`"),
        );
    };
    match cross_reference(state.store.as_ref(), system, value, &targets) {
        Ok(found) => {
            let mut parameters: Vec<Value> = found
                .identifiers
                .iter()
                .map(|identifier| {
                    json!({
                        "name": "targetIdentifier",
                        "valueIdentifier": { "system": identifier["system"], "value": identifier["value"] },
                    })
                })
                .collect();
            parameters.push(json!({
                "name": "targetId",
                "valueReference": { "reference": format!("Patient/{}", found.patient_id) },
            }));
            let body = json!({ "resourceType": "Parameters", "parameter": parameters });
            format::respond(format, StatusCode::OK, Some(&body), vec![])
        }
        Err(e @ PixError::UnknownSourceDomain(_)) => {
            format::error(format, StatusCode::BAD_REQUEST, "code-invalid", &e.to_string())
        }
        Err(e @ PixError::UnknownTargetDomain(_)) => {
            format::error(format, StatusCode::FORBIDDEN, "code-invalid", &e.to_string())
        }
        Err(e @ PixError::NotFound(..)) => {
            format::error(format, StatusCode::NOT_FOUND, "not-found", &e.to_string())
        }
        Err(e) => format::error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}
