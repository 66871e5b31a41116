//! The portal's branding over HTTP against the real engine (issue 17, release notes 6.8): the
//! public read the portal front end makes, a Configuration Manager's new titles, palette and
//! icon in force at once (no restart), each checked (colours, roles, titles; the icon's bytes
//! against its type and size) and audited; nobody else may change them.

use crate::members_support::{World, start};
use serde_json::{Value, json};

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00,
    0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01,
    0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

async fn put_icon(w: &World, client: &str, content_type: &str, bytes: Vec<u8>, reason: &str) -> (u16, Value) {
    let response = w
        .http
        .put(format!(
            "{}/api/settings/branding/icon?reason={reason}",
            w.engine.http
        ))
        .bearer_auth(crate::members_support::key(client))
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_configuration_manager_rebrands_the_portal_and_the_public_read_shows_it_at_once() {
    let w = start("").await;
    let (status, shown) = w.call("GET", "/api/branding", None, None).await;
    assert_eq!(status, 200, "public, without a key: {shown}");
    assert_eq!(shown["application_title"], "Patient Portal");
    assert_eq!(shown["palette"]["primary"], "#005eb8");
    assert_eq!(shown["icon"], Value::Null);
    let (status, _) = w.call("GET", "/api/branding/icon", None, None).await;
    assert_eq!(status, 404);

    let new = json!({
        "organization_title": "Riverside Health",
        "application_title": "My Riverside",
        "palette": { "primary": "#7A1F5C", "secondary": "#fc0", "text": "#111111" },
        "reason": "Rebrand after the merger"
    });
    let (status, _) = w
        .call(
            "PUT",
            "/api/settings/branding",
            Some("manager"),
            Some(new.clone()),
        )
        .await;
    assert_eq!(status, 403, "configuration managers only");
    let (status, _) = w
        .call("PUT", "/api/settings/branding", None, Some(new.clone()))
        .await;
    assert_eq!(status, 401);
    for (key, bad) in [
        ("palette", json!({ "primary": "purple" })),
        ("palette", json!({ "sparkle": "#fff" })),
        ("application_title", json!("")),
        ("reason", json!("")),
    ] {
        let mut wrong = new.clone();
        wrong[key] = bad.clone();
        let (status, refused) = w
            .call("PUT", "/api/settings/branding", Some("config"), Some(wrong))
            .await;
        assert_eq!(status, 422, "{key} {bad}: {refused}");
    }
    let (status, saved) = w
        .call("PUT", "/api/settings/branding", Some("config"), Some(new))
        .await;
    assert_eq!(status, 200, "{saved}");
    let (_, shown) = w.call("GET", "/api/branding", None, None).await;
    assert_eq!(shown["organization_title"], "Riverside Health");
    assert_eq!(shown["application_title"], "My Riverside");
    assert_eq!(
        shown["palette"],
        json!({ "primary": "#7A1F5C", "secondary": "#fc0", "text": "#111111" })
    );

    // The icon: its bytes must be the type it is sent as, within the size; no SVG.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    let (status, refused) = put_icon(&w, "config", "image/svg+xml", svg, "logo").await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("bad-icon-type")),
        "{refused}"
    );
    let (status, refused) = put_icon(&w, "config", "image/jpeg", PNG.to_vec(), "logo").await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("bad-icon-type")),
        "{refused}"
    );
    let mut huge = PNG.to_vec();
    huge.resize(300_000, 0);
    let (status, refused) = put_icon(&w, "config", "image/png", huge, "logo").await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("bad-icon-size")),
        "{refused}"
    );
    let (status, _) = put_icon(&w, "manager", "image/png", PNG.to_vec(), "logo").await;
    assert_eq!(status, 403);
    let (status, uploaded) = put_icon(&w, "config", "image/png", PNG.to_vec(), "New%20logo").await;
    assert_eq!(status, 200, "{uploaded}");

    let (_, shown) = w.call("GET", "/api/branding", None, None).await;
    let link = shown["icon"].as_str().unwrap().to_string();
    let response = w
        .http
        .get(format!("{}{link}", w.engine.http))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);
    let again = w
        .http
        .get(format!("{}/api/branding/icon", w.engine.http))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);

    // Both changes are in the audit trail, with their reasons.
    let (_, audit) = w.get("/api/audit?target=settings/branding", "config").await;
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["branding.update", "branding.icon"], "{audit}");
}
