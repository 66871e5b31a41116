//! Who may call what: every member-account endpoint answers 401 without a key (or with an
//! unknown one), 403 to callers whose roles do not cover it, and lets exactly the roles the seeds
//! give its action through. The OpenAPI document lists exactly these endpoints.

use crate::members_support::{CLIENTS, start};
use serde_json::json;

/// (method, path, the clients allowed). Ids in paths name nothing: allowed callers get past
/// the role check to a 404 or a 4xx about the body, never a 403.
const TABLE: &[(&str, &str, &[&str])] = &[
    ("GET", "/api/patients?name=x", &["desk"]),
    ("POST", "/api/members", &["desk"]),
    ("GET", "/api/members?name=x", &["manager"]),
    ("GET", "/api/members/{id}", &["manager"]),
    ("PUT", "/api/members/{id}/contact", &["manager"]),
    ("POST", "/api/members/{id}/token/resend", &["manager"]),
    ("POST", "/api/members/{id}/token/renew", &["manager"]),
    ("POST", "/api/members/{id}/token/regenerate", &["manager"]),
    ("POST", "/api/members/{id}/deactivate", &["manager"]),
    ("POST", "/api/members/{id}/reactivate", &["manager"]),
    ("POST", "/api/members/{id}/password-reset", &["manager"]),
    (
        "GET",
        "/api/notifications/{id}",
        &["desk", "manager", "agent", "agent2", "exception"],
    ),
    ("POST", "/api/enrollment-requests", &["portal"]),
    (
        "GET",
        "/api/enrollment-requests?queue=request",
        &["agent", "agent2"],
    ),
    ("GET", "/api/enrollment-requests?queue=exception", &["exception"]),
    (
        "GET",
        "/api/enrollment-requests/{id}",
        &["agent", "agent2", "exception"],
    ),
    (
        "POST",
        "/api/enrollment-requests/{id}/claim",
        &["agent", "agent2", "exception"],
    ),
    (
        "GET",
        "/api/enrollment-requests/{id}/matches",
        &["agent", "agent2", "exception"],
    ),
    (
        "POST",
        "/api/enrollment-requests/{id}/approve",
        &["agent", "agent2", "exception"],
    ),
    (
        "POST",
        "/api/enrollment-requests/{id}/decline",
        &["agent", "agent2", "exception"],
    ),
    (
        "POST",
        "/api/enrollment-requests/{id}/forward",
        &["agent", "agent2"],
    ),
    ("POST", "/api/automated-enrollments", &["crm"]),
    ("POST", "/api/activation", &["portal"]),
    ("POST", "/api/password/forgot", &["portal"]),
    ("POST", "/api/password/reset", &["portal"]),
    ("POST", "/api/username/forgot", &["portal"]),
    ("GET", "/api/audit", &["manager", "config"]),
    ("GET", "/api/settings/members", &["config"]),
    ("PUT", "/api/settings/members", &["config"]),
    ("GET", "/api/settings/records", &["config"]),
    ("GET", "/api/news/feeds", &["analyst", "config"]),
    ("GET", "/api/settings/consents", &["config"]),
    ("PUT", "/api/settings/consents", &["config"]),
    ("GET", "/api/settings/messages", &["config"]),
    ("PUT", "/api/settings/messages", &["config"]),
    ("PUT", "/api/settings/branding", &["config"]),
    ("PUT", "/api/settings/branding/icon", &["config"]),
    ("PUT", "/api/settings/records", &["config"]),
    // Credentials and sign-in (issue #6).
    ("POST", "/api/sign-in", &["portal"]),
    ("POST", "/api/sign-in/code", &["portal"]),
    ("POST", "/api/sign-in/external", &["portal"]),
    ("GET", "/api/members/{id}/credentials", &["manager"]),
    // Proxy relationships (issue #6).
    ("POST", "/api/proxies", &["manager"]),
    ("GET", "/api/proxies/{id}", &["manager"]),
    ("POST", "/api/proxies/{id}/revoke", &["manager"]),
    ("GET", "/api/members/{id}/proxies", &["manager"]),
    ("GET", "/api/proxy-relationship-types", &["manager"]),
    // Engagement APIs (issue #7): the clients here hold neither `invite` nor `tasks`; the
    // engagement tests check those scopes.
    ("PUT", "/api/members/{id}/profile", &["portal"]),
    ("POST", "/api/invitations", &[]),
    ("GET", "/api/invitations/{id}", &[]),
    ("POST", "/api/tasks", &[]),
    ("GET", "/api/tasks/{id}", &["portal"]),
    ("POST", "/api/tasks/{id}/status", &["portal"]),
    ("POST", "/api/tasks/{id}/questionnaire-response", &["portal"]),
];

