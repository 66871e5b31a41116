//! `tributary bench news`: one run of the `news-poll` job over F feeds of N items each (RSS 2.0,
//! served by an HTTP server in this process with an ETag), against the engine as a child
//! process on a fresh store. The job is scheduled every 10 seconds; the first run fetches and
//! keeps every item, the second finds every feed unchanged (304).
//!
//! Printed for each run: the wall time from the first fetch to the last feed recorded, and the
//! engine's CPU time for the run (in all and per item).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::Args;
use serde_json::Value;

use super::bench_process::{Measured, client_toml, engine_config};

const ANALYST_KEY: &str = "bench-analyst-key";

#[derive(Args)]
pub struct NewsBenchArgs {
    /// Feeds polled.
    #[arg(long, default_value_t = 20)]
    feeds: usize,
    /// Items in each feed.
    #[arg(long, default_value_t = 100)]
    items: usize,
    /// The mappings folder the benchmarked engine loads.
    #[arg(long, default_value = "mappings")]
    mappings: std::path::PathBuf,
}

/// The feeds served, and when the first request of each run came.
struct Served {
    feeds: Vec<String>,
    first_request: Mutex<Vec<Instant>>,
}

pub async fn bench_news(args: NewsBenchArgs) -> Result<(), String> {
    let run_id = chrono::Utc::now().format("%H%M%S%3f").to_string();
    let served = Arc::new(Served {
        feeds: (0..args.feeds).map(|f| rss(f, args.items)).collect(),
        first_request: Mutex::new(vec![]),
    });
    let server = serve(served.clone()).await?;
    let dir = std::env::temp_dir().join(format!("tributary-bench-news-{}-{run_id}", std::process::id()));
    let feeds: String = (0..args.feeds)
        .map(|f| format!("[[news.feeds]]\nname = \"feed-{f}\"\nurl = \"http://{server}/feed/{f}\"\n"))
        .collect();
    let config = engine_config(
        &dir.join("store"),
        &args.mappings,
        &format!(
            "[news]\nmax_feed_bytes = 8388608\ntimeout_secs = 20\n{feeds}\
             [[schedule]]\njob = \"news-poll\"\ncron = \"*/10 * * * * *\"\n{}",
            client_toml("analyst", ANALYST_KEY, "integration-analyst")
        ),
    )?;
    let engine = Measured::engine(&config, dir).await?;
    let base = format!("http://{}", engine.http.ok_or("the engine has no HTTP listener")?);
    println!(
        "news: {} RSS feeds of {} items each, polled by the news-poll job (every 10 s)",
        args.feeds, args.items
    );
    let http = reqwest::Client::new();
    let measured = async {
        let mut rows = vec![];
        let mut after = String::new();
        for (run, what) in [
            (1, "first run (every item new)"),
            (2, "second run (every feed 304)"),
        ] {
            // The engine's idle time between runs is not the run's.
            tokio::time::sleep(until_just_before_a_run()).await;
            let before = engine.cpu();
            let (done, last_run) = wait_for_run(&http, &base, &after, args.feeds * args.items).await?;
            after = last_run;
            let cpu = engine.cpu_when_idle().await.since(&before);
            let first = served
                .first_request
                .lock()
                .map_err(|_| "lock poisoned")?
                .get(run - 1)
                .copied()
                .ok_or("no fetch was seen")?;
            rows.push((what, done.duration_since(first), cpu.total));
        }
        Ok::<_, String>(rows)
    }
    .await;
    engine.stop().await;
    for (what, wall, cpu) in measured? {
        println!(
            "{what}: {:.0} ms from the first fetch to the last feed recorded; engine CPU {:.1} ms ({:.1} us per item)",
            wall.as_secs_f64() * 1000.0,
            cpu.as_secs_f64() * 1000.0,
            cpu.as_secs_f64() * 1e6 / (args.feeds * args.items) as f64
        );
    }
    Ok(())
}

/// How long until 300 ms before the job's next run (every 10 s on the clock).
fn until_just_before_a_run() -> Duration {
    let into_cycle = chrono::Utc::now().timestamp_millis().rem_euclid(10_000);
    Duration::from_millis((10_000 - into_cycle - 300).rem_euclid(10_000) as u64)
}

/// Waits until every feed has been run after `after` (an RFC 3339 instant, or empty) and the
/// feeds keep `items` in all; answers when that was seen and the run's last `last_run`.
async fn wait_for_run(
    http: &reqwest::Client,
    base: &str,
    after: &str,
    items: usize,
) -> Result<(Instant, String), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = http
            .get(format!("{base}/api/news/feeds"))
            .bearer_auth(ANALYST_KEY)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let answer: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        let feeds = answer["feeds"].as_array().cloned().unwrap_or_default();
        let runs: Vec<&str> = feeds
            .iter()
            .filter_map(|f| f["state"]["last_run"].as_str())
            .filter(|run| *run > after)
            .collect();
        let kept: u64 = feeds.iter().filter_map(|f| f["state"]["items"].as_u64()).sum();
        if !feeds.is_empty() && runs.len() == feeds.len() && kept as usize >= items {
            let last = runs.iter().max().map(|r| r.to_string()).unwrap_or_default();
            return Ok((Instant::now(), last));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "a run after `{after}` did not finish within 60 s: {answer}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn serve(served: Arc<Served>) -> Result<SocketAddr, String> {
    let app = axum::Router::new()
        .route("/feed/{n}", axum::routing::get(feed))
        .with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn feed(State(served): State<Arc<Served>>, Path(n): Path<usize>, headers: HeaderMap) -> Response {
    let etag = format!("\"feed-{n}\"");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    if let Ok(mut first) = served.first_request.lock() {
        // A run's first request: the first ever, or the first after every feed was served.
        let runs = if unchanged { 2 } else { 1 };
        if first.len() < runs {
            first.push(Instant::now());
        }
    }
    let Some(body) = served.feeds.get(n) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, "application/rss+xml".to_string()),
        ],
        body.clone(),
    )
        .into_response()
}

/// Feed `f`: `items` items, newest first, each with a title, link, guid, date and a paragraph.
fn rss(f: usize, items: usize) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Feed {f}</title><link>https://news.bench.test/{f}</link><description>Bench feed {f}</description>\n"
    );
    let start = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").expect("a valid instant");
    for i in 0..items {
        let published = (start - chrono::Duration::minutes((i * 37 + f) as i64)).to_rfc2822();
        xml.push_str(&format!(
            "<item><title>Feed {f} news {i}: the clinic &amp; its new hours</title>\
             <link>https://news.bench.test/{f}/{i}</link><guid>bench-{f}-{i}</guid>\
             <pubDate>{published}</pubDate>\
             <description>&lt;p&gt;From Monday the clinic opens at 8 and closes at 18; \
             appointments can be booked in the portal.&lt;/p&gt;</description></item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}
