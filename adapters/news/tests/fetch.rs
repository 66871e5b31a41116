//! The fetcher against a real HTTP server on 127.0.0.1: conditional GET, statuses, size and
//! time limits, redirects, and what parsing the body gives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tributary_adapter_news::{FetchError, Fetched, Fetcher, ParseError, Validators};

const RSS: &str = include_str!("fixtures/hospital-news.rss");
const ATOM: &str = include_str!("fixtures/hospital-news.atom");
const MALFORMED: &str = include_str!("fixtures/malformed.xml");

const ETAG: &str = "\"rgh-news-v2\"";
const LAST_MODIFIED: &str = "Tue, 10 Jun 2025 14:00:00 GMT";
/// The fetchers' body limit in these tests.
const LIMIT: u64 = 64 * 1024;
/// The fetchers' timeout in these tests: short, so the hanging routes fail fast.
const TIMEOUT: Duration = Duration::from_millis(500);

/// Serves the test routes on 127.0.0.1, port chosen by the system; runs until the test's
/// runtime ends.
async fn server() -> SocketAddr {
    static SPACES: [u8; 8192] = [b' '; 8192];
    let app = Router::new()
        .route(
            "/rss.xml",
            get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], RSS) }),
        )
        .route(
            "/atom.xml",
            get(|| async { ([(header::CONTENT_TYPE, "application/atom+xml")], ATOM) }),
        )
        .route("/malformed.xml", get(|| async { MALFORMED }))
        .route("/conditional.xml", get(conditional))
        .route(
            "/error",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database on fire") }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/big.xml",
            get(|| async { vec![b' '; usize::try_from(LIMIT + 1).unwrap_or(usize::MAX)] }),
        )
        .route(
            "/endless.xml",
            // Chunked, no length, never ends: only refusing while streaming can stop this.
            get(|| async {
                let chunks = stream::repeat_with(|| Ok::<_, Infallible>(Bytes::from_static(&SPACES)));
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/hang.xml",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                RSS
            }),
        )
        .route(
            "/stall.xml",
            // Headers and the start of the body, then nothing more.
            get(|| async {
                let start = stream::iter([Ok::<_, Infallible>(Bytes::from_static(b"<rss version=\"2.0\">"))]);
                Body::from_stream(start.chain(stream::pending()))
            }),
        )
        .route("/moved.xml", get(|| async { Redirect::temporary("/atom.xml") }))
        .route("/loop.xml", get(|| async { Redirect::temporary("/loop.xml") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// 304 when either validator it gave comes back, else the feed with both.
async fn conditional(headers: HeaderMap) -> Response {
    let given = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if given(header::IF_NONE_MATCH) == Some(ETAG) || given(header::IF_MODIFIED_SINCE) == Some(LAST_MODIFIED) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [(header::ETAG, ETAG), (header::LAST_MODIFIED, LAST_MODIFIED)],
        RSS,
    )
        .into_response()
}

fn fetcher() -> Fetcher {
    Fetcher::new(reqwest::Client::new(), LIMIT, TIMEOUT)
}

async fn fetch(addr: SocketAddr, path: &str, validators: &Validators) -> Result<Fetched, FetchError> {
    fetcher().fetch(&format!("http://{addr}{path}"), validators).await
}

fn changed(fetched: Result<Fetched, FetchError>) -> (Vec<tributary_adapter_news::Item>, Validators) {
    match fetched {
        Ok(Fetched::Changed { items, validators }) => (items, validators),
        other => panic!("expected Changed, got {other:?}"),
    }
}

/// The engine runs fetches on spawned tasks: the future must be `Send`, and the fetcher shared.
#[test]
fn fetch_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_clone_sync<T: Clone + Send + Sync>() {}
    assert_clone_sync::<Fetcher>();
    let fetcher = fetcher();
    let validators = Validators::default();
    // Never polled: only its type matters.
    let future = fetcher.fetch("http://127.0.0.1:9/", &validators);
    assert_send(&future);
}

#[tokio::test]
async fn fetches_and_parses_rss() {
    let addr = server().await;
    let (items, validators) = changed(fetch(addr, "/rss.xml", &Validators::default()).await);
    let titles: Vec<_> = items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "New visiting hours from Monday",
            "Flu clinic: walk-ins welcome <no appointment needed>",
            "Car park A closed for resurfacing",
            "Caf\u{e9} opening times & menu",
        ]
    );
    assert_eq!(items[0].published.as_deref(), Some("2025-06-10T14:00:00Z"));
    assert_eq!(validators, Validators::default(), "the server gave no validators");
}

