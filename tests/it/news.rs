//! News over the wire (issue 17, release notes 6.7): a real HTTP server serves RSS 2.0 and Atom
//! feeds (one answering 304 to its ETag, one that turns to garbage and back, one that fails);
//! the engine's `news-poll` job fetches them on its cron; the public endpoint gives the three
//! newest items across feeds, a signed-in member the fifty newest; a failing feed keeps its old
//! items, is shown failing to an analyst, and recovers on a later run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::Value;

use crate::credentials_support::{active_jane, as_member, session_of};
use crate::members_support::{World, start};

const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Riverside news</title><link>https://news.example/</link>
<item><title>Flu clinics open &amp; walk-ins welcome</title><link>https://news.example/flu</link><guid>rss-1</guid><pubDate>Wed, 01 Oct 2025 09:00:00 GMT</pubDate><description><![CDATA[<p>Clinics open <b>Monday</b>.</p>]]></description></item>
<item><title>New parking at the east entrance</title><link>https://news.example/parking</link><guid>rss-2</guid><pubDate>Fri, 03 Oct 2025 09:00:00 GMT</pubDate></item>
<item><title>Portal upgrade this weekend</title><guid>rss-3</guid><pubDate>Tue, 07 Oct 2025 18:30:00 +0100</pubDate></item>
</channel></rss>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Research news</title><id>urn:uuid:research</id><updated>2025-10-06T10:00:00Z</updated>
<entry><title>Trial results published</title><id>urn:uuid:a1</id><link href="https://research.example/a1"/><updated>2025-10-06T10:00:00Z</updated><summary>A summary.</summary></entry>
<entry><title>Volunteers wanted</title><id>urn:uuid:a2</id><link rel="alternate" href="https://research.example/a2"/><updated>2025-10-02T10:00:00Z</updated></entry>
</feed>"#;

const SWITCHING: &str = r#"<rss version="2.0"><channel><title>Switching</title>
<item><title>Kept through the outage</title><guid>sw-1</guid><pubDate>Thu, 02 Oct 2025 12:00:00 GMT</pubDate></item>
</channel></rss>"#;

/// The news server, counting what it answered.
#[derive(Default)]
struct Served {
    rss_full: AtomicUsize,
    rss_not_modified: AtomicUsize,
    garbage: AtomicBool,
}

