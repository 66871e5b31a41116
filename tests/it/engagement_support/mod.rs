//! What the engagement tests share: the real engine with real peers where it sends (an MLLP
//! listener playing the UCR, another playing a PIX consumer, an SMTP server for email, an HTTP
//! server playing TrakCare's FHIR endpoint; texts go to a folder through the `file` adapter),
//! the UCR feed to bring patients in, an active member, and HTTP helpers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::peers::{HttpReceiver, MllpPeer, SmtpServer};
use crate::common::{EngineProcess, MAPPINGS, fixture, msa, segment, temp_store};

/// (name, key, roles, scopes).
pub const CLIENTS: &[crate::common::ApiClient] = &[
    ("desk", "key-desk-0001", &["direct-enrollment-user"], &[]),
    ("manager", "key-manager-0001", &["member-account-manager"], &[]),
    (
        "portal",
        "key-portal-0001",
        &["external-system"],
        &["self-service"],
    ),
    ("crm", "key-crm-0001", &["external-system"], &["invite"]),
    ("trak", "key-trak-0001", &["external-system"], &["tasks"]),
    ("enroller", "key-enroll-0001", &["external-system"], &["enroll"]),
    ("nobody", "key-nobody-0001", &[], &[]),
];

pub fn key(name: &str) -> &'static str {
    CLIENTS
        .iter()
        .chain(crate::common::TEST_CLIENTS)
        .find(|c| c.0 == name)
        .expect("a known client")
        .1
}

pub struct World {
    pub engine: EngineProcess,
    pub ucr: MllpPeer,
    pub pix: MllpPeer,
    pub smtp: SmtpServer,
    pub trakcare: HttpReceiver,
    pub sms_dir: PathBuf,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn start() -> World {
    start_with("").await
}

/// As `start`, with `extra` config lines at the end (a `[credentials]` table, say).
pub async fn start_with(extra: &str) -> World {
    let (dir, data) = temp_store();
    let ucr = MllpPeer::start("127.0.0.1:0", "AA").await;
    let pix = MllpPeer::start("127.0.0.1:0", "AA").await;
    let smtp = SmtpServer::start().await;
    let trakcare = HttpReceiver::start().await;
    let sms_dir = dir.path().join("sms");
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    // This suite's clients and the ones every test config carries.
    let clients = crate::common::clients_toml(CLIENTS) + &crate::common::test_clients();
    let text = format!(
        r#"[http]
bind = "127.0.0.1:0"
[log]
level = "warn"
[mappings]
dir = {MAPPINGS:?}

[[channels]]
name = "ucr-adt"
mapping = "ucr-adt-patient"
[channels.source]
kind = "mllp"
bind = "127.0.0.1:0"
[channels.filter]
message_types = ["ADT^A01", "ADT^A04", "ADT^A08", "ADT^A28", "ADT^A31", "ADT^A40", "ADT^A47"]

# The UCR hears of profile updates only (it is the source of every other change).
[[destinations]]
name = "ucr"
kind = "mllp"
mapping = "patient-adt-a31"
[destinations.settings]
address = "{ucr}"

# A PIX consumer: every demographic change.
[[destinations]]
name = "pix"
kind = "mllp"
mapping = "patient-adt-a31"
events = ["patient-changed"]
[destinations.settings]
address = "{pix}"

[[destinations]]
name = "trakcare"
kind = "http"
[destinations.settings]
url = "{trak}/fhir/QuestionnaireResponse"

[[destinations]]
name = "member-email"
kind = "smtp"
[destinations.settings]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "portal@hospital.test"

[[destinations]]
name = "member-sms"
kind = "file"
[destinations.settings]
dir = {sms:?}
fsync = false

[members]
email_destination = "member-email"
sms_destination = "member-sms"
templates_dir = {templates:?}
portal_url = "https://portal.test"

[engagement]
profile_destinations = ["ucr"]
questionnaire_destination = "trakcare"
invitation_window_hours = 24

{clients}
{extra}"#,
        ucr = ucr.addr,
        pix = pix.addr,
        trak = trakcare.url(""),
        smtp_port = smtp.port(),
        sms = sms_dir.display().to_string(),
        templates = templates.display().to_string(),
    );
    let path = dir.path().join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    let engine = EngineProcess::start_config(&path, &data);
    World {
        engine,
        ucr,
        pix,
        smtp,
        trakcare,
        sms_dir,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl World {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        client: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_as(method, path, client, None, body).await
    }

    /// As `call`, with a member's session in `X-Member-Session` beside the client's key.
    pub async fn call_as(
        &self,
        method: &str,
        path: &str,
        client: Option<&str>,
        session: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.engine.http);
        let mut request = self.http.request(method.parse().unwrap(), url);
        if let Some(client) = client {
            request = request.bearer_auth(key(client));
        }
        if let Some(session) = session {
            request = request.header("x-member-session", session);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, client: &str) -> (u16, Value) {
        self.call("GET", path, Some(client), None).await
    }

    pub async fn post(&self, path: &str, client: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(client), Some(body)).await
    }

    pub async fn put(&self, path: &str, client: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(client), Some(body)).await
    }

