//! The integration analyst's console at `/console` (issue 18, first part): HTML rendered on the
//! server (no build step, no script), on the engine's own HTTP listener, following the API's
//! role rules. An analyst signs in with an `integration-analyst` API key; the console keeps a
//! session for it in memory (a random token in an HttpOnly, SameSite=Strict cookie, eight
//! hours), so the key itself is sent once.
//!
//! - [`session`]: signing in and out, and the session every other page needs.
//! - [`html`]: the page frame and escaping.
//! - [`pages`]: the dashboard, the message browser and detail (with reprocess), dead letters.
//! - [`setup`]: each channel's mapping, the golden tests run on request, the configuration.

mod html;
mod pages;
mod reprocess_set;
mod session;
mod setup;

use axum::Router;
use axum::routing::{get, post};

use super::AppState;

pub use session::ConsoleSessions;
pub use setup::ConsoleSetup;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::dashboard))
        .route("/console/login", post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console/messages", get(pages::messages))
        .route("/console/messages/reprocess", post(reprocess_set::reprocess_set))
        .route("/console/messages/{seq}", get(pages::message))
        .route("/console/messages/{seq}/reprocess", post(pages::reprocess))
        .route("/console/dead-letters", get(pages::dead_letters))
        .route("/console/dead-letters/{id}/retry", post(pages::retry))
        .route("/console/dead-letters/{id}/discard", post(pages::discard))
        .route("/console/mappings", get(setup::mappings))
        .route("/console/mappings/test", post(setup::test))
        .route("/console/mappings/{name}", get(setup::mapping_source))
        .route("/console/config", get(setup::config))
        .route("/console/config/reload", post(setup::reload))
}
