//! The test harness: starts the real `tributary` binary on loopback ports with a store in a temp
//! folder, and speaks MLLP and HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tributary_adapter_mllp::Client;

// The HTTP receiver the HTTP adapter's own tests use: one receiver for both.
pub mod corpus;
#[path = "../../../adapters/http/tests/support/mod.rs"]
pub mod http_receiver;
pub mod inbox;
pub mod peers;
// The SMTP server the SMTP adapter's own tests use: one server for both.
#[path = "../../../adapters/smtp/tests/support/mod.rs"]
pub mod smtp_server;

/// A running engine process.
pub struct EngineProcess {
    child: Child,
    pub mllp: String,
    pub http: String,
    pub data_dir: PathBuf,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_tributary");

/// The API key of the integration analyst every test config carries: the journal and the
/// outbox take it, and it reads FHIR ([`EngineProcess::get`] sends it).
pub const ANALYST_KEY: &str = "key-analyst-0001";

/// The API key of the FHIR client every test config carries (scopes `fhir-read`, `fhir-write`):
/// an upstream system that writes through the FHIR endpoint.
pub const FHIR_KEY: &str = "key-fhir-0001";
pub const METRICS_KEY: &str = "key-metrics-0001";

/// An API client of a test config: name, key, roles, scopes.
pub type ApiClient = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// The clients every test config carries.
pub const TEST_CLIENTS: &[ApiClient] = &[
    ("analyst", ANALYST_KEY, &["integration-analyst"], &[]),
    (
        "fhir",
        FHIR_KEY,
        &["external-system"],
        &["fhir-read", "fhir-write"],
    ),
    ("metrics", METRICS_KEY, &["metrics-reader"], &[]),
];

/// SHA-256 of an API key, hex: what `[[api_clients]]` entries hold as `key_sha256`.
pub fn sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `[[api_clients]]` entries of `clients` (each key as its SHA-256 only).
pub fn clients_toml(clients: &[ApiClient]) -> String {
    clients
        .iter()
        .map(|(name, key, roles, scopes)| {
            format!(
                "\n[[api_clients]]\nname = \"{name}\"\nkey_sha256 = \"{}\"\nroles = {roles:?}\nscopes = {scopes:?}\n",
                crate::common::sha256_hex(key)
            )
        })
        .collect()
}

/// The `[[api_clients]]` entries of [`TEST_CLIENTS`], for a test's own config.
pub fn test_clients() -> String {
    clients_toml(TEST_CLIENTS)
}

/// The repository's mapping folder.
pub const MAPPINGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings");

/// The config the tests run with: the shipped channels, every port chosen by the OS.
/// `extra_source` adds keys to both channels' (shared) MLLP source.
pub fn write_config(dir: &Path, extra_source: &str, mappings: &Path) -> PathBuf {
    write_config_http(dir, extra_source, "", mappings)
}

/// A `pix` destination for config text: every Patient change, as an ADT^A31 over MLLP to
/// `address` (a real peer the test starts).
pub fn pix_destination(address: &str) -> String {
    format!(
        "\n[[destinations]]\nname = \"pix\"\nkind = \"mllp\"\nmapping = \"patient-adt-a31\"\n\
         events = [\"patient-changed\"]\n[destinations.settings]\naddress = \"{address}\"\n"
    )
}

/// Adds a channel on the test listener to the config file at `config`: `name`, its `mapping`,
/// taking messages of `message_type`.
pub fn add_channel(config: &Path, name: &str, mapping: &str, message_type: &str) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!(
        "\n[[channels]]\nname = \"{name}\"\nmapping = \"{mapping}\"\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n\
         [channels.filter]\nmessage_types = [\"{message_type}\"]\n"
    ));
    std::fs::write(config, text).unwrap();
}

/// As [`write_config`], with extra keys for `[http]` (`max_uri_bytes = 2048` ...).
pub fn write_config_http(dir: &Path, extra_source: &str, extra_http: &str, mappings: &Path) -> PathBuf {
    let path = dir.join("tributary.toml");
    let types = r#"message_types = ["ADT"]"#;
    let text = format!(
        "[http]\nbind = \"127.0.0.1:0\"\n{extra_http}\n[log]\nlevel = \"warn\"\n[mappings]\ndir = {mappings:?}\n\
         [fhir]\npatient_feed_mapping = \"ucr-fhir-patient\"\n\
         [[channels]]\nname = \"trakcare-adt\"\nmapping = \"trakcare-adt-patient\"\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n{extra_source}\n\
         [channels.filter]\nsending_applications = [\"TRAKCARE\"]\n{types}\n\
         [[channels]]\nname = \"ucr-adt\"\nmapping = \"ucr-adt-patient\"\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n{extra_source}\n\
         [channels.filter]\n{types}\n\
         [[channels]]\nname = \"ucr-siu\"\nmapping = \"ucr-siu-appointment\"\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n{extra_source}\n\
         [channels.filter]\nmessage_types = [\"SIU\"]\n{}",
        test_clients()
    );
    std::fs::write(&path, text).unwrap();
    path
}