    /// A POST through the portal with the member's session.
    pub async fn post_as_member(&self, path: &str, session: &str, body: Value) -> (u16, Value) {
        self.call_as("POST", path, Some("portal"), Some(session), Some(body))
            .await
    }

    /// A profile update through the portal with the member's session.
    pub async fn put_profile(&self, patient_id: &str, session: &str, body: Value) -> (u16, Value) {
        let path = format!("/api/members/{patient_id}/profile");
        self.call_as("PUT", &path, Some("portal"), Some(session), Some(body))
            .await
    }

    /// Signs the member in through the portal (password, then the code sent by text); the
    /// session token.
    pub async fn sign_in(&self, username: &str) -> String {
        let texts = self.texts().len();
        let (status, body) = self
            .post(
                "/api/sign-in",
                "portal",
                json!({ "username": username, "password": "correct horse battery", "channel": "text" }),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let challenge = body["challenge"].as_str().unwrap().to_string();
        let text = self.wait_text_after(texts, "code: ").await;
        let code = crate::common::sign_in_code(&text);
        let (status, body) = self
            .post(
                "/api/sign-in/code",
                "portal",
                json!({ "challenge": challenge, "code": code }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["session"].as_str().unwrap().to_string()
    }

    /// Sends an HL7 message into the UCR channel and checks the AA.
    pub async fn feed(&self, message: &[u8]) {
        let ack = self.engine.send(message).await;
        assert_eq!(msa(&ack).0, "AA", "{ack}");
    }

    /// Jane Doe from the UCR feed (A28); her patient id.
    pub async fn jane(&self) -> String {
        self.feed(&fixture("ucr/adt_a28_new_patient.hl7")).await;
        let (status, found) = self.get("/api/patients?identifier=1000234567", "desk").await;
        assert_eq!(status, 200, "{found}");
        found["patients"][0]["id"].as_str().unwrap().to_string()
    }

    /// Texts delivered so far (the `file` adapter's folder), oldest first.
    pub fn texts(&self) -> Vec<String> {
        self.sms().received()
    }

    pub async fn wait_texts(&self, n: usize) -> Vec<String> {
        self.sms().wait_for(n).await
    }

    /// The newest text past the first `after` that holds `needle` (panics after 20 s). Waiting
    /// for `after + 1` texts is not enough: a text queued earlier (the activation's
    /// `registration-complete`, say) may arrive after `after` was counted and before the awaited
    /// one, as it does when the machine is busy.
    async fn wait_text_after(&self, after: usize, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let texts = self.texts();
            if let Some(text) = texts.iter().skip(after).rev().find(|t| t.contains(needle)) {
                return text.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no text holding {needle:?} past the first {after}: {texts:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn sms(&self) -> crate::common::inbox::Inbox {
        crate::common::inbox::Inbox {
            dir: self.sms_dir.clone(),
        }
    }

    /// Emails received by the SMTP server so far, each as its recipients and text.
    pub fn emails(&self) -> Vec<(Vec<String>, String)> {
        self.smtp
            .received()
            .into_iter()
            .map(|m| (m.rcpt_to, String::from_utf8_lossy(&m.data).into_owned()))
            .collect()
    }

    pub async fn wait_emails(&self, n: usize) -> Vec<(Vec<String>, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let emails = self.emails();
            if emails.len() >= n {
                return emails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} emails, not {n}",
                emails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Enrolls the patient (email and text) and activates the account through the portal.
    pub async fn active_member(&self, patient_id: &str) {
        let texts_before = self.texts().len();
        let (status, body) = self
            .post(
                "/api/members",
                "desk",
                json!({
                    "patient_id": patient_id,
                    "email": "jane.doe@example.org",
                    "mobile": "+1 617 5559876",
                    "preference": "both",
                    "locales": ["en"],
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let text = self.wait_text_after(texts_before, "token=").await;
        let start = text.find("token=").expect("a token link") + 6;
        let token: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let (status, body) = self
            .post(
                "/api/activation",
                "portal",
                json!({ "token": token, "username": "jane.doe", "password": "correct horse battery" }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["member"]["status"], "active");
    }
}

/// Lets deliveries that are not expected have the time to (wrongly) arrive.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

/// A field of a segment of an HL7 message.
pub fn field(message: &str, name: &str, n: usize) -> String {
    segment(message, name)
        .and_then(|s| s.get(n).cloned())
        .unwrap_or_default()
}
