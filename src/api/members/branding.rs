//! The portal's branding over HTTP: public reads for the portal front end (titles, palette, the
//! icon), and the Configuration Manager's changes, in force at once.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::openapi::{Operation, PUBLIC};
use super::reply::{body, command, error, ok, read};
use crate::api::AppState;
use crate::api::auth::{Authed, allow};
use crate::config::BrandingTexts;
use crate::domain::accounts::roles::Role;
use crate::domain::branding;

const ICON_PATH: &str = "/api/branding/icon";

/// `GET /api/branding`: the titles, palette and icon link in force. Public.
pub async fn public(State(state): State<AppState>) -> Result<Response, Response> {
    let config = state.branding.clone();
    let (texts, icon) = read(&state, move |store, _| {
        Ok((branding::texts(store, &config)?, branding::icon(store)?))
    })
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "organization_title": texts.organization_title,
            "application_title": texts.application_title,
            "palette": texts.palette,
            "icon": icon.map(|i| format!("{ICON_PATH}?v={}", &i.etag[..16])),
        }),
    ))
}

/// `GET /api/branding/icon`: the uploaded icon with its type. Public.
pub async fn icon(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Response> {
    let icon = read(&state, |store, _| Ok(branding::icon(store)?)).await?;
    let Some(icon) = icon else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "no-icon",
            "no icon has been uploaded",
        ));
    };
    let etag = format!("\"{}\"", icon.etag);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let response = if unchanged {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, icon.content_type)
            .body(Body::from(icon.bytes))
    };
    Ok(response.expect("a valid response"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextsBody {
    organization_title: String,
    application_title: String,
    palette: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    reason: String,
}

/// `PUT /api/settings/branding`: new titles and palette, with a reason.
pub async fn put_texts(
    State(state): State<AppState>,
    Authed(caller): Authed,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let request: TextsBody = body(&bytes)?;
    let config = state.branding.clone();
    let texts = BrandingTexts {
        organization_title: request.organization_title.trim().to_string(),
        application_title: request.application_title.trim().to_string(),
        palette: request.palette,
    };
    let (saved, _) = command(
        &state,
        "branding",
        &caller,
        "update branding".into(),
        None,
        move |op, _| branding::save_texts(op, &config, texts, &request.reason),
    )
    .await?;
    Ok(ok(StatusCode::OK, json!(saved)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IconParams {
    #[serde(default)]
    reason: String,
}

/// `PUT /api/settings/branding/icon?reason=`: a new icon, the image itself as the body with its
/// `Content-Type`.
pub async fn put_icon(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Query(params): Query<IconParams>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, Response> {
    allow(&caller, &[Role::ConfigurationManager])?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let config = state.branding.clone();
    let (icon, _) = command(
        &state,
        "branding icon",
        &caller,
        "upload branding icon".into(),
        None,
        move |op, _| branding::save_icon(op, &config, &content_type, bytes.to_vec(), &params.reason),
    )
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "content_type": icon.content_type, "bytes": icon.bytes.len(), "icon": format!("{ICON_PATH}?v={}", &icon.etag[..16]) }),
    ))
}

/// The OpenAPI entries of these routes.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/branding",
        summary: "The portal's branding in force: organization and application titles, colour palette (role to #rrggbb) and the icon's link (null without one). Public, for the portal front end; changes show at once.",
        roles: PUBLIC,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/branding/icon",
        summary: "The uploaded icon, with its image type and an ETag (If-None-Match answers 304). Public. 404 no-icon.",
        roles: PUBLIC,
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/settings/branding",
        summary: "Change the organization and application titles (1 to 100 characters) and the palette (roles primary, secondary, accent, background, text, link; #rgb or #rrggbb); reason required; audited as branding.update on settings/branding. 422 for a bad title, role or colour.",
        roles: "configuration-manager",
        query: &[],
        body: &[
            "organization_title!:string",
            "application_title!:string",
            "palette!:object",
            "reason!:string",
        ],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/settings/branding/icon",
        summary: "Upload the icon: the image as the body, its Content-Type image/png, image/jpeg, image/gif or image/webp, which its bytes must be (no SVG), within branding.max_icon_bytes; `reason` required; audited as branding.icon. 422 bad-icon-type, bad-icon-size.",
        roles: "configuration-manager",
        query: &["reason"],
        body: &[],
        success: 200,
    },
];
