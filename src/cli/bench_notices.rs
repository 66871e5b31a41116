//! `tributary bench notices`: how long a member waits to hear of a provider's message. The
//! engine runs as a child process with an SMTP destination for member email; the SMTP peer is a
//! small server in this process that accepts every message and notes when it arrived. One
//! member is enrolled and activated through the API (their activation email read from the
//! peer), then N provider messages are posted to `/fhir/Communication` one after another, each
//! waiting for its notice at the peer before the next.
//!
//! Printed: the latency from posting a message to its notice arriving at the SMTP peer (p50,
//! p99, max), and the engine's CPU time per message (the write, the notice, the delivery).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::bench_process::Measured;

const DESK_KEY: &str = "bench-desk-key";
const PORTAL_KEY: &str = "bench-portal-key";
const FHIR_KEY: &str = "bench-fhir-key";

#[derive(Args)]
pub struct NoticesBenchArgs {
    /// Provider messages posted, one after another.
    #[arg(long, default_value_t = 1_000)]
    messages: usize,
    /// The mappings folder the benchmarked engine loads.
    #[arg(long, default_value = "mappings")]
    mappings: std::path::PathBuf,
    /// The notification templates the benchmarked engine loads.
    #[arg(long, default_value = "config/templates")]
    templates: std::path::PathBuf,
}

pub async fn bench_notices(args: NoticesBenchArgs) -> Result<(), String> {
    let run_id = chrono::Utc::now().format("%H%M%S%3f").to_string();
    let (smtp, mut emails) = start_smtp_peer().await?;
    let dir = std::env::temp_dir().join(format!("tributary-bench-notices-{}-{run_id}", std::process::id()));
    let absolute = |path: &std::path::Path| {
        std::path::absolute(path)
            .map(|p| p.display().to_string())
            .map_err(|e| e.to_string())
    };
    let client = |name: &str, key: &str, roles: &str, scopes: &str| {
        format!(
            "[[api_clients]]\nname = \"{name}\"\nkey_sha256 = \"{}\"\nroles = [{roles}]\nscopes = [{scopes}]\n",
            crate::domain::identity::secrets::sha256_hex(key)
        )
    };
    let config = format!(
        "[store]\ndata_dir = {:?}\n[http]\nbind = \"127.0.0.1:0\"\n[http.rate_limit]\nenabled = false\n\
         [log]\nlevel = \"warn\"\n[mappings]\ndir = {:?}\n\
         [credentials]\nmode = \"portal\"\ntwo_factor = false\n\
         [[destinations]]\nname = \"member-email\"\nkind = \"smtp\"\n[destinations.settings]\n\
         host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"portal@bench.test\"\n\
         [members]\nemail_destination = \"member-email\"\ntemplates_dir = {:?}\nportal_url = \"https://portal.bench.test\"\n\
         {}{}{}",
        dir.join("store").display().to_string(),
        absolute(&args.mappings)?,
        smtp.port(),
        absolute(&args.templates)?,
        client("desk", DESK_KEY, "\"direct-enrollment-user\"", ""),
        client("portal", PORTAL_KEY, "\"external-system\"", "\"self-service\""),
        client(
            "fhir",
            FHIR_KEY,
            "\"external-system\"",
            "\"fhir-read\", \"fhir-write\""
        ),
    );
    let engine = Measured::engine(&config, dir).await?;
    let base = format!("http://{}", engine.http.ok_or("the engine has no HTTP listener")?);
    let http = reqwest::Client::new();
    let measured = async {
        let patient = active_member(&http, &base, &mut emails).await?;
        println!(
            "notices: {} provider messages posted to /fhir/Communication one after another; each member notice by email to an SMTP peer",
            args.messages
        );
        let before = engine.cpu();
        let mut latencies = Vec::with_capacity(args.messages);
        let mut answered = Vec::with_capacity(args.messages);
        for i in 0..args.messages {
            let message = json!({
                "resourceType": "Communication", "status": "completed",
                "sender": { "reference": "Practitioner/bench", "display": "Dr Bench" },
                "recipient": [{ "reference": format!("Patient/{patient}") }],
                "topic": { "text": format!("Message {i}") },
                "sent": chrono::Utc::now().to_rfc3339(),
                "payload": [{ "contentString": "Your results are ready to discuss." }]
            });
            let posted = Instant::now();
            call(&http, "POST", &format!("{base}/fhir/Communication"), FHIR_KEY, message, 201).await?;
            answered.push(posted.elapsed());
            next_email(&mut emails).await?;
            latencies.push(posted.elapsed());
        }
        let cpu = engine.cpu_when_idle().await.since(&before);
        Ok::<_, String>((latencies, answered, cpu))
    }
    .await;
    engine.stop().await;
    let (mut latencies, mut answered, cpu) = measured?;
    latencies.sort();
    answered.sort();
    let at = |sorted: &[Duration], q: f64| {
        sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
    };
    println!(
        "posted -> notice at the SMTP peer: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (the POST answered: p50 {:.2} ms, p99 {:.2} ms); engine CPU {:.0} us per message",
        at(&latencies, 0.50),
        at(&latencies, 0.99),
        at(&latencies, 1.0),
        at(&answered, 0.50),
        at(&answered, 0.99),
        cpu.total.as_secs_f64() * 1e6 / latencies.len() as f64
    );
    let mut threads: Vec<_> = cpu.by_thread.iter().collect();
    threads.sort_by(|a, b| b.1.cmp(a.1));
    let split: Vec<String> = threads
        .iter()
        .map(|(name, used)| format!("{name} {:.0}", used.as_secs_f64() * 1e6 / latencies.len() as f64))
        .collect();
    println!("  engine CPU us per message by thread: {}", split.join(", "));
    Ok(())
}

