//! The edge of the HTTP API: what every request and every answer goes through, whatever route it
//! takes. It owns the request limits (body, request target, header section) and their refusals
//! (413, 414, 431), shaped like the rest of the API: an OperationOutcome (`too-long`) under
//! `/fhir`, in the format asked for, and `{"error", "code"}` elsewhere. It also owns the security
//! headers: `X-Content-Type-Options: nosniff` on every answer, `Cache-Control: no-store` on every
//! answer that may carry PHI, and `Strict-Transport-Security` when the listener speaks TLS.
//!
//! A body refused by its Content-Length is read and dropped (bounded) before the 413 goes out,
//! unless the client waits for a go-ahead (`Expect: 100-continue`): a client still sending when
//! the connection closes would otherwise see a reset instead of the answer.
//!
//! hyper reads the request head before any of this runs and answers some requests itself, with
//! an empty body: a target longer than 65,534 bytes (414), more than 100 header fields or a head
//! larger than its read buffer, about 408 KiB (431). The limits here stay below those (the config
//! refuses larger ones), so a request the router sees is refused in the API's own shape.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::fhir::format::{self, Format};
use super::fhir_error;
use super::members::reply;
use crate::config::HttpConfig;

/// How the HTTP API treats every request and answer.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `http.max_body_bytes`: a larger body is a 413.
    pub max_body_bytes: usize,
    /// `http.max_uri_bytes`: a longer request target (path and query) is a 414.
    pub max_uri_bytes: usize,
    /// `http.max_header_bytes`: a larger header section is a 431.
    pub max_header_bytes: usize,
    /// `Strict-Transport-Security` on every answer: only when the listener speaks TLS (a browser
    /// ignores it over plain HTTP, and it must never promise TLS that is not there).
    pub hsts: bool,
}

impl Options {
    /// The limits of `[http]`; `tls` says whether the listener speaks TLS (it turns HSTS on).
    pub fn of(http: &HttpConfig, tls: bool) -> Options {
        Options {
            max_body_bytes: *http.max_body_bytes.get_ref(),
            max_uri_bytes: *http.max_uri_bytes.get_ref(),
            max_header_bytes: *http.max_header_bytes.get_ref(),
            hsts: tls,
        }
    }
}

/// HSTS for a year, the common floor (browsers' preload lists ask for at least that).
const HSTS: &str = "max-age=31536000";

/// The only answers that never carry PHI: everything else is `no-store`, so a route added later
/// is covered without anyone remembering to.
const PUBLIC_PATHS: [&str; 3] = ["/health", "/fhir/metadata", "/api/openapi.json"];

/// The layers every route sits in, innermost first: the body limit (axum's own 2 MiB default
/// for extractors raised to the configured limit, so the configured one is the one that holds),
/// the timeout, tracing, panics as 500s, the edge itself, so that even a panic's answer carries
/// the security headers, and outermost the FHIR path's trailing slash taken off.
///
/// The slash goes before routing (a layer of `routes` runs after it): the routes are wrapped as
/// the fallback of an outer router whose only layer rewrites the path.
pub fn layers(routes: Router, options: Options) -> Router {
    let inner = routes
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(options.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            fhir_error(StatusCode::INTERNAL_SERVER_ERROR, "exception", "internal error")
        }))
        .layer(axum::middleware::from_fn_with_state(options, edge));
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::map_request(without_trailing_slash))
}

/// `/fhir/`, `/fhir/metadata/`, `/fhir/Patient/?family=x`: one trailing slash on a FHIR path is
/// taken off, so the request is routed (and guarded, and shaped) as the path without it. FHIR
/// clients (fhirpy, fhirclient, fhir-kit-client) post transactions and batches to `[base]/`,
/// and build searches as `[base]/[type]/?...`.
async fn without_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    let Some(trimmed) = path.strip_suffix('/') else {
        return request;
    };
    if trimmed != "/fhir" && !trimmed.starts_with("/fhir/") {
        return request;
    }
    let target = match request.uri().query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_string(),
    };
    let mut parts = request.uri().clone().into_parts();
    // A path that parsed once parses again without its last byte; if not, it is left as sent.
    if let Ok(path_and_query) = target.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// Who a refusal is for, by the path asked: a FHIR client (in the format it asked for) or a
