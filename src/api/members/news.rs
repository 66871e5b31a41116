//! The portal's news over HTTP: the public front page's three newest items, the signed-in
//! member's fifty newest, and each feed's state for an integration analyst.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::openapi::{Operation, PUBLIC, SIGNED_IN};
use super::reply::{ok, read};
use super::signin::MemberSession;
use crate::api::AppState;
use crate::api::auth::{Authed, allow};
use crate::domain::accounts::roles::Role;
use crate::domain::news;

/// The items the public page shows (fixed, as the portal's front page has room for).
const PUBLIC_ITEMS: usize = 3;
/// The items a signed-in member sees.
const MEMBER_ITEMS: usize = 50;

/// `GET /api/news`: the three newest items across feeds. Public.
pub async fn public(State(state): State<AppState>) -> Result<Response, Response> {
    newest(&state, PUBLIC_ITEMS).await
}

/// `GET /api/me/news`: the fifty newest items across feeds, for a signed-in member.
pub async fn mine(State(state): State<AppState>, _me: MemberSession) -> Result<Response, Response> {
    newest(&state, MEMBER_ITEMS).await
}

async fn newest(state: &AppState, limit: usize) -> Result<Response, Response> {
    let items = read(state, move |store, _| Ok(news::newest(store, limit)?)).await?;
    Ok(ok(StatusCode::OK, json!({ "items": items })))
}

/// `GET /api/news/feeds`: how each configured feed's fetches went.
pub async fn feeds(State(state): State<AppState>, Authed(caller): Authed) -> Result<Response, Response> {
    allow(&caller, &[Role::IntegrationAnalyst, Role::ConfigurationManager])?;
    let configured: Vec<(String, String)> = state
        .news
        .feeds
        .iter()
        .map(|f| (f.name.get_ref().clone(), f.url.get_ref().clone()))
        .collect();
    let feeds = read(&state, move |store, _| {
        let mut feeds = vec![];
        for (name, url) in configured {
            let state = news::state(store, &name)?;
            feeds.push(json!({ "name": name, "url": url, "state": state }));
        }
        Ok(feeds)
    })
    .await?;
    Ok(ok(StatusCode::OK, json!({ "feeds": feeds })))
}

/// The OpenAPI entries of these routes.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/news",
        summary: "The three newest news items across the configured feeds (feed, id, title, link, published, summary), for the portal's public page.",
        roles: PUBLIC,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/me/news",
        summary: "The fifty newest news items across the configured feeds, for a signed-in member.",
        roles: SIGNED_IN,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/news/feeds",
        summary: "Each configured news feed with how its fetches went: last run, last success, the last error while it lasts, the validators kept (ETag, Last-Modified) and the items kept.",
        roles: "integration-analyst, configuration-manager",
        query: &[],
        body: &[],
        success: 200,
    },
];
