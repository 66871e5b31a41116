//! The `tributary` command line as an analyst uses it: check-config, serve's refusal of a bad
//! config, and send (one message, a batch file).

use std::process::Command;

use crate::common::{BIN, EngineProcess, temp_store};

#[test]
fn check_config_accepts_the_shipped_config() {
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tributary.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (10 channels,"));
}

#[test]
fn a_bad_config_is_named_by_file_line_and_key_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[http]\nbind = \"127.0.0.1:0\"\n\n[[channels]]\nname = \"ucr-adt\"\nmapping = \"ucr-adt-patient\"\n[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:99999\"\n",
    )
    .unwrap();
    for command in ["check-config", "serve"] {
        let out = Command::new(BIN)
            .arg(command)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("{}:9: channels[0].source.bind:", path.display());
        assert!(stderr.contains(&expected), "{command}: {stderr}");
    }
    let out = Command::new(BIN)
        .args(["check-config", "--config", "/no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.toml"));
}

#[test]
fn a_bad_palette_or_site_switch_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tributary.toml")).unwrap();
    for (from, to, line_of, says) in [
        (
            "primary = \"#005eb8\"",
            "primary = \"purple\"",
            "[branding.palette]",
            "purple",
        ),
        (
            "summary_types = [\"allergies\"",
            "summary_types = [\"hobbies\", \"allergies\"",
            "[records.site]",
            "hobbies",
        ),
        (
            "patient_medical = false",
            "patient_medical = true",
            "[messages.site]",
            "messages.destinations.medical",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        let text = shipped
            .replacen(from, to, 1)
            .replace("\"mappings\"", &format!("{:?}", crate::common::MAPPINGS));
        std::fs::write(&path, &text).unwrap();
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = text.lines().position(|l| l == line_of).unwrap() + 1;
        assert!(
            stderr.contains(&format!("{}:{line}", path.display())) && stderr.contains(says),
            "names the file, the line of {line_of} and {says}: {stderr}"
        );
    }
}

#[tokio::test]
async fn send_prints_every_ack_of_a_batch_file() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let batch = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ucr/batch_three_a08.hl7");
    let out = tokio::process::Command::new(BIN)
        .args(["send", "--to", &engine.mllp, batch])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(": AA").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("MSA|AA|").count(), 3, "{stdout}");

    let unsupported = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/ucr/adt_a99_unsupported_event.hl7"
    );
    let out = tokio::process::Command::new(BIN)
        .args(["send", "--to", &engine.mllp, unsupported])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a rejected message makes send fail");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": AR"));

    let out = tokio::process::Command::new(BIN)
        .args(["send", "--to", &engine.mllp, "/no/such.hl7"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such.hl7"));
}
