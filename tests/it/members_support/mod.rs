//! What the member-account tests share: an engine with every API client, its email and SMS
//! notifications delivered by the `file` adapter into two folders the tests read (standing in
//! for the gateways), the UCR feed to bring patients in, and small HTTP helpers.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{EngineProcess, MAPPINGS, fixture, msa, segment, temp_store};

pub use crate::common::inbox::Inbox;

/// Every client the tests use: (name, key, roles, scopes).
pub const CLIENTS: &[crate::common::ApiClient] = &[
    ("desk", "key-desk-0001", &["direct-enrollment-user"], &[]),
    ("manager", "key-manager-0001", &["member-account-manager"], &[]),
    ("agent", "key-agent-0001", &["enrollment-request-agent"], &[]),
    ("agent2", "key-agent-0002", &["enrollment-request-agent"], &[]),
    (
        "exception",
        "key-exception-0001",
        &["enrollment-exception-agent"],
        &[],
    ),
    ("config", "key-config-0001", &["configuration-manager"], &[]),
    (
        "portal",
        "key-portal-0001",
        &["external-system"],
        &["self-service"],
    ),
    ("crm", "key-crm-0001", &["external-system"], &["enroll"]),
    ("nobody", "key-nobody-0001", &[], &[]),
    ("system-no-scope", "key-system-0001", &["external-system"], &[]),
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
    pub email: Inbox,
    pub sms: Inbox,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Starts the engine with `members_extra` lines added to `[members]`.
pub async fn start(members_extra: &str) -> World {
    start_with(members_extra, true).await
}

/// As `start`; `with_sms: false` names no SMS destination.
pub async fn start_with(members_extra: &str, with_sms: bool) -> World {
    let (dir, data) = temp_store();
    let email = Inbox {
        dir: dir.path().join("email"),
    };
    let sms = Inbox {
        dir: dir.path().join("sms"),
    };
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    // This suite's clients and the ones every test config carries.
    let clients = crate::common::clients_toml(CLIENTS) + &crate::common::test_clients();
    let sms_line = if with_sms {
        "sms_destination = \"member-sms\""
    } else {
        ""
    };
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
message_types = ["ADT"]

[[channels]]
name = "ucr-oru"
mapping = "ucr-oru-result"
[channels.source]
kind = "mllp"
bind = "127.0.0.1:0"
[channels.filter]
message_types = ["ORU"]

[[channels]]
name = "ucr-siu"
mapping = "ucr-siu-appointment"
[channels.source]
kind = "mllp"
bind = "127.0.0.1:0"
[channels.filter]
message_types = ["SIU"]

[[channels]]
name = "ucr-mdm"
mapping = "ucr-mdm-document"
[channels.source]
kind = "mllp"
bind = "127.0.0.1:0"
[channels.filter]
sending_applications = ["UCR"]
message_types = ["MDM"]

[[destinations]]
name = "member-email"
kind = "file"
[destinations.settings]
dir = {:?}
fsync = false

[[destinations]]
name = "member-sms"
kind = "file"
[destinations.settings]
dir = {:?}
fsync = false

[members]
email_destination = "member-email"
{sms_line}
templates_dir = {:?}
portal_url = "https://portal.test"
{members_extra}

{clients}"#,
        email.dir.display().to_string(),
        sms.dir.display().to_string(),
        templates.display().to_string()
    );
    let path = dir.path().join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    let engine = EngineProcess::start_config(&path, &data);
    World {
        engine,
        email,
        sms,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// A fixture message with its control id made unique and some text replaced.
pub fn variant(fixture_path: &str, control_id: &str, replacements: &[(&str, &str)]) -> Vec<u8> {
    let mut text = String::from_utf8(fixture(fixture_path)).unwrap();
    let original_id = segment(&text, "MSH").unwrap()[9].clone();
    text = text.replace(&original_id, control_id);
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    text.into_bytes()
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
        let mut request = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            other => panic!("method {other}"),
        };
        if let Some(client) = client {
            request = request.bearer_auth(key(client));
        }
        if let Some(session) = session {
            request = request.header("x-member-session", session);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
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

    /// Sends an ADT message over MLLP and expects AA.
    pub async fn feed(&self, message: &[u8]) {
        let ack = self.engine.send(message).await;
        assert_eq!(msa(&ack).0, "AA", "{ack}");
    }

    /// Jane Doe (UCR MPI 1000234567, MRN00012345, jane.doe@example.org, born 1984-03-12).
    pub async fn jane(&self) -> String {
        self.feed(&fixture("ucr/adt_a28_new_patient.hl7")).await;
        self.patient_id("1000234567").await
    }

    /// Another patient made from Jane's message: `n` picks the identifiers, name and email.
    pub async fn patient(&self, n: u32, family: &str) -> String {
        let mpi = format!("20000{n:05}");
        let message = variant(
            "ucr/adt_a28_new_patient.hl7",
            &format!("GEN-{n}"),
            &[
                ("1000234567", &mpi),
                ("MRN00012345", &format!("MRNX{n:05}")),
                ("DOE^JANE", &format!("{family}^ANNA")),
                ("jane.doe@example.org", &format!("p{n}@example.org")),
                ("5559876", &format!("55{n:05}")),
            ],
        );
        self.feed(&message).await;
        self.patient_id(&mpi).await
    }

    pub async fn patient_id(&self, identifier: &str) -> String {
        let (status, found) = self
            .get(&format!("/api/patients?identifier={identifier}"), "desk")
            .await;
        assert_eq!(status, 200, "{found}");
        found["patients"][0]["id"]
            .as_str()
            .expect("the patient is found")
            .to_string()
    }

    /// Another patient (as [`World::patient`]) enrolled and activated as `username`;
    /// `emails_before` is how many emails the test's gateway has received before (the
    /// activation is the next).
    pub async fn active_member(&self, n: u32, family: &str, username: &str, emails_before: usize) -> String {
        let id = self.patient(n, family).await;
        self.enroll(&id).await;
        let token = token_in(&nth(&self.email, emails_before + 1).await);
        let (status, body) = self.activate(&token, username).await;
        assert_eq!(status, 200, "{body}");
        id
    }

    /// Makes `proxy` the `principal`'s daughter (relationship CHILD) as the member account
    /// manager, until `expiry` (`("expires_on", date)` or `("expires_at", date-time)`); returns
    /// the relationship's id.
    pub async fn relate(&self, principal: &str, proxy: &str, expiry: (&str, &str)) -> String {
        let mut body = json!({ "principal": { "patient_id": principal }, "proxy": { "patient_id": proxy },
            "relationship": "CHILD", "reason": "daughter helps" });
        body[expiry.0] = json!(expiry.1);
        let (status, created) = self.post("/api/proxies", "manager", body).await;
        assert_eq!(status, 201, "{created}");
        created["relationship"]["id"].as_str().unwrap().to_string()
    }

    /// Enrolls at the point of care with email and text.
    pub async fn enroll(&self, patient_id: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/members",
                "desk",
                json!({
                    "patient_id": patient_id,
                    "email": "member@example.org",
                    "mobile": "+1 617 555 0000",
                    "carrier": "Verizon",
                    "preference": "both",
                    "locales": ["en"],
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn activate(&self, token: &str, username: &str) -> (u16, Value) {
        self.post(
            "/api/activation",
            "portal",
            json!({ "token": token, "username": username, "password": "correct horse battery" }),
        )
        .await
    }
}

/// The token in the last message a peer received (the `token=` of its link).
pub fn token_in(message: &str) -> String {
    let start = message.find("token=").expect("a message with a token link") + 6;
    message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Waits for `n` messages in an inbox and returns the `n`th.
pub async fn nth(peer: &Inbox, n: usize) -> String {
    peer.wait_for(n).await[n - 1].clone()
}

/// Lets deliveries that are not expected have the time to (wrongly) arrive.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}
