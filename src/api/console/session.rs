//! Console sessions: an analyst signs in with their API key (it must hold the
//! `integration-analyst` role) and gets a random session token in a cookie; the console keeps
//! each token's SHA-256, the caller and its expiry in memory. A restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;

use super::html::{esc, page, see_other};
use crate::api::AppState;
use crate::domain::accounts::roles::{Caller, Role};
use crate::domain::identity::secrets::sha256_hex;

const COOKIE: &str = "tributary_console";
const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The console's live sessions, by the SHA-256 of their token.
#[derive(Default)]
pub struct ConsoleSessions {
    live: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl ConsoleSessions {
    fn open(&self, caller: Caller) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut live = self.live.lock().ok()?;
        let now = Instant::now();
        live.retain(|_, (_, expires)| *expires > now);
        live.insert(sha256_hex(&token), (caller, now + LIFETIME));
        Some(token)
    }

    fn find(&self, token: &str) -> Option<Caller> {
        let live = self.live.lock().ok()?;
        let (caller, expires) = live.get(&sha256_hex(token))?;
        (*expires > Instant::now()).then(|| caller.clone())
    }

    fn close(&self, token: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&sha256_hex(token));
        }
    }
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            pair.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

/// The analyst signed in to the console; without a session, the sign-in page (401).
pub struct Analyst(pub Caller);

impl FromRequestParts<AppState> for Analyst {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        token_of(&parts.headers)
            .and_then(|token| state.console.find(&token))
            .map(Analyst)
            .ok_or_else(|| sign_in_page(StatusCode::UNAUTHORIZED, None))
    }
}

fn sign_in_page(status: StatusCode, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|p| format!("<p class=\"error\">{}</p>", esc(p)))
        .unwrap_or_default();
    page(
        status,
        "Sign in",
        None,
        &format!(
            "{problem}<form method=\"post\" action=\"/console/login\">\
             <label>Integration analyst's API key <input type=\"password\" name=\"key\" autocomplete=\"off\" required></label> \
             <button>Sign in</button></form>"
        ),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
}

/// `POST /console/login` (form `key`).
pub async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let Some(caller) = state.members.clients.authenticate(form.key.trim()) else {
        return sign_in_page(StatusCode::UNAUTHORIZED, Some("That API key is not known."));
    };
    if !caller.has(Role::IntegrationAnalyst) {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            Some("The console is for keys with the integration-analyst role."),
        );
    }
    let Some(token) = state.console.open(caller) else {
        return sign_in_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("No session could be made; try again."),
        );
    };
    let mut response = see_other("/console");
    let secure = if state.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /console/logout`.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = token_of(&headers) {
        state.console.close(&token);
    }
    let mut response = see_other("/console");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tributary_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}
