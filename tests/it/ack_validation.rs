//! Every ACK the engine sends, read by other projects' parsers: each message of the public corpus
//! (../shared/corpus/hl7v2, skipped when absent) and of the fixtures is sent over MLLP by python
//! `hl7`'s MLLP client, and each reply is validated by `hl7apy` in strict mode, in the version it
//! declares, and by `hl7.parse` (tests/python/validate_acks.py). CI installs both packages.

use std::path::Path;
use std::process::Command;

use crate::common::corpus::{corpus_files, fixture_files, frames};
use crate::common::{EngineProcess, temp_store};
use serde_json::Value;
use tributary::hl7::Message;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/validate_acks.py");

/// Writes one file per frame and the manifest the script reads.
fn manifest(files: &[std::path::PathBuf], dir: &Path) -> (std::path::PathBuf, usize) {
    let mut cases = vec![];
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        for (i, frame) in frames(&bytes).into_iter().enumerate() {
            if frame.is_empty() {
                continue;
            }
            let parsed = Message::parse(&frame).ok();
            // A reply on the connection unless MSH-15 (enhanced mode) asks for none, or it is an
            // inbound ACK; with ER or SU it depends on the outcome.
            let expect_reply = match parsed.as_ref() {
                Some(m) if m.message_type() == "ACK" => "no",
                Some(m) => match m.accept_ack_type().trim() {
                    "NE" => "no",
                    "ER" | "SU" => "maybe",
                    _ => "yes",
                },
                None => "yes",
            };
            // MSA-2 (required) can only echo an MSH-10 that is there.
            let first_line = frame
                .split(|b| *b == b'\r' || *b == b'\n')
                .next()
                .unwrap_or_default();
            let first_line = String::from_utf8_lossy(first_line);
            let has_control_id = first_line
                .get(3..4)
                .and_then(|separator| first_line.split(separator).nth(9))
                .is_some_and(|id| !id.trim().is_empty());
            let path = dir.join(format!("{}.hl7", cases.len()));
            std::fs::write(&path, &frame).unwrap();
            cases.push(serde_json::json!({
                "name": format!("{}#{i}", file.display()),
                "file": path,
                "expect_reply": expect_reply != "no",
                "must_reply": expect_reply == "yes",
                "has_control_id": has_control_id,
            }));
        }
    }
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec(&cases).unwrap()).unwrap();
    (path, cases.len())
}

/// Runs the script against a fresh engine; every reply that should come must come and validate.
fn validate_all(files: &[std::path::PathBuf]) -> usize {
    let (dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    validate_on(&engine, files, dir.path())
}

/// Sends every frame of `files` to `engine` with python `hl7` and validates each reply with
/// `hl7apy` strict; returns how many were sent. `dir` holds the frames and the manifest.
pub(crate) fn validate_on(engine: &EngineProcess, files: &[std::path::PathBuf], dir: &Path) -> usize {
    let frames_dir = dir.join("frames");
    std::fs::create_dir_all(&frames_dir).unwrap();
    let (manifest, count) = manifest(files, &frames_dir);
    let (host, port) = engine.mllp.rsplit_once(':').unwrap();
    let output = Command::new("python3")
        .arg(SCRIPT)
        .args([host, port])
        .arg(&manifest)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.code() != Some(3),
        "python packages missing (CI installs them): pip install hl7 hl7apy\n{stderr}"
    );
    assert!(output.status.success(), "the script failed: {stderr}");
    let results: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(results.len(), count, "{stderr}");
    let cases: Vec<Value> = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let mut problems = vec![];
    for (case, result) in cases.iter().zip(&results) {
        let name = &case["name"];
        match (&result["reply"], case["expect_reply"].as_bool().unwrap()) {
            (Value::Null, _) if case["must_reply"] == true => problems.push(format!("{name}: no reply")),
            (Value::String(reply), false) => {
                problems.push(format!("{name}: a reply although none was asked for: {reply:?}"))
            }
            (Value::String(reply), true) => {
                for error in result["errors"].as_array().unwrap() {
                    let error = error.as_str().unwrap();
                    if error.contains("MSA.MSA_2") && case["has_control_id"] == false {
                        continue;
                    }
                    problems.push(format!("{name}: {error} in {reply:?}"));
                }
                if reply.contains("ACK^^ACK") {
                    problems.push(format!("{name}: MSH-9 ACK^^ACK"));
                }
            }
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    count
}

#[test]
fn every_fixture_ack_validates_with_hl7apy_strict() {
    let sent = validate_all(&fixture_files());
    assert!(sent >= 18, "only {sent} messages sent");
}

#[test]
fn every_corpus_ack_validates_with_hl7apy_strict() {
    let Some(files) = corpus_files() else {
        eprintln!("skipped: corpus absent");
        return;
    };
    let sent = validate_all(&files);
    assert!(sent > 150, "only {sent} messages sent");
}
