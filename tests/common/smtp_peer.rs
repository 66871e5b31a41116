//! SmtpPeer: a small real SMTP server on 127.0.0.1 (copied from adapters/smtp/tests/support): speaks EHLO/HELO, AUTH PLAIN, MAIL FROM,
//! RCPT TO, DATA, RSET, NOOP and QUIT, records what it receives, and can be told to refuse.

#![allow(dead_code)] // Each test file uses a different subset of these helpers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Bound for anything a test waits on, so a bug fails the test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// The longest line or message this server reads; a runaway client is cut off.
const MAX_LINE: usize = 4096;
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// One message as the server received it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub helo: String,
    /// The decoded `AUTH PLAIN` credentials, `user:password`.
    pub auth: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-unstuffed, without the final `.` line.
    pub data: Vec<u8>,
}

/// How the server answers, changed by the test while it runs.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer to every RCPT TO instead of `250`, e.g. `451 4.3.0 try later`.
    pub rcpt_reply: Option<String>,
    /// Answer after the message data instead of `250`, e.g. `550 5.7.1 refused`.
    pub data_reply: Option<String>,
    /// Answer to AUTH instead of `235`, e.g. `535 5.7.8 bad credentials`.
    pub auth_reply: Option<String>,
    /// Wait this long before the greeting.
    pub greeting_delay: Duration,
}

#[derive(Default)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    connections: Mutex<usize>,
    logins: Mutex<Vec<String>>,
}

pub struct SmtpPeer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SmtpPeer {
    pub async fn start() -> SmtpPeer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *accepting.connections.lock().unwrap() += 1;
                let shared = accepting.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(PATIENCE, session(stream, shared)).await;
                });
            }
        });
        SmtpPeer { addr, shared, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap());
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Every AUTH PLAIN login seen, accepted or not, as `user:password`.
    pub fn logins(&self) -> Vec<String> {
        self.shared.logins.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        *self.shared.connections.lock().unwrap()
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let behaviour = shared.behaviour.lock().unwrap().clone();
    tokio::time::sleep(behaviour.greeting_delay).await;
    writer.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let mut current = Received::default();
    loop {
        let Some(line) = read_line(&mut reader).await? else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&line).into_owned();
        let upper = text.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO ") {
            current.helo = text[5..].to_string();
            "250-test.local\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760".to_string()
        } else if upper.starts_with("HELO ") {
            current.helo = text[5..].to_string();
            "250 test.local".to_string()
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = text[10..].trim();
            let encoded = if encoded.is_empty() {
                writer.write_all(b"334 \r\n").await?;
                let Some(answer) = read_line(&mut reader).await? else {
                    return Ok(());
                };
                String::from_utf8_lossy(&answer).into_owned()
            } else {
                encoded.to_string()
            };
            let decoded = base64_decode(&encoded);
            let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
            if parts.len() == 3 {
                let login = format!(
                    "{}:{}",
                    String::from_utf8_lossy(parts[1]),
                    String::from_utf8_lossy(parts[2])
                );
                shared.logins.lock().unwrap().push(login.clone());
                current.auth = Some(login);
            }
            behaviour
                .auth_reply
                .clone()
                .unwrap_or_else(|| "235 2.7.0 accepted".into())
        } else if upper.starts_with("MAIL FROM:") {
            current.mail_from = address(&text[10..]);
            "250 2.1.0 ok".into()
        } else if upper.starts_with("RCPT TO:") {
            match &behaviour.rcpt_reply {
                Some(reply) => reply.clone(),
                None => {
                    current.rcpt_to.push(address(&text[8..]));
                    "250 2.1.5 ok".into()
                }
            }
        } else if upper == "DATA" {
            writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let Some(data) = read_data(&mut reader).await? else {
                return Ok(());
            };
            current.data = data;
            match &behaviour.data_reply {
                Some(reply) => reply.clone(),
                None => {
                    shared.received.lock().unwrap().push(current.clone());
                    "250 2.0.0 Ok: queued as T1".into()
                }
            }
        } else if upper == "RSET" {
            let helo = std::mem::take(&mut current.helo);
            current = Received {
                helo,
                ..Received::default()
            };
            "250 2.0.0 ok".into()
        } else if upper == "NOOP" {
            "250 2.0.0 ok".into()
        } else if upper == "QUIT" {
            writer.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 command not recognised".into()
        };
        writer.write_all(reply.as_bytes()).await?;
        writer.write_all(b"\r\n").await?;
    }
}

/// One CRLF- (or LF-) terminated line without its ending; `None` at end of stream.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

/// The message after DATA up to the `.` line, with leading dots unstuffed (RFC 5321 4.5.2).
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    loop {
        let mut line = Vec::new();
        let read = (&mut *reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(None);
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(data));
        }
        let line = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(line);
        if data.len() > MAX_MESSAGE {
            return Ok(None);
        }
    }
}

/// `<a@b>` (with any parameters after it) to `a@b`.
fn address(text: &str) -> String {
    let text = text.trim();
    match (text.find('<'), text.find('>')) {
        (Some(start), Some(end)) if start < end => text[start + 1..end].to_string(),
        _ => text.split_whitespace().next().unwrap_or("").to_string(),
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let Some(value) = ALPHABET.iter().position(|&c| c == byte) else {
            continue;
        };
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}
