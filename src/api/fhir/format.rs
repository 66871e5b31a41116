//! FHIR formats on the wire: reading a request body as JSON or XML (by its Content-Type), and
//! answering in the format asked for (`_format`, then `Accept`, JSON by default), with the
//! OperationOutcome of every error in that format too.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::fhir::FHIR_JSON;
use crate::fhir::outcome::operation_outcome;
use crate::fhir::xml;

pub const FHIR_XML: &str = "application/fhir+xml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Xml,
}

impl Format {
    /// The format an answer is given in: `_format` first, then `Accept`, else JSON.
    pub fn of_response(headers: &HeaderMap, format_param: Option<&str>) -> Result<Format, String> {
        if let Some(asked) = format_param {
            return match asked {
                "json" | "application/json" | FHIR_JSON => Ok(Format::Json),
                "xml" | "text/xml" | "application/xml" | FHIR_XML => Ok(Format::Xml),
                other => Err(format!("_format `{other}` is not supported (json, xml)")),
            };
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Ok(if accept.contains("xml") && !accept.contains("json") {
            Format::Xml
        } else {
            Format::Json
        })
    }

    /// The format a request asks its answers in (`_format` in its query, then `Accept`), for an
    /// answer given before any handler reads the request (a refusal at the edge, a 401/403):
    /// an unknown `_format` is the handler's to refuse, so such an answer is in JSON.
    pub fn asked(headers: &HeaderMap, query: Option<&str>) -> Format {
        let params: Vec<(String, String)> = query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let asked = params
            .iter()
            .find(|(k, _)| k == "_format")
            .map(|(_, v)| v.as_str());
        Format::of_response(headers, asked).unwrap_or_default()
    }

    /// The format of a request body, by its Content-Type (JSON when none is given).
    pub fn of_request(headers: &HeaderMap) -> Result<Format, String> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(FHIR_JSON);
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "" | FHIR_JSON | "application/json" | "application/json+fhir" => Ok(Format::Json),
            FHIR_XML | "application/xml" | "text/xml" | "application/xml+fhir" => Ok(Format::Xml),
            other => Err(format!(
                "Content-Type `{other}` is not a FHIR format (application/fhir+json, application/fhir+xml)"
            )),
        }
    }
}

/// A request body as a JSON resource; the error says what is wrong (a 400).
pub fn parse_body(format: Format, body: &[u8]) -> Result<Value, String> {
    if body.is_empty() {
        return Err("the request has no body".into());
    }
    let resource = match format {
        Format::Json => {
            serde_json::from_slice::<Value>(body).map_err(|e| format!("the body is not valid JSON: {e}"))?
        }
        Format::Xml => {
            let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
            xml::xml_to_json(text).map_err(|e| format!("the body is not valid FHIR XML: {e}"))?
        }
    };
    if !resource.is_object() {
        return Err("the body is not a FHIR resource (a JSON object)".into());
    }
    Ok(resource)
}

/// A FHIR answer: status, resource (or none), extra headers; rendered in `format`.
pub fn respond(
    format: Format,
    status: StatusCode,
    body: Option<&Value>,
    headers: Vec<(header::HeaderName, String)>,
) -> Response {
    let (content_type, text) = match (format, body) {
        (_, None) => (None, String::new()),
        (Format::Json, Some(resource)) => (Some(FHIR_JSON), resource.to_string()),
        (Format::Xml, Some(resource)) => match xml::json_to_xml(resource) {
            Ok(text) => (Some(FHIR_XML), text),
            // A stored resource that XML cannot carry: say so rather than send half of it.
            Err(e) => {
                let outcome = operation_outcome("error", "exception", &format!("cannot render as XML: {e}"));
                return respond(Format::Json, StatusCode::NOT_ACCEPTABLE, Some(&outcome), vec![]);
            }
        },
    };
    let mut response = (status, text).into_response();
    let map = response.headers_mut();
    if let Some(content_type) = content_type {
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&format!("{content_type}; charset=utf-8")).expect("a valid header"),
        );
    }
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            map.insert(name, value);
        }
    }
    response
}

/// An error as an OperationOutcome in `format`.
pub fn error(format: Format, status: StatusCode, code: &str, diagnostics: &str) -> Response {
    respond(
        format,
        status,
        Some(&operation_outcome("error", code, diagnostics)),
        vec![],
    )
}
