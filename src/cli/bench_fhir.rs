//! `tributary bench fhir`: Patient creates and reads by identifier over HTTP, with K keep-alive
//! connections, against the engine (durable, on a fresh store) and, in the same run, against a
//! null HTTP server that answers every request at once without reading it (this machine's
//! ceiling for the same requests).
//!
//! The client is a minimal HTTP/1.1 keep-alive loop over a TCP stream (request, then the
//! response's headers and its Content-Length body), so the client costs as little as possible
//! and the figures are the server's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::bench::{LoadResult, print_row};
use super::bench_process::Measured;

/// The API key of the benchmark's FHIR client (the endpoint takes one, as in production).
const BENCH_KEY: &str = "bench-fhir-key";

#[derive(Args)]
pub struct FhirBenchArgs {
    /// Concurrent connections (K).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Patients created (each one POST).
    #[arg(long, default_value_t = 20_000)]
    creates: usize,
    /// Reads by identifier (each one GET /fhir/Patient?identifier=system|value).
    #[arg(long, default_value_t = 60_000)]
    reads: usize,
    /// The mappings folder the benchmarked engine loads.
    #[arg(long, default_value = "mappings")]
    mappings: std::path::PathBuf,
    /// Skip the null server runs.
    #[arg(long)]
    skip_null: bool,
}

const SYSTEM: &str = "urn:oid:2.16.840.1.113883.3.9999.1";

