//! `GET /fhir/metadata`: the CapabilityStatement, built from what the code serves (the types
//! and search parameters in `domain::resources::params`), so it cannot claim more than is there.

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::format::{self, Format};
use crate::domain::resources::params::{self, Kind};

pub async fn metadata(headers: HeaderMap, Query(query): Query<Vec<(String, String)>>) -> Response {
    let asked = query
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.as_str());
    let format = match Format::of_response(&headers, asked) {
        Ok(format) => format,
        Err(e) => return format::error(Format::Json, StatusCode::NOT_ACCEPTABLE, "not-supported", &e),
    };
    format::respond(format, StatusCode::OK, Some(&capability_statement()), vec![])
}

pub fn capability_statement() -> Value {
    let resources: Vec<Value> = params::TYPES
        .iter()
        .map(|resource_type| {
            let mut search: Vec<Value> = vec![
                json!({ "name": "_id", "type": "token" }),
                json!({ "name": "_lastUpdated", "type": "date" }),
            ];
            if *resource_type == "Patient" {
                search.push(json!({ "name": "identifier", "type": "token" }));
                search.push(json!({ "name": "email", "type": "token" }));
                search.push(json!({ "name": "phone", "type": "token" }));
            }
            for param in params::of_type(resource_type) {
                let kind = match param.kind {
                    Kind::Token => "token",
                    Kind::String => "string",
                    Kind::Date => "date",
                    Kind::Reference => "reference",
                };
                search.push(json!({ "name": param.name, "type": kind }));
            }
            let mut interactions = vec![
                "read",
                "vread",
                "history-instance",
                "search-type",
                "create",
                "update",
            ];
            if *resource_type != "Patient" {
                interactions.push("delete");
            }
            let mut resource = json!({
                "type": resource_type,
                "interaction": interactions.iter().map(|code| json!({ "code": code })).collect::<Vec<_>>(),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "searchParam": search,
            });
            let includes: Vec<String> = params::of_type(resource_type)
                .filter(|p| p.kind == Kind::Reference)
                .map(|p| format!("{resource_type}:{}", p.name))
                .collect();
            if !includes.is_empty() {
                resource["searchInclude"] = json!(includes);
            }
            if *resource_type == "Patient" {
                resource["operation"] = json!([{
                    "name": "ihe-pix",
                    "definition": "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix"
                }]);
                resource["interaction"] = json!(
                    interactions
                        .iter()
                        .map(|code| json!({ "code": code }))
                        .collect::<Vec<_>>()
                );
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "kind": "instance",
        "software": { "name": "Tributary", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Tributary FHIR R4 endpoint over the member store" },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [{
            "mode": "server",
            // What src/api/fhir/access.rs enforces.
            "security": {
                "cors": false,
                "description": "Every interaction but this CapabilityStatement takes an API key as `Authorization: Bearer <key>`: an external-system client with the scope fhir-read reads and searches, with fhir-write it also writes; an integration analyst reads. 401 without a known key, 403 when its scopes do not cover the interaction."
            },
            "resource": resources,
            "interaction": [{ "code": "transaction" }, { "code": "batch" }],
            "operation": [{
                "name": "process-message",
                "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"
            }],
        }],
    })
}
