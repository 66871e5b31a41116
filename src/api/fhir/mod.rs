//! The FHIR R4 REST endpoint at `/fhir`: the resource interactions, Bundles (transaction,
//! batch, PMIR message), PIXm and the CapabilityStatement, in JSON and XML.
//!
//! - [`access`]: who may read and who may write (API keys with the `fhir-read` / `fhir-write`
//!   scopes); the CapabilityStatement is public.
//! - [`format`]: JSON / XML in and out, content negotiation.
//! - [`refused`]: a refused request as HTTP answers it; the statuses of the write model's
//!   effects (the write model itself is `domain::resources::write`).
//! - [`rest`]: the per-type HTTP interactions.
//! - [`bundles`]: `POST /fhir` with a transaction, batch or message Bundle.
//! - [`pixm`]: `GET /fhir/Patient/$ihe-pix` (IHE ITI-83).
//! - [`capability`]: `GET /fhir/metadata`.

pub(crate) mod access;
pub(crate) mod bundles;
pub(crate) mod capability;
pub(crate) mod format;
pub(crate) mod idempotent;
pub(crate) mod pixm;
pub(crate) mod refused;
pub(crate) mod rest;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use serde_json::Value;

use super::AppState;
use crate::config::live_mappings::LiveMappings;
use crate::core::CommitterHandle;
use crate::domain::mpi::patient_merge;
use crate::domain::resources::change::ResourceChange;
use crate::domain::resources::write::Write;
use crate::mapping::Input;
use crate::store::Store;
use refused::Refused;

/// What the FHIR handlers reach.
#[derive(Clone)]
pub struct FhirState {
    pub store: Arc<dyn Store>,
    pub committer: CommitterHandle,
    pub mappings: Arc<LiveMappings>,
    /// The mapping a posted Patient goes through (an upstream feed), if configured.
    pub patient_feed_mapping: Option<String>,
    /// `[messages.site]`: whether providers may message members, until a Configuration Manager
    /// saves other switches.
    pub message_switches: crate::config::MessageSwitches,
}

impl FromRef<AppState> for FhirState {
    fn from_ref(state: &AppState) -> FhirState {
        state.fhir.clone()
    }
}

impl FhirState {
    /// A provider's message to a patient while the site's `provider_initiated` switch is off:
    /// 403 `forbidden`, its diagnostics starting with the code `provider-messages-off`.
    pub fn message_refused(&self, resource_type: &str, resource: &Value) -> Option<Refused> {
        use crate::domain::messages::switches;
        if resource_type != "Communication" || !switches::is_provider_message(resource) {
            return None;
        }
        match switches::switches(self.store.as_ref(), &self.message_switches) {
            Ok(switches) if switches.provider_initiated => None,
            Ok(_) => Some(Refused::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "provider-messages-off: this site does not let providers message members now",
            )),
            Err(e) => Some(Refused::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                e.to_string(),
            )),
        }
    }

    /// A posted Patient as the feed mapping sees it, kept as sent ([`patient_merge`]); None
    /// when it is a plain create: another type, no feed mapping, or a Patient without any
    /// identifier value, which has no identity for the feed to match and is created as sent
    /// with an id of the server's.
    pub fn feed_write(&self, resource_type: &str, resource: &Value) -> Result<Option<Write>, Refused> {
        let (Some(name), "Patient") = (&self.patient_feed_mapping, resource_type) else {
            return Ok(None);
        };
        if !has_identifier_value(resource) {
            return Ok(None);
        }
        self.feed_change(name, resource)
            .map(|change| Some(Write::Feed { change }))
    }

    /// A Patient put at its id, as it is stored: merged with what the feed mapping derives
    /// (identity and search), as a posted one is; as sent without a feed mapping or an
    /// identifier.
    pub fn put_patient(&self, resource: Value) -> Result<Value, Refused> {
        let Some(name) = &self.patient_feed_mapping else {
            return Ok(resource);
        };
        if !has_identifier_value(&resource) {
            return Ok(resource);
        }
        match self.feed_change(name, &resource)? {
            ResourceChange::Upsert { resource } => Ok(resource),
            // A mapping that asks for a merge or an identifier change is a feed, not an update
            // at an id: the resource is stored as sent.
            _ => Ok(resource),
        }
    }

    /// What mapping `name` makes of a FHIR Patient, merged into the Patient as sent so that
    /// nothing the client sent is lost ([`patient_merge`]).
    pub fn feed_change(&self, name: &str, resource: &Value) -> Result<ResourceChange, Refused> {
        let mappings = self.mappings.current();
        let mapping = mappings.get(name).ok_or_else(|| {
            Refused::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                format!("mapping `{name}` is not loaded"),
            )
        })?;
        let now = chrono::Utc::now().format("%Y%m%d%H%M%S+0000").to_string();
        let output = mapping.run(&Input::Fhir(resource), &now).map_err(|e| {
            Refused::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "processing",
                format!("{} ({}, mapping {name} line {})", e.message, e.path, e.line),
            )
        })?;
        let unprocessable =
            |message: String| Refused::new(StatusCode::UNPROCESSABLE_ENTITY, "processing", message);
        let mut changes = ResourceChange::from_output(output).map_err(|e| unprocessable(e.to_string()))?;
        let change = match (changes.pop(), changes.is_empty()) {
            (Some(change), true) if change.resource_type() == "Patient" => change,
            _ => {
                return Err(unprocessable(format!(
                    "mapping `{name}` does not write one Patient"
                )));
            }
        };
        Ok(match change {
            ResourceChange::Upsert { resource: patient } => ResourceChange::Upsert {
                resource: patient_merge::merge(resource, &patient),
            },
            other => other,
        })
    }
}

/// Whether a Patient carries an identifier with a value (something a feed can match it by).
fn has_identifier_value(resource: &Value) -> bool {
    resource["identifier"].as_array().is_some_and(|list| {
        list.iter()
            .any(|i| i["value"].as_str().is_some_and(|v| !v.is_empty()))
    })
}

pub fn routes(state: &AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/fhir", post(bundles::post))
        .route("/fhir/{type}", get(rest::search).post(rest::create))
        .route("/fhir/{type}/_search", post(rest::search_post))
        .route(
            "/fhir/{type}/{id}",
            get(rest::read).put(rest::update).delete(rest::delete),
        )
        .route("/fhir/{type}/{id}/_history", get(rest::history))
        .route("/fhir/{type}/{id}/_history/{version}", get(rest::vread))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), access::guard));
    Router::new()
        .route("/fhir/metadata", get(capability::metadata))
        .merge(guarded)
}

/// The FHIR base URL as the client reached it (`http://host/fhir`).
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}