/// One request: method, path, body (empty for a GET).
type Request = (&'static str, String, String);

pub async fn bench_fhir(args: FhirBenchArgs) -> Result<(), String> {
    let run_id = chrono::Utc::now().format("%H%M%S%3f").to_string();
    let creates: Arc<Vec<Request>> = Arc::new(
        (0..args.creates)
            .map(|i| ("POST", "/fhir/Patient".to_string(), patient(&run_id, i)))
            .collect(),
    );
    let reads: Arc<Vec<Request>> = Arc::new(
        (0..args.reads)
            .map(|i| {
                let n = (i * 7919) % args.creates.max(1);
                let path = format!("/fhir/Patient?identifier={SYSTEM}%7CB{run_id}-{n}");
                ("GET", path, String::new())
            })
            .collect(),
    );
    println!(
        "FHIR: {} Patient creates (POST /fhir/Patient), {} reads by identifier; K={}",
        args.creates, args.reads, args.connections
    );
    println!(
        "{:<14} {:>3} {:>9} {:>10} {:>9} {:>9}",
        "server", "K", "requests", "req/s", "p50 ms", "p99 ms"
    );
    let mut null = (None, None);
    if !args.skip_null {
        let (addr, stop) = start_null_server().await?;
        let addr = addr.to_string();
        let create = load(&addr, creates.clone(), args.connections, 0).await?;
        print_row("null create", args.connections, &create);
        let read = load(&addr, reads.clone(), args.connections, 0).await?;
        print_row("null read", args.connections, &read);
        let _ = stop.send(true);
        null = (Some(create), Some(read));
    }
    let dir = std::env::temp_dir().join(format!("tributary-bench-fhir-{}-{run_id}", std::process::id()));
    // The engine is measured, not the request budget per address, which would throttle this one
    // loopback client: it is off here.
    let config = format!(
        "[store]\ndata_dir = {:?}\n[http]\nbind = \"127.0.0.1:0\"\n[http.rate_limit]\nenabled = false\n[log]\nlevel = \"warn\"\n[mappings]\ndir = {:?}\n\
         [fhir]\npatient_feed_mapping = \"ucr-fhir-patient\"\n\
         [[api_clients]]\nname = \"bench\"\nkey_sha256 = \"{}\"\nroles = [\"external-system\"]\n\
         scopes = [\"fhir-read\", \"fhir-write\"]\n",
        dir.join("store").display().to_string(),
        std::path::absolute(&args.mappings)
            .map_err(|e| e.to_string())?
            .display()
            .to_string(),
        crate::domain::identity::secrets::sha256_hex(BENCH_KEY)
    );
    let engine = Measured::engine(&config, dir).await?;
    let addr = engine.http.ok_or("the engine has no HTTP listener")?.to_string();
    let before = engine.cpu();
    let create = load(&addr, creates, args.connections, 201).await;
    let create_cpu = engine.cpu_when_idle().await.since(&before);
    let read = match &create {
        Ok(_) => {
            let before = engine.cpu();
            let read = load(&addr, reads, args.connections, 200).await;
            let cpu = engine.cpu_when_idle().await.since(&before);
            read.map(|read| LoadResult {
                cpu: Some(cpu),
                ..read
            })
        }
        Err(e) => Err(e.clone()),
    };
    let create = create.map(|create| LoadResult {
        cpu: Some(create_cpu),
        ..create
    });
    engine.stop().await;
    let (create, read) = (create?, read?);
    print_row("engine create", args.connections, &create);
    print_row("engine read", args.connections, &read);
    if let (Some(null_create), Some(null_read)) = null {
        println!(
            "engine/null: creates {:.0}%, reads {:.0}% of the null server's req/s",
            100.0 * create.per_second / null_create.per_second,
            100.0 * read.per_second / null_read.per_second
        );
    }
    if create.not_accepted + read.not_accepted > 0 {
        return Err(format!(
            "{} creates and {} reads did not get the expected status",
            create.not_accepted, read.not_accepted
        ));
    }
    Ok(())
}

/// A UCR-like Patient, one identifier each.
fn patient(run_id: &str, i: usize) -> String {
    serde_json::json!({
        "resourceType": "Patient",
        "identifier": [{ "system": SYSTEM, "value": format!("B{run_id}-{i}") }],
        "name": [{ "family": format!("Family{}", i % 997), "given": [format!("Given{}", i % 113)] }],
        "gender": if i.is_multiple_of(2) { "female" } else { "male" },
        "birthDate": format!("19{:02}-{:02}-{:02}", 30 + i % 70, 1 + i % 12, 1 + i % 28),
        "telecom": [{ "system": "email", "value": format!("p{i}@example.org") }],
    })
    .to_string()
}

/// Sends `requests` over `connections` keep-alive connections; a response with another status
/// than `expect` (0: any) counts as not accepted.
async fn load(
    addr: &str,
    requests: Arc<Vec<Request>>,
    connections: usize,
    expect: u16,
) -> Result<LoadResult, String> {
    let connections = connections.max(1);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let requests = requests.clone();
        let addr = addr.to_string();
        tasks.spawn(async move {
            let stream = TcpStream::connect(&addr)
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut stream = BufReader::new(stream);
            let mut latencies = Vec::with_capacity(requests.len() / connections + 1);
            let mut not_accepted = 0;
            let mut buffer = Vec::with_capacity(4096);
            for (method, path, body) in requests.iter().skip(c).step_by(connections) {
                buffer.clear();
                buffer.extend_from_slice(
                    format!(
                        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {BENCH_KEY}\r\ncontent-type: application/fhir+json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                buffer.extend_from_slice(body.as_bytes());
                let sent = Instant::now();
                stream.get_mut().write_all(&buffer).await.map_err(|e| e.to_string())?;
                let status = read_response(&mut stream).await?;
                latencies.push(sent.elapsed());
                if expect != 0 && status != expect {
                    not_accepted += 1;
                }
            }
            Ok::<_, String>((latencies, not_accepted))
        });
    }
    let mut latencies = Vec::with_capacity(requests.len());
    let mut not_accepted = 0;
    while let Some(done) = tasks.join_next().await {
        let (l, n) = done.map_err(|e| e.to_string())??;
        latencies.extend(l);
        not_accepted += n;
    }
    Ok(LoadResult::from_latencies(
        latencies,
        started.elapsed(),
        not_accepted,
    ))
}

/// Reads one response (headers, then a Content-Length body); returns its status.
async fn read_response(stream: &mut BufReader<TcpStream>) -> Result<u16, String> {
    let mut head = Vec::with_capacity(512);
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.map_err(|e| format!("no response: {e}"))?;
        head.push(byte);
        if head.len() > 64 * 1024 {
            return Err("response headers over 64 KiB".into());
        }
    }
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {head}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Ok(status)
}

/// An HTTP server that answers every request with a small fixed JSON body.
async fn start_null_server() -> Result<(SocketAddr, tokio::sync::watch::Sender<bool>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = axum::Router::new()
        .fallback(|| async { (axum::http::StatusCode::OK, "{\"resourceType\":\"Bundle\"}") });
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.changed().await;
            })
            .await;
    });
    Ok((addr, stop))
}