impl EngineProcess {
    /// Starts the engine on the store in `data_dir`, and waits until it says `ready`.
    pub fn start(data_dir: &Path) -> EngineProcess {
        Self::start_with(data_dir, "")
    }

    /// As `start`, with extra keys for the MLLP source (`max_frame_bytes = 2048` ...).
    pub fn start_with(data_dir: &Path, extra_source: &str) -> EngineProcess {
        Self::start_full(data_dir, extra_source, Path::new(MAPPINGS))
    }

    /// As `start`, with extra keys for `[http]` (`max_uri_bytes = 2048` ...).
    pub fn start_http(data_dir: &Path, extra_http: &str) -> EngineProcess {
        let config_dir = data_dir.parent().unwrap();
        let config = write_config_http(config_dir, "", extra_http, Path::new(MAPPINGS));
        Self::start_config(&config, data_dir)
    }

    /// As `start`, with the mappings of another folder.
    pub fn start_full(data_dir: &Path, extra_source: &str, mappings: &Path) -> EngineProcess {
        let config_dir = data_dir.parent().unwrap();
        let config = write_config(config_dir, extra_source, mappings);
        Self::start_config(&config, data_dir)
    }

    /// Starts the engine with a config file of the test's own.
    pub fn start_config(config: &Path, data_dir: &Path) -> EngineProcess {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the tributary binary starts");
        let stdout = child.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut mllp = None;
        let mut http = None;
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(60))
                .expect("the engine says ready within a minute");
            if let Some(addr) = line.strip_prefix("listening channel=ucr-adt mllp=") {
                mllp = Some(addr.to_string());
            } else if let Some(addr) = line.strip_prefix("listening http=") {
                http = Some(addr.to_string());
            } else if line == "ready" {
                break;
            }
        }
        EngineProcess {
            child,
            mllp: mllp.expect("an MLLP listener line"),
            http: format!("http://{}", http.expect("an HTTP listener line")),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// Sends a signal by name (`HUP`, `TERM` ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.child.wait().unwrap()
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.mllp, Duration::from_secs(10))
            .await
            .unwrap()
    }

    /// Sends one message on a fresh connection and returns the ACK text.
    pub async fn send(&self, message: &[u8]) -> String {
        let mut client = self.client().await;
        let ack = client.send(message).await.expect("an ACK");
        String::from_utf8(ack.to_vec()).expect("ACKs are UTF-8")
    }

    /// A GET with the integration analyst's key (endpoints that take none ignore it).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.http))
            .bearer_auth(ANALYST_KEY)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    /// The Patients a FHIR search finds.
    pub async fn search(&self, query: &str) -> Vec<Value> {
        self.found(&format!("Patient?{query}")).await
    }

    /// The resources a FHIR search finds: `Observation?patient=...`.
    pub async fn found(&self, search: &str) -> Vec<Value> {
        let (status, bundle) = self.get(&format!("/fhir/{search}")).await;
        assert_eq!(status, 200, "search {search}: {bundle}");
        assert_eq!(bundle["type"], "searchset");
        bundle["entry"]
            .as_array()
            .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
            .unwrap_or_default()
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `code` of an API answer (`{"error", "code"}` for a refusal), or "" when it has none.
pub fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

/// The UCR MPI's identifier system: the patients the UCR feed brings in are found by it.
pub const UCR_MPI: &str = "urn:oid:2.16.840.1.113883.3.9999.1";

/// The FHIR search for the patient with identifier `system|value`, escaped for a query string.
pub fn identifier_query(system: &str, value: &str) -> String {
    format!(
        "identifier={}%7C{value}",
        system.replace(':', "%3A").replace('/', "%2F")
    )
}

/// A minimal UCR ADT^A28 (2.5) whose control id is also the patient's MPI number.
pub fn ucr_a28(control: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125101500||ADT^A28^ADT_A05|{control}|P|2.5\r\
         EVN|A28|20261125101500\r\
         PID|1||{control}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||Okafor^Amara||19840612|F\r"
    )
    .into_bytes()
}

/// The six-digit code in a sign-in text (the `sign-in-code` template's `code: 123456`).
pub fn sign_in_code(message: &str) -> String {
    let start = message.find("code: ").expect("a sign-in code text") + 6;
    message[start..start + 6].to_string()
}

/// A fixture file's bytes.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The segment of an ACK (or any message) that starts with `name`, split into fields.
pub fn segment(message: &str, name: &str) -> Option<Vec<String>> {
    message
        .split(['\r', '\n'])
        .find(|s| s.starts_with(name))
        .map(|s| s.split('|').map(str::to_string).collect())
}

/// MSA-1 and MSA-2 of an ACK.
pub fn msa(ack: &str) -> (String, String) {
    let msa = segment(ack, "MSA").unwrap_or_else(|| panic!("no MSA in {ack:?}"));
    (msa[1].clone(), msa.get(2).cloned().unwrap_or_default())
}

/// A copy of a folder tree (to change mappings without touching the repository's).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temp folder with a `data` subfolder path for the store.
pub fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    (dir, data)
}