/// client of the JSON APIs.
#[derive(Debug, Clone, Copy)]
enum Audience {
    Fhir(Format),
    Json,
}

impl Audience {
    fn of(request: &Request) -> Audience {
        let path = request.uri().path();
        if path != "/fhir" && !path.starts_with("/fhir/") {
            return Audience::Json;
        }
        Audience::Fhir(Format::asked(request.headers(), request.uri().query()))
    }

    /// A request that is too large in some part: `too-long` for FHIR, `code` for the JSON APIs.
    fn too_large(self, status: StatusCode, code: &str, message: &str) -> Response {
        match self {
            Audience::Fhir(format) => format::error(format, status, "too-long", message),
            Audience::Json => reply::error(status, code, message),
        }
    }
}

async fn edge(State(options): State<Options>, request: Request, next: Next) -> Response {
    let public = PUBLIC_PATHS.contains(&request.uri().path());
    let audience = Audience::of(&request);
    let target = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let mut response = if target > options.max_uri_bytes {
        audience.too_large(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            &format!(
                "the request target is {target} bytes, more than the {} this server takes",
                options.max_uri_bytes
            ),
        )
    } else if header_bytes(request.headers()) > options.max_header_bytes {
        audience.too_large(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            &format!(
                "the request headers are larger than the {} bytes this server takes",
                options.max_header_bytes
            ),
        )
    } else if declared_length(request.headers()).is_some_and(|n| n > options.max_body_bytes) {
        // Refused by its Content-Length, before it is read.
        if !expects_continue(request.headers()) {
            drain(
                request.into_body(),
                options.max_body_bytes.saturating_mul(DRAIN_FACTOR),
            )
            .await;
        }
        audience.too_large(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            &body_too_large(options.max_body_bytes),
        )
    } else {
        let response = next.run(request).await;
        if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !shaped(response.headers()) {
            // The body limit's own answer (plain text), for a body without Content-Length that
            // went past the limit as it was read: say it the API's way.
            audience.too_large(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                &body_too_large(options.max_body_bytes),
            )
        } else {
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !public {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if options.hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}

fn body_too_large(max: usize) -> String {
    format!("the request body is larger than the {max} bytes this server takes")
}

/// The body length the request declares, if it does.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the client waits for a go-ahead before it sends the body: then it reads the refusal
/// first and never sends the body at all.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// An oversized body is read and dropped up to this many times the limit before the 413 goes
/// out; a body larger than that is cut off (the connection closes).
const DRAIN_FACTOR: usize = 4;

/// How long an oversized body is read and dropped at most.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Reads and drops a refused body, up to `most` bytes and [`DRAIN_TIME`]. A client that is still
/// sending when the server answers and closes gets a connection reset, often before it reads
/// the answer: it would see a broken connection instead of the 413 saying why. Reading the rest
/// first (bounded, so it costs no more than a few requests within the limit) lets it read the
/// answer.
async fn drain(mut body: Body, most: usize) {
    let mut read = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while read <= most {
            match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                Some(Err(_)) | None => break,
            }
        }
    })
    .await;
}

