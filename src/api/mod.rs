//! The HTTP API: health, the journal, the outbox and the FHIR endpoint, as axum routers over
//! the store. The journal and the outbox show message contents and patients: they take an API
//! key with the `integration-analyst` role ([`auth`]).

mod auth;
pub(crate) mod console;
mod edge;
pub(crate) mod fhir;
mod health;
pub(crate) mod journal;
mod limit;
mod members;
pub(crate) mod metrics;
pub(crate) mod outbox;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::Value;

use crate::core::CommitterHandle;
use crate::fhir::{FHIR_JSON, outcome::operation_outcome};
use crate::outbox::Outbox;
use crate::store::Store;
pub use edge::Options;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The MLLP listeners' inbound sides, to reprocess a journaled message through its own.
    pub listeners: Arc<crate::handlers::reprocess::Listeners>,
    pub outbox: Arc<Outbox>,
    pub committer: CommitterHandle,
    pub members: Arc<crate::domain::accounts::Accounts>,
    /// `[engagement]`: where profile updates and questionnaire answers go (issue #7).
    pub engagement: Arc<crate::config::EngagementConfig>,
    /// `[records]`: where a member's cancellation of an appointment goes (issue #16).
    pub records: Arc<crate::config::RecordsConfig>,
    /// `[branding]`: the portal's titles and palette until a Configuration Manager saves others.
    pub branding: Arc<crate::config::BrandingConfig>,
    /// `[consents]`: where changed consents go, and the switches the config starts with.
    pub consents: Arc<crate::config::ConsentsConfig>,
    /// `[messages]`: where members' messages go, and the switches the config starts with.
    pub messages: Arc<crate::config::MessagesConfig>,
    /// `[news]`: the feeds whose state analysts read.
    pub news: Arc<crate::config::NewsConfig>,
    /// `[bills]` and the key shared with the payment gateway.
    pub bills: Arc<BillsState>,
    /// The console's signed-in analysts.
    pub console: Arc<console::ConsoleSessions>,
    /// What the console's setup pages show (channels' mappings, the config file).
    pub setup: Arc<console::ConsoleSetup>,
    /// Asks for the config file to be read again and put in force (the console's button).
    pub reload: tokio::sync::mpsc::Sender<crate::app::ReloadRequest>,
    /// Whether the listener speaks TLS (the console's cookie is then `Secure`).
    pub tls: bool,
    pub fhir: fhir::FhirState,
}

/// The payment gateway's link template and the key the engine and the gateway sign with.
pub struct BillsState {
    pub config: crate::config::BillsConfig,
    pub key: crate::domain::identity::secrets::TokenKey,
}

impl BillsState {
    /// Reads the gateway key file (created when missing), relative to the data folder.
    pub fn load(config: &crate::config::Config) -> Result<BillsState, crate::config::ConfigError> {
        let file = &config.bills.gateway_key_file;
        let path = if file.is_absolute() {
            file.clone()
        } else {
            config.store.data_dir.join(file)
        };
        let key = crate::domain::identity::secrets::TokenKey::load_or_create(&path).map_err(|message| {
            crate::config::ConfigError {
                file: "-".into(),
                line: 0,
                key: "bills.gateway_key_file".into(),
                message,
            }
        })?;
        Ok(BillsState {
            config: config.bills.clone(),
            key,
        })
    }
}

/// The store alone, for handlers that only read.
pub type StoreRef = Arc<dyn Store>;

impl FromRef<AppState> for StoreRef {
    fn from_ref(state: &AppState) -> StoreRef {
        state.store.clone()
    }
}

/// Every route of the HTTP API inside the layers of [`edge`] (limits, shaped refusals, security
/// headers), as `options` set them.
pub fn router(state: AppState, options: Options) -> Router {
    let routes = Router::new()
        .route("/health", get(health::health))
        .route("/journal", get(journal::list))
        .route("/journal/{seq}/reprocess", post(journal::reprocess))
        .route("/outbox/dead-letters", get(outbox::dead_letters))
        .route("/outbox/dead-letters/{id}", delete(outbox::discard))
        .route("/outbox/dead-letters/{id}/retry", post(outbox::retry))
        .route("/outbox/deliveries/{id}", get(outbox::delivery))
        .route("/outbox/{destination}/pending", get(outbox::pending))
        .route("/metrics", get(metrics::metrics))
        .merge(fhir::routes(&state))
        .merge(members::routes())
        .merge(console::routes())
        // Every route counted and timed under its pattern (README "Metrics").
        .route_layer(axum::middleware::from_fn(metrics::measured))
        .fallback(not_found)
        .with_state(state.clone())
        // Every request but /health takes from its address's budget (issue #12).
        .layer(axum::middleware::from_fn_with_state(state, limit::per_address));
    edge::layers(routes, options)
}

/// No route: an OperationOutcome, in the format the request asks for (XML for a FHIR client that
/// wants it).
async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let asked = fhir::format::Format::asked(&headers, uri.query());
    fhir::format::error(asked, StatusCode::NOT_FOUND, "not-found", "no such endpoint")
}

/// A FHIR JSON response.
pub fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// An error answered as an OperationOutcome.
pub fn fhir_error(status: StatusCode, code: &str, diagnostics: &str) -> Response {
    fhir_json(status, &operation_outcome("error", code, diagnostics))
}