/// A patient, enrolled with email only and activated; returns their id.
async fn active_member(
    http: &reqwest::Client,
    base: &str,
    emails: &mut mpsc::Receiver<String>,
) -> Result<String, String> {
    let patient = json!({
        "resourceType": "Patient",
        "identifier": [{ "system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "BENCH-NOTICES-1" }],
        "name": [{ "family": "Bench", "given": ["Ada"] }],
        "birthDate": "1980-01-01"
    });
    let created = call(
        http,
        "POST",
        &format!("{base}/fhir/Patient"),
        FHIR_KEY,
        patient,
        201,
    )
    .await?;
    let id = created["id"].as_str().ok_or("the Patient has no id")?.to_string();
    let enrollment =
        json!({ "patient_id": id, "email": "ada@bench.test", "preference": "email", "locales": ["en"] });
    call(
        http,
        "POST",
        &format!("{base}/api/members"),
        DESK_KEY,
        enrollment,
        201,
    )
    .await?;
    // The body is quoted-printable: `=` is `=3D`, and a line may end in a soft break `=`.
    let activation = next_email(emails).await?.replace("=\n", "").replace("=3D", "=");
    let token: String = activation
        .split("token=")
        .nth(1)
        .ok_or("the activation email has no token link")?
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let activate = json!({ "token": token, "username": "ada", "password": "correct horse battery" });
    call(
        http,
        "POST",
        &format!("{base}/api/activation"),
        PORTAL_KEY,
        activate,
        200,
    )
    .await
    .map_err(|e| format!("{e} (the activation email: {activation})"))?;
    // The note that the account is active.
    next_email(emails).await?;
    Ok(id)
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    key: &str,
    body: Value,
    expected: u16,
) -> Result<Value, String> {
    let request = match method {
        "POST" => http.post(url),
        _ => http.put(url),
    };
    let response = request
        .bearer_auth(key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status != expected {
        return Err(format!("{method} {url}: {status}, expected {expected}: {answer}"));
    }
    Ok(answer)
}

async fn next_email(emails: &mut mpsc::Receiver<String>) -> Result<String, String> {
    tokio::time::timeout(Duration::from_secs(30), emails.recv())
        .await
        .map_err(|_| "no email at the SMTP peer within 30 s".to_string())?
        .ok_or_else(|| "the SMTP peer stopped".to_string())
}

/// An SMTP server on loopback that accepts every message and passes on its text as it arrives.
async fn start_smtp_peer() -> Result<(SocketAddr, mpsc::Receiver<String>), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (arrived, emails) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let arrived = arrived.clone();
            tokio::spawn(async move {
                let _ = smtp_session(stream, arrived).await;
            });
        }
    });
    Ok((addr, emails))
}

async fn smtp_session(stream: tokio::net::TcpStream, arrived: mpsc::Sender<String>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 bench.test ESMTP\r\n").await?;
    let mut data: Option<String> = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(text) = data.as_mut() {
            if line == "." {
                let text = data.take().unwrap_or_default();
                write.write_all(b"250 2.0.0 queued\r\n").await?;
                if arrived.send(text).await.is_err() {
                    return Ok(());
                }
            } else {
                text.push_str(&line);
                text.push('\n');
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or(&line).to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-bench.test\r\n250 8BITMIME\r\n",
            "DATA" => {
                data = Some(String::new());
                b"354 end with .\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 ok\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}
