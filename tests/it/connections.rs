//! Idle and slow connections against the running engine: thousands of idle HTTP connections
//! starve neither `/health` nor the HL7 feed, the HTTP connection cap closes the excess at once,
//! idle and slow-header HTTP connections are closed, and MLLP still gets its ACKs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{EngineProcess, MAPPINGS, msa, temp_store, ucr_a28, write_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Bound for anything waited on, so a bug fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

/// The test config with extra `[http]` keys.
fn config_with_http(dir: &Path, http: &str) -> PathBuf {
    let path = write_config(dir, "", Path::new(MAPPINGS));
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen("[http]\n", &format!("[http]\n{http}\n"), 1);
    std::fs::write(&path, text).unwrap();
    path
}

/// Raises this process's soft limit on open files to the hard one, as the engine does for itself
/// at start, and returns the limit then in force.
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::from(u32::MAX));
    let Some(hard) = current.maximum else {
        return soft;
    };
    if soft >= hard {
        return soft;
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => hard,
        Err(_) => soft,
    }
}

fn start(http: &str) -> (tempfile::TempDir, EngineProcess) {
    let (dir, data) = temp_store();
    let config = config_with_http(dir.path(), http);
    let engine = EngineProcess::start_config(&config, &data);
    (dir, engine)
}

fn host(engine: &EngineProcess) -> String {
    engine.http.trim_start_matches("http://").to_string()
}

async fn health(engine: &EngineProcess) -> u16 {
    let client = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();
    let response = client
        .get(format!("{}/health", engine.http))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Opens `count` connections that send nothing; each task returns how long its connection
/// stayed open until the server closed it (or `None` if it outlived the patience).
async fn idle_connections(addr: &str, count: usize) -> JoinSet<Option<Duration>> {
    let mut open = JoinSet::new();
    for _ in 0..count {
        let stream = TcpStream::connect(addr).await.expect("connect");
        open.spawn(async move {
            let opened = Instant::now();
            let mut stream = stream;
            let mut buffer = [0u8; 64];
            match tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => Some(opened.elapsed()),
                Ok(Ok(_)) => panic!("the server sent bytes to a connection that asked for nothing"),
                Err(_) => None,
            }
        });
    }
    open
}

async fn lifetimes(mut open: JoinSet<Option<Duration>>) -> Vec<Option<Duration>> {
    let mut all = vec![];
    while let Some(lifetime) = open.join_next().await {
        all.push(lifetime.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_http_connections_starve_neither_health_nor_the_feed() {
    // The test holds every connection's client end: raise its own limit as the engine does.
    let limit = raise_fd_limit();
    // Under the engine's default cap (half the limit), leaving the test room for its own files.
    let count = 3000.min((limit / 2).saturating_sub(300) as usize);
    let (_dir, engine) = start("keep_alive_timeout_secs = 10\nheader_read_timeout_secs = 10");
    let open = idle_connections(&host(&engine), count).await;

    // With all of them open, the API and the feed answer.
    assert_eq!(health(&engine).await, 200);
    let mut client = tributary_adapter_mllp::Client::connect(&engine.mllp, Duration::from_secs(10))
        .await
        .unwrap();
    let ack = String::from_utf8(client.send(&ucr_a28("FLOOD1")).await.expect("an ACK").to_vec()).unwrap();
    assert_eq!(msa(&ack), ("AA".into(), "FLOOD1".into()), "{ack}");

    // And the server closes every idle one once the keep-alive timeout has passed.
    let lifetimes = lifetimes(open).await;
    let still_open = lifetimes.iter().filter(|l| l.is_none()).count();
    assert_eq!(
        still_open, 0,
        "{still_open} of {count} idle connections were never closed"
    );
    let early = lifetimes
        .iter()
        .flatten()
        .filter(|l| **l < Duration::from_secs(5))
        .count();
    assert_eq!(
        early, 0,
        "{early} idle connections were closed before their keep-alive timeout"
    );
    assert_eq!(health(&engine).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_connections_over_the_cap_are_closed_at_once_and_mllp_keeps_its_room() {
    let (_dir, engine) =
        start("max_connections = 50\nkeep_alive_timeout_secs = 8\nheader_read_timeout_secs = 8");
    let open = idle_connections(&host(&engine), 80).await;

    // HTTP is full, the feed is not starved.
    let mut client = tributary_adapter_mllp::Client::connect(&engine.mllp, Duration::from_secs(10))
        .await
        .unwrap();
    let ack = String::from_utf8(client.send(&ucr_a28("CAP1")).await.expect("an ACK").to_vec()).unwrap();
    assert_eq!(msa(&ack), ("AA".into(), "CAP1".into()), "{ack}");

    // The 30 over the cap were closed at once; the 50 held ones at their idle timeout.
    let lifetimes: Vec<Duration> = lifetimes(open)
        .await
        .into_iter()
        .map(|l| l.expect("closed"))
        .collect();
    let at_once = lifetimes.iter().filter(|l| **l < Duration::from_secs(4)).count();
    assert_eq!(at_once, 30, "lifetimes: {lifetimes:?}");

    // With the idle ones gone, HTTP answers again.
    assert_eq!(health(&engine).await, 200);
}

#[tokio::test]
async fn a_client_sending_its_headers_byte_by_byte_is_disconnected() {
    let (_dir, engine) = start("keep_alive_timeout_secs = 1\nheader_read_timeout_secs = 2");
    let mut stream = TcpStream::connect(host(&engine)).await.unwrap();
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: tributary\r\nX-Slow: {}\r\n\r\n",
        "z".repeat(60)
    );
    let mut sent = 0;
    let mut closed = false;
    let mut buffer = [0u8; 256];
    // One byte every half second: bytes keep flowing (so the idle watch never fires), but the
    // headers are never complete within the header-read timeout.
    for byte in request.as_bytes() {
        if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
            closed = true;
            break;
        }
        sent += 1;
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            // hyper answers a header timeout with a 408 before closing: that is a close too.
            Ok(Ok(count)) => {
                let answer = String::from_utf8_lossy(&buffer[..count]).to_string();
                assert!(!answer.contains(" 200 "), "the slow request was served: {answer}");
                closed = true;
                break;
            }
            Err(_still_open) => {}
        }
    }
    assert!(
        closed,
        "the slow client was never disconnected ({sent} bytes sent)"
    );
    assert!(
        sent < request.len() / 2,
        "disconnected only after {sent} of {} bytes",
        request.len()
    );
    assert_eq!(health(&engine).await, 200);
}