/// Self-service routes where the portal acts for a member: its key alone is let past the role
/// check and then asked for the member's session (401 naming `X-Member-Session`).
const MEMBER_SESSION_TOO: &[&str] = &[
    "/api/members/{id}/profile",
    "/api/tasks/{id}/status",
    "/api/tasks/{id}/questionnaire-response",
];

/// Routes a signed-in member calls with their session token, not an API key: every API key is
/// refused (401), as no key is a session.
/// Routes anyone may call without a key (the portal front end's branding).
const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/branding"),
    ("GET", "/api/branding/icon"),
    ("GET", "/api/news"),
    // Authenticated by the gateway's signature, not a key.
    ("POST", "/api/bills/payment-notice"),
];

const SESSION_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/me"),
    ("POST", "/api/sign-out"),
    ("GET", "/api/me/proxies"),
    ("GET", "/api/me/principals/{id}"),
    ("GET", "/api/me/results"),
    ("GET", "/api/me/results/{id}/document"),
    ("GET", "/api/me/principals/{id}/results"),
    ("GET", "/api/me/principals/{id}/results/{report}/document"),
    ("GET", "/api/me/appointments"),
    ("GET", "/api/me/appointments/{id}/ics"),
    ("GET", "/api/me/principals/{id}/appointments"),
    ("GET", "/api/me/principals/{id}/appointments/{appointment}/ics"),
    ("POST", "/api/me/appointments/{id}/cancel"),
    (
        "POST",
        "/api/me/principals/{id}/appointments/{appointment}/cancel",
    ),
    ("GET", "/api/me/documents"),
    ("GET", "/api/me/documents/{id}/content"),
    ("GET", "/api/me/principals/{id}/documents"),
    ("GET", "/api/me/principals/{id}/documents/{document}/content"),
    ("GET", "/api/me/summary"),
    ("GET", "/api/me/news"),
    ("GET", "/api/me/consents"),
    ("GET", "/api/me/messages"),
    ("GET", "/api/me/messages/{id}"),
    ("PUT", "/api/me/messages/{id}"),
    ("GET", "/api/me/messages/{id}/attachments/{n}"),
    ("POST", "/api/me/messages"),
    ("POST", "/api/me/messages/{id}/reply"),
    ("GET", "/api/me/principals/{id}/messages"),
    ("POST", "/api/me/principals/{id}/messages"),
    ("GET", "/api/me/principals/{id}/messages/{message}"),
    ("PUT", "/api/me/principals/{id}/messages/{message}"),
    ("POST", "/api/me/principals/{id}/messages/{message}/reply"),
    (
        "GET",
        "/api/me/principals/{id}/messages/{message}/attachments/{n}",
    ),
    ("GET", "/api/me/providers"),
    ("GET", "/api/me/favourites"),
    ("PUT", "/api/me/favourites/{type}/{id}"),
    ("DELETE", "/api/me/favourites/{type}/{id}"),
    ("PUT", "/api/me/consents/{id}"),
    ("GET", "/api/me/principals/{id}/consents"),
    ("PUT", "/api/me/principals/{id}/consents/{consent}"),
    ("GET", "/api/me/bills"),
    ("GET", "/api/me/bills/{id}/document"),
    ("POST", "/api/me/bills/{id}/pay"),
    ("GET", "/api/me/principals/{id}/bills"),
    ("GET", "/api/me/principals/{id}/bills/{bill}/document"),
    ("POST", "/api/me/principals/{id}/bills/{bill}/pay"),
    ("GET", "/api/me/principals/{id}/summary"),
    ("GET", "/api/me/care-plans"),
    ("POST", "/api/me/care-plans/{id}/questionnaire-response"),
    ("GET", "/api/me/principals/{id}/care-plans"),
    (
        "POST",
        "/api/me/principals/{id}/care-plans/{plan}/questionnaire-response",
    ),
];