async fn serve(served: Arc<Served>) -> SocketAddr {
    let rss_state = served.clone();
    let switch_state = served.clone();
    let app = Router::new()
        .route(
            "/rss.xml",
            get(move |headers: HeaderMap| {
                let served = rss_state.clone();
                async move {
                    if headers
                        .get(header::IF_NONE_MATCH)
                        .is_some_and(|v| v == "\"rss-v1\"")
                    {
                        served.rss_not_modified.fetch_add(1, Ordering::SeqCst);
                        return StatusCode::NOT_MODIFIED.into_response();
                    }
                    served.rss_full.fetch_add(1, Ordering::SeqCst);
                    (
                        [
                            (header::ETAG, "\"rss-v1\""),
                            (header::CONTENT_TYPE, "application/rss+xml"),
                        ],
                        RSS,
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/atom.xml",
            get(|| async { ([(header::CONTENT_TYPE, "application/atom+xml")], ATOM) }),
        )
        .route(
            "/switching.xml",
            get(move || {
                let served = switch_state.clone();
                async move {
                    if served.garbage.load(Ordering::SeqCst) {
                        "<html><body>Service temporarily unavailable".into_response()
                    } else {
                        SWITCHING.into_response()
                    }
                }
            }),
        )
        .route("/fails.xml", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Waits until every feed has been run after `after` (an RFC 3339 instant), and answers the states.
async fn feeds_run_after(w: &World, after: &str) -> Value {
    for _ in 0..100 {
        let (status, feeds) = w.get("/api/news/feeds", "analyst").await;
        assert_eq!(status, 200, "{feeds}");
        let all_run = feeds["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["state"]["last_run"].as_str().is_some_and(|run| run > after));
        if all_run {
            return feeds;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the news-poll job did not run every feed");
}

fn state_of<'a>(feeds: &'a Value, name: &str) -> &'a Value {
    &feeds["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no feed {name} in {feeds}"))["state"]
}

fn titles(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_news_poll_keeps_every_feeds_items_and_a_failing_feed_keeps_its_old_ones() {
    let served = Arc::new(Served::default());
    let addr = serve(served.clone()).await;
    let w = start(&format!(
        "[credentials]\nmode = \"portal\"\ntwo_factor = false\n\n\
         [news]\nmax_feed_bytes = 65536\ntimeout_secs = 5\n\
         [[news.feeds]]\nname = \"hospital\"\nurl = \"http://{addr}/rss.xml\"\n\
         [[news.feeds]]\nname = \"research\"\nurl = \"http://{addr}/atom.xml\"\n\
         [[news.feeds]]\nname = \"switching\"\nurl = \"http://{addr}/switching.xml\"\n\
         [[news.feeds]]\nname = \"broken\"\nurl = \"http://{addr}/fails.xml\"\n\n\
         [[schedule]]\njob = \"news-poll\"\ncron = \"* * * * * *\"\n"
    ))
    .await;
    let started = chrono::Utc::now().to_rfc3339();
    let feeds = feeds_run_after(&w, &started).await;
    assert_eq!(state_of(&feeds, "hospital")["items"], 3, "{feeds}");
    assert_eq!(state_of(&feeds, "research")["items"], 2);
    assert!(
        state_of(&feeds, "broken")["last_error"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{feeds}"
    );

    // The public page: the three newest across feeds; markup and entities made plain text.
    let (status, public) = w.call("GET", "/api/news", None, None).await;
    assert_eq!(status, 200, "{public}");
    assert_eq!(
        titles(&public),
        [
            "Portal upgrade this weekend",
            "Trial results published",
            "New parking at the east entrance"
        ]
    );
    assert_eq!(public["items"][0]["published"], "2025-10-07T17:30:00Z");
    // A signed-in member sees every item (up to fifty), newest first.
    active_jane(&w).await;
    let session = session_of(&w, "jane").await;
    let (status, mine) = as_member(&w, "GET", "/api/me/news", &session).await;
    assert_eq!(status, 200, "{mine}");
    let all = titles(&mine);
    assert_eq!(all.len(), 6, "{mine}");
    assert_eq!(all.last().unwrap(), "Flu clinics open & walk-ins welcome");
    let flu = mine["items"].as_array().unwrap().last().unwrap();
    assert_eq!(flu["summary"], "Clinics open Monday.");
    let (status, _) = w.call("GET", "/api/me/news", None, None).await;
    assert_eq!(status, 401, "members only");

    // Later runs send the ETag back and get 304s: the items stay as they are.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        served.rss_not_modified.load(Ordering::SeqCst) >= 1,
        "conditional GET"
    );
    assert_eq!(
        served.rss_full.load(Ordering::SeqCst),
        1,
        "the full feed was fetched once"
    );

    // The switching feed serves garbage: logged, its old item stays; it recovers later.
    served.garbage.store(true, Ordering::SeqCst);
    let broken_at = chrono::Utc::now().to_rfc3339();
    let feeds = feeds_run_after(&w, &broken_at).await;
    assert!(state_of(&feeds, "switching")["last_error"].is_string(), "{feeds}");
    let (_, mine) = as_member(&w, "GET", "/api/me/news", &session).await;
    assert!(
        titles(&mine).contains(&"Kept through the outage".to_string()),
        "{mine}"
    );
    served.garbage.store(false, Ordering::SeqCst);
    let fixed_at = chrono::Utc::now().to_rfc3339();
    let feeds = feeds_run_after(&w, &fixed_at).await;
    assert_eq!(
        state_of(&feeds, "switching")["last_error"],
        Value::Null,
        "{feeds}"
    );
}