#[tokio::test]
async fn fetches_atom_and_resolves_relative_links() {
    let addr = server().await;
    let (items, _) = changed(fetch(addr, "/atom.xml", &Validators::default()).await);
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0].link.as_deref(),
        Some("https://news.riverside-general.example/2025/06/mri")
    );
    let resolved = format!("http://{addr}/2025/06/blood-drive");
    assert_eq!(items[1].link.as_deref(), Some(resolved.as_str()));
}

#[tokio::test]
async fn follows_a_redirect_and_resolves_against_the_final_url() {
    let addr = server().await;
    let (items, _) = changed(fetch(addr, "/moved.xml", &Validators::default()).await);
    assert_eq!(items.len(), 3);
    match fetch(addr, "/loop.xml", &Validators::default()).await {
        Err(FetchError::Request(e)) => assert!(e.is_redirect(), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn conditional_get_gives_not_modified() {
    let addr = server().await;
    let (items, validators) = changed(fetch(addr, "/conditional.xml", &Validators::default()).await);
    assert_eq!(items.len(), 4);
    assert_eq!(
        validators,
        Validators {
            etag: Some(ETAG.to_string()),
            last_modified: Some(LAST_MODIFIED.to_string()),
        }
    );
    // Both validators back, then each alone: the server recognises them and sends no body.
    assert_eq!(
        fetch(addr, "/conditional.xml", &validators).await.ok(),
        Some(Fetched::NotModified)
    );
    let etag_only = Validators {
        etag: validators.etag.clone(),
        last_modified: None,
    };
    assert_eq!(
        fetch(addr, "/conditional.xml", &etag_only).await.ok(),
        Some(Fetched::NotModified)
    );
    let date_only = Validators {
        etag: None,
        last_modified: validators.last_modified.clone(),
    };
    assert_eq!(
        fetch(addr, "/conditional.xml", &date_only).await.ok(),
        Some(Fetched::NotModified)
    );
    // A stale ETag gets the feed again.
    let stale = Validators {
        etag: Some("\"rgh-news-v1\"".to_string()),
        last_modified: None,
    };
    let (items, _) = changed(fetch(addr, "/conditional.xml", &stale).await);
    assert_eq!(items.len(), 4);
    // A stored value that cannot be a header is not sent: the fetch is unconditional.
    let unusable = Validators {
        etag: Some("bad\nvalue".to_string()),
        last_modified: None,
    };
    let (items, _) = changed(fetch(addr, "/conditional.xml", &unusable).await);
    assert_eq!(items.len(), 4);
}

#[tokio::test]
async fn malformed_body_is_a_parse_error() {
    let addr = server().await;
    match fetch(addr, "/malformed.xml", &Validators::default()).await {
        Err(FetchError::Parse(ParseError::Malformed { line, .. })) => assert_eq!(line, 7),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn error_statuses_are_status_errors() {
    let addr = server().await;
    for (path, expected) in [
        ("/error", StatusCode::INTERNAL_SERVER_ERROR),
        ("/missing", StatusCode::NOT_FOUND),
    ] {
        match fetch(addr, path, &Validators::default()).await {
            Err(FetchError::Status { status }) => assert_eq!(status.as_u16(), expected.as_u16()),
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let addr = server().await;
    for path in ["/big.xml", "/endless.xml"] {
        let started = Instant::now();
        match fetch(addr, path, &Validators::default()).await {
            Err(e @ FetchError::TooLarge { limit: LIMIT }) => {
                assert_eq!(
                    e.to_string(),
                    format!("the feed is larger than the limit of {LIMIT} bytes")
                );
            }
            other => panic!("{path}: {other:?}"),
        }
        // The endless body is refused once past the limit, well before the timeout.
        assert!(started.elapsed() < TIMEOUT, "{path}: {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_server_that_hangs_times_out() {
    let addr = server().await;
    for path in ["/hang.xml", "/stall.xml"] {
        let started = Instant::now();
        match fetch(addr, path, &Validators::default()).await {
            Err(FetchError::Timeout { after, source }) => {
                assert_eq!(after, TIMEOUT);
                assert!(source.is_timeout());
            }
            other => panic!("{path}: {other:?}"),
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= TIMEOUT && elapsed < TIMEOUT * 6, "{path}: {elapsed:?}");
    }
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    // A port that was just free: nothing listens there once the listener is dropped.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    match fetch(addr, "/rss.xml", &Validators::default()).await {
        Err(e @ FetchError::Connect(_)) => {
            assert!(std::error::Error::source(&e).is_some(), "keeps its source");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_invalid_url_is_a_request_error() {
    match fetcher().fetch("not a url", &Validators::default()).await {
        Err(FetchError::Request(e)) => assert!(e.is_builder(), "{e}"),
        other => panic!("{other:?}"),
    }
}