#[tokio::test]
async fn member_session_routes_take_a_session_not_an_api_key() {
    let w = start("").await;
    for (method, path) in SESSION_ROUTES {
        let (status, answer) = w.call(method, path, None, None).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (401, Some("unauthenticated")),
            "{path}"
        );
        for (client, ..) in CLIENTS.iter().chain(crate::common::TEST_CLIENTS) {
            let (status, answer) = w.call(method, path, Some(client), None).await;
            assert_eq!(status, 401, "{method} {path} as {client}: {answer}");
        }
    }
}

#[tokio::test]
async fn every_endpoint_allows_exactly_its_roles() {
    let w = start("").await;
    for (method, route, allowed) in TABLE {
        let path = route.replace("{id}", "no-such-id");
        let body = (*method != "GET").then(|| json!({}));
        let (status, answer) = w.call(method, &path, None, body.clone()).await;
        assert_eq!(status, 401, "{method} {path} anonymous: {answer}");
        assert_eq!(answer["code"], "unauthenticated");
        // An unknown key is no better than none.
        let response = w
            .http
            .request(method.parse().unwrap(), format!("{}{path}", w.engine.http))
            .bearer_auth("not-a-configured-key")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{method} {path} unknown key");
        assert!(response.headers().contains_key("www-authenticate"));
        for (client, ..) in CLIENTS.iter().chain(crate::common::TEST_CLIENTS) {
            let (status, answer) = w.call(method, &path, Some(client), body.clone()).await;
            if allowed.contains(client) && MEMBER_SESSION_TOO.contains(route) {
                assert_eq!(
                    (status, answer["code"].as_str()),
                    (401, Some("unauthenticated")),
                    "{method} {path} as {client} without a member session: {answer}"
                );
                assert!(answer["error"].as_str().unwrap().contains("X-Member-Session"));
            } else if allowed.contains(client) {
                assert!(
                    status != 403 && status != 401 && status != 405 && status < 500,
                    "{method} {path} as {client} should be allowed: {status} {answer}"
                );
            } else {
                assert_eq!(status, 403, "{method} {path} as {client}: {answer}");
                assert_eq!(answer["code"], "forbidden");
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes() {
    let w = start("").await;
    let (status, doc) = w.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.push((method.to_uppercase(), path.clone()));
            if PUBLIC_ROUTES
                .iter()
                .any(|(m, p)| m.eq_ignore_ascii_case(method) && p == path)
            {
                assert_eq!(operation["security"], json!([]), "{method} {path}");
                let (status, answer) = w.call(&method.to_uppercase(), path, None, None).await;
                assert!(
                    status != 401 && status != 403 && status < 500,
                    "{method} {path} without a key: {status} {answer}"
                );
                continue;
            }
            assert!(operation["responses"].get("401").is_some(), "{method} {path}");
            assert!(operation["x-roles"].is_string(), "{method} {path}");
            // Session routes say they take a session, the others an API key.
            let scheme = if SESSION_ROUTES
                .iter()
                .any(|(m, p)| m.eq_ignore_ascii_case(method) && p == path)
            {
                "session"
            } else {
                "apiKey"
            };
            assert!(
                operation["security"][0].get(scheme).is_some(),
                "{method} {path}: {operation}"
            );
            // Every documented route is served (a key-less call is refused, not unknown).
            let (status, _) = w
                .call(
                    &method.to_uppercase(),
                    &path.replace("{id}", "x"),
                    None,
                    Some(json!({})),
                )
                .await;
            assert_eq!(
                status, 401,
                "{method} {path} is documented but not served as documented"
            );
        }
    }
    documented.sort();
    let mut tested: Vec<(String, String)> = TABLE
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.split('?').next().unwrap().to_string()))
        .chain(SESSION_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())))
        .chain(PUBLIC_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())))
        .collect();
    tested.sort();
    tested.dedup();
    assert_eq!(
        documented, tested,
        "the document and the role table list the same endpoints"
    );
    let (status, _) = w
        .call("GET", "/api/no-such-endpoint", Some("manager"), None)
        .await;
    assert_eq!(status, 404);
}