/// The size of a header section as sent: each field's name, value, `: ` and line end.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Whether an answer is already in one of the API's shapes (JSON or XML), rather than the plain
/// text or empty body of a layer.
fn shaped(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json") || t.contains("xml"))
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use axum::routing::{get, post};
    use serde_json::Value;

    use super::*;

    const OPTIONS: Options = Options {
        max_body_bytes: 4096,
        max_uri_bytes: 1024,
        max_header_bytes: 2048,
        hsts: true,
    };

    /// The edge layers around a few routes that stand for the real ones, served on loopback.
    async fn serve(options: Options) -> String {
        async fn echo(body: Bytes) -> String {
            body.len().to_string()
        }
        let routes = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/fhir/metadata", get(|| async { "{}" }))
            .route("/fhir/Binary", post(echo))
            .route("/api/things", post(echo))
            .route("/journal", get(|| async { "[]" }));
        let app = layers(routes, options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn with_tls_every_answer_carries_hsts_and_nosniff_and_phi_is_not_stored() {
        let base = serve(OPTIONS).await;
        let client = reqwest::Client::new();
        for path in ["/health", "/fhir/metadata", "/journal", "/nowhere"] {
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            let headers = response.headers();
            assert_eq!(headers["strict-transport-security"], "max-age=31536000", "{path}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
            let no_store = headers.get("cache-control").is_some_and(|v| v == "no-store");
            assert_eq!(no_store, !PUBLIC_PATHS.contains(&path), "{path}");
        }
        // Refusals from the edge itself carry them too.
        let long = format!("{base}/journal?q={}", "x".repeat(2000));
        let response = client.get(long).send().await.unwrap();
        assert_eq!(response.status(), 414);
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
    }

    #[tokio::test]
    async fn without_tls_there_is_no_hsts() {
        let base = serve(Options {
            hsts: false,
            ..OPTIONS
        })
        .await;
        let response = reqwest::get(format!("{base}/journal")).await.unwrap();
        assert!(response.headers().get("strict-transport-security").is_none());
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_in_each_audiences_shape_even_when_streamed() {
        let base = serve(OPTIONS).await;
        let client = reqwest::Client::new();
        let fine = client
            .post(format!("{base}/fhir/Binary"))
            .body(vec![b'a'; 4096])
            .send()
            .await
            .unwrap();
        assert_eq!(fine.text().await.unwrap(), "4096");
        // A chunked body has no Content-Length to refuse up front: the limit holds as it is read.
        let answer = chunked(&base, "/fhir/Binary", &[b'a'; 5000]).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let outcome: Value = serde_json::from_str(body).unwrap();
        assert_eq!(outcome["issue"][0]["code"], "too-long", "{answer}");
        let api = client
            .post(format!("{base}/api/things"))
            .body(vec![b'a'; 5000])
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 413);
        let error: Value = serde_json::from_str(&api.text().await.unwrap()).unwrap();
        assert_eq!(error["code"], "body-too-large");
    }

    /// The answer to a POST of `body` in chunks of 1,000 bytes, without Content-Length.
    async fn chunked(base: &str, path: &str, body: &[u8]) -> String {
        let mut request = Vec::new();
        for chunk in body.chunks(1000) {
            request.extend(format!("{:x}\r\n", chunk.len()).bytes());
            request.extend(chunk);
            request.extend(b"\r\n");
        }
        request.extend(b"0\r\n\r\n");
        raw(
            base,
            &format!("POST {path} HTTP/1.1\r\nTransfer-Encoding: chunked"),
            &request,
        )
        .await
    }

    /// The answer to a request of `head` (request line and headers) and `body`, as sent.
    async fn raw(base: &str, head: &str, body: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
        request.extend(body);
        // The server may answer and close before it has read everything: a failed write is fine.
        let _ = stream.write_all(&request).await;
        let mut answer = Vec::new();
        // A guard against a hang, not a measure of speed.
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "no answer: {}", String::from_utf8_lossy(&answer));
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_declared_oversized_body_is_answered_before_it_is_sent_when_the_client_waits_for_it() {
        let base = serve(OPTIONS).await;
        // The client says it waits for a go-ahead: the answer comes without it sending the body
        // (were the body awaited, this would hang: it is never sent).
        let answer = raw(
            &base,
            "POST /fhir/Binary HTTP/1.1\r\nContent-Length: 100000\r\nExpect: 100-continue",
            b"",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(!answer.contains("100 Continue"), "{answer}");
        assert!(answer.contains("too-long"), "{answer}");
        // A client that sends it anyway gets the same answer once it has.
        let answer = raw(
            &base,
            "POST /api/things HTTP/1.1\r\nContent-Length: 100000",
            &[b'a'; 100_000],
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("body-too-large"), "{answer}");
    }
}
