//! Mapping files as an analyst meets them: golden tests from the command line, a broken file
//! refused with its line, and hot reload (SIGHUP or a file change) that keeps the previous
//! mappings when the new ones are broken.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{BIN, EngineProcess, MAPPINGS, copy_tree, msa, temp_store, test_clients, write_config};

/// A UCR A28 with its own control id, about one patient.
fn a28(control: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125101500+0100||ADT^A28^ADT_A05|{control}|P|2.5\r\
         EVN|A28|20261125101500\r\
         PID|1||7000001^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||Lindqvist^Johan||19700101|M\r\
         PV1||N\r"
    )
    .into_bytes()
}

fn append(path: &Path, text: &str) {
    let mut content = std::fs::read_to_string(path).unwrap();
    content.push_str(text);
    std::fs::write(path, content).unwrap();
}

#[test]
fn mapping_test_passes_on_the_shipped_mappings_and_shows_a_field_diff_on_a_mismatch() {
    let out = Command::new(BIN)
        .args(["mapping", "test", "--dir", MAPPINGS])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    // Break one expectation in a copy: the report names the field, both values and the rules.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(Path::new(MAPPINGS), dir.path());
    let cases = dir.path().join("tests/ucr-adt-patient");
    let expected = std::fs::read_dir(&cases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().ends_with(".out.json")
                && std::fs::read_to_string(p).unwrap().contains("\"birthDate\"")
        })
        .expect("a UCR case with a birthDate");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
    let birth_date = json["birthDate"].as_str().unwrap().to_string();
    json["birthDate"] = serde_json::json!("1900-01-01");
    std::fs::write(&expected, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let out = Command::new(BIN)
        .args(["mapping", "test", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains("birthDate: expected \"1900-01-01\", got \""),
        "{stdout}"
    );
    assert!(stdout.contains(&birth_date), "{stdout}");
    assert!(stdout.contains("rules fired:"), "{stdout}");
    assert!(stdout.contains(" passed, 1 failed"), "{stdout}");
}

#[test]
fn a_broken_mapping_is_named_by_file_and_line_and_the_engine_will_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    copy_tree(Path::new(MAPPINGS), &mappings);
    let file = mappings.join("ucr-adt-patient.map");
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    append(&file, "\nthis is not a rule\n");
    let config = write_config(dir.path(), "", &mappings);
    for command in ["check-config", "serve"] {
        let out = Command::new(BIN)
            .arg(command)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("{}:{}:", file.display(), lines + 2);
        assert!(stderr.contains(&expected), "{command}: {stderr}");
    }
}

#[tokio::test]
async fn hot_reload_applies_a_changed_mapping_and_keeps_the_old_one_when_the_new_is_broken() {
    let (dir, data) = temp_store();
    let mappings = dir.path().join("mappings");
    copy_tree(Path::new(MAPPINGS), &mappings);
    let engine = EngineProcess::start_full(&data, "", &mappings);
    assert_eq!(msa(&engine.send(&a28("R1")).await).0, "AA");
    let patient = &engine.search("identifier=7000001").await[0];
    assert!(patient.get("maritalStatus").is_none());

    // A new rule, picked up on SIGHUP.
    let file = mappings.join("ucr-adt-patient.map");
    append(&file, "\nmaritalStatus.text = \"reloaded\"\n");
    engine.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        assert_eq!(msa(&engine.send(&a28(&format!("R2-{n}"))).await).0, "AA");
        let patient = &engine.search("identifier=7000001").await[0];
        if patient["maritalStatus"]["text"] == "reloaded" {
            break;
        }
        assert!(Instant::now() < deadline, "the changed mapping was never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken file: the previous mapping stays in force.
    append(&file, "\nthis is not a rule\n");
    engine.signal("HUP");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ack = engine.send(&a28("R3")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let patient = &engine.search("identifier=7000001").await[0];
    assert_eq!(patient["maritalStatus"]["text"], "reloaded");
}

#[tokio::test]
async fn a_filter_condition_routes_messages_between_channels_on_one_listener() {
    let (dir, data) = temp_store();
    let config = dir.path().join("routing.toml");
    let source = "[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n";
    std::fs::write(
        &config,
        format!(
            "[http]\nbind = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n[mappings]\ndir = {MAPPINGS:?}\n\
             [[channels]]\nname = \"hospital-b\"\nmapping = \"ucr-adt-patient\"\n{source}\
             [channels.filter]\ncondition = 'PID-3[1].4.1 == \"HOSPB\"'\n\
             [[channels]]\nname = \"ucr-adt\"\nmapping = \"ucr-adt-patient\"\n{source}\
             [channels.filter]\nmessage_types = [\"ADT^A28\"]\n{}",
            test_clients()
        ),
    )
    .unwrap();
    let engine = EngineProcess::start_config(&config, &data);
    let hospital_b = String::from_utf8(a28("F1"))
        .unwrap()
        .replace("^^^UCRMPI&", "^^^HOSPB&");
    assert_eq!(msa(&engine.send(hospital_b.as_bytes()).await).0, "AA");
    assert_eq!(msa(&engine.send(&a28("F2")).await).0, "AA");
    let a08 = String::from_utf8(a28("F3"))
        .unwrap()
        .replace("ADT^A28^ADT_A05", "ADT^A08^ADT_A01");
    let ack = engine.send(a08.as_bytes()).await;
    // No channel takes an A08 from UCRMPI: filtered, answered AA (on_filtered defaults to accept).
    assert_eq!(msa(&ack).0, "AA", "{ack}");

    let (_, journal) = engine.get("/journal").await;
    let last = journal["entries"].as_array().unwrap().last().unwrap();
    assert_eq!(last["status"], "filtered", "{last}");
    assert!(last["error"].as_str().unwrap().contains("condition"), "{last}");
    let channels: Vec<&str> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["hospital-b", "ucr-adt", "hospital-b|ucr-adt"]);
}
