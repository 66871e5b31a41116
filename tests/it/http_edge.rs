//! The edge of the HTTP API against the real engine: request limits (body past axum's 2 MiB
//! default up to `http.max_body_bytes`, request target, header section) refused in the API's
//! own shapes (an OperationOutcome under /fhir, `{"error", "code"}` elsewhere), and the
//! security headers on every answer. HSTS with TLS on is tested where the router's layers are
//! (`src/api/edge.rs`): the engine here listens without TLS, so it must send none.

use crate::common::{ANALYST_KEY, EngineProcess, FHIR_KEY, temp_store};
use serde_json::{Value, json};

/// 3,500,000 bytes: above axum's 2 MiB default, below the default 4 MiB, so the test shows the
/// configured value is the one that holds.
const MAX_BODY: usize = 3_500_000;

fn start() -> (tempfile::TempDir, EngineProcess) {
    let (dir, data) = temp_store();
    let engine = EngineProcess::start_http(
        &data,
        &format!("max_body_bytes = {MAX_BODY}\nmax_uri_bytes = 4096\nmax_header_bytes = 8192"),
    );
    (dir, engine)
}

/// A DocumentReference carrying a base64 attachment of `size` characters.
fn document(size: usize) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{ "attachment": { "contentType": "application/pdf", "data": "QUJD".repeat(size / 4) } }],
    })
}

fn assert_outcome(status: u16, content_type: &str, body: &str, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert!(
        content_type.starts_with("application/fhir+json"),
        "{content_type}"
    );
    let outcome: Value = serde_json::from_str(body).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(outcome["issue"][0]["code"], "too-long", "{body}");
}

fn assert_api_error(status: u16, body: &str, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    let error: Value = serde_json::from_str(body).unwrap();
    assert_eq!(error["code"], code, "{body}");
    assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

/// Status, Content-Type and body of an answer.
async fn read(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn a_body_past_two_mib_is_taken_up_to_max_body_bytes_and_refused_beyond_it() {
    let (_dir, engine) = start();
    let client = reqwest::Client::new();
    let post = |path: &str, body: String| {
        client
            .post(format!("{}{path}", engine.http))
            .bearer_auth(FHIR_KEY)
            .header("content-type", "application/fhir+json")
            .body(body)
    };

    let large = document(3_000_000);
    let body = large.to_string();
    assert!(body.len() > 2 * 1024 * 1024 && body.len() < MAX_BODY);
    let (status, _, text) = read(post("/fhir/DocumentReference", body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{}", &text[..text.len().min(500)]);
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, text) = read(
        client
            .get(format!("{}/fhir/DocumentReference/{id}", engine.http))
            .bearer_auth(FHIR_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        stored["content"][0]["attachment"]["data"],
        large["content"][0]["attachment"]["data"]
    );

    let too_large = document(MAX_BODY).to_string();
    let (status, content_type, text) = read(
        post("/fhir/DocumentReference", too_large.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_outcome(status, &content_type, &text, 413);
    // In the format the client asked for.
    let (status, content_type, text) = read(
        post("/fhir/DocumentReference", too_large.clone())
            .header("accept", "application/fhir+xml")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert!(content_type.starts_with("application/fhir+xml"), "{content_type}");
    assert!(
        text.contains("<OperationOutcome") && text.contains("too-long"),
        "{text}"
    );

    let (status, _, text) = read(
        client
            .post(format!("{}/api/members", engine.http))
            .bearer_auth(ANALYST_KEY)
            .header("content-type", "application/json")
            .body(too_large)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_api_error(status, &text, 413, "body-too-large");
}

#[tokio::test]
async fn a_long_target_is_a_414_and_large_headers_a_431_in_each_apis_shape() {
    let (_dir, engine) = start();
    let client = reqwest::Client::new();
    let get = |path: String| client.get(format!("{}{path}", engine.http)).bearer_auth(FHIR_KEY);

    // Just under the limit the search runs.
    let name = "x".repeat(4000);
    let (status, _, text) = read(get(format!("/fhir/Patient?name={name}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{text}");
    let name = "x".repeat(5000);
    let (status, content_type, text) =
        read(get(format!("/fhir/Patient?name={name}")).send().await.unwrap()).await;
    assert_outcome(status, &content_type, &text, 414);
    let (status, _, text) = read(get(format!("/api/members?name={name}")).send().await.unwrap()).await;
    assert_api_error(status, &text, 414, "uri-too-long");

    let padding = "p".repeat(9000);
    let (status, content_type, text) = read(
        get("/fhir/Patient".into())
            .header("x-padding", &padding)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_outcome(status, &content_type, &text, 431);
    let (status, _, text) = read(
        get("/journal".into())
            .header("x-padding", &padding)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_api_error(status, &text, 431, "headers-too-large");

    // More than 100 header fields: hyper refuses them itself, before the router, with an empty
    // body (README, HTTP API); the answer is still a 431 and the engine goes on serving.
    let mut many = get("/fhir/Patient".into());
    for n in 0..120 {
        many = many.header(format!("x-field-{n}"), "1");
    }
    let (status, _, text) = read(many.send().await.unwrap()).await;
    assert_eq!(status, 431);
    assert!(text.is_empty(), "{text}");
    let (status, _, _) = read(get("/fhir/Patient".into()).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn answers_that_carry_phi_are_not_stored_and_none_is_sniffed_or_promised_tls() {
    let (_dir, engine) = start();
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/fhir/DocumentReference", engine.http))
        .bearer_auth(FHIR_KEY)
        .header("content-type", "application/fhir+json")
        .body(document(400).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let phi = [
        (FHIR_KEY, format!("/fhir/DocumentReference/{id}")),
        (FHIR_KEY, format!("/fhir/DocumentReference/{id}/_history")),
        (FHIR_KEY, "/fhir/Patient?name=x".into()),
        ("", "/fhir/Patient".into()),
        (ANALYST_KEY, "/api/members".into()),
        ("", "/api/me".into()),
        (ANALYST_KEY, "/journal".into()),
        (ANALYST_KEY, "/outbox/dead-letters".into()),
        (ANALYST_KEY, "/outbox/somewhere/pending".into()),
        (ANALYST_KEY, "/no/such/thing".into()),
    ];
    for (key, path) in &phi {
        let response = client
            .get(format!("{}{path}", engine.http))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(
            headers.get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(
            headers.get("strict-transport-security").is_none(),
            "{path}: no TLS, no HSTS"
        );
    }
    for path in ["/health", "/fhir/metadata"] {
        let response = client.get(format!("{}{path}", engine.http)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(
            headers.get("cache-control").is_none(),
            "{path} is public and may be cached"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.get("strict-transport-security").is_none(), "{path}");
    }
}
