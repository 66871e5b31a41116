//! Scheduled jobs in the running engine: a dead-letter digest goes out through a destination
//! (a file drop here) on its cron schedule; bad schedules are refused at load with their line.

mod common;

use std::path::Path;
use std::time::Duration;

use common::peers::free_addr;
use common::{BIN, EngineProcess, MAPPINGS, fixture, msa, temp_store, test_clients};

fn config(dir: &Path, drop_dir: &Path, schedule: &str) -> std::path::PathBuf {
    let path = dir.join("tributary.toml");
    let consumer = free_addr();
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
destinations = ["pix"]
[channels.source]
kind = "mllp"
bind = "127.0.0.1:0"

[[destinations]]
name = "pix"
kind = "mllp"
mapping = "patient-adt-a31"
[destinations.retry]
max_attempts = 1
[destinations.settings]
address = "{consumer}"

[[destinations]]
name = "ops"
kind = "file"
[destinations.settings]
dir = {:?}

{schedule}
{}"#,
        drop_dir.display().to_string(),
        test_clients()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn the_dead_letter_digest_goes_out_on_schedule() {
    let (dir, data) = temp_store();
    let drop_dir = dir.path().join("drop");
    let schedule = "[[schedule]]\njob = \"dead-letter-digest\"\ncron = \"* * * * * *\"\ndestination = \"ops\"\nto = \"ops@example.org\"\n\n\
                    [[schedule]]\njob = \"journal-retention\"\ncron = \"0 3 * * *\"\nkeep_days = 90\n\n\
                    [[schedule]]\njob = \"retry-sweep\"\ncron = \"*/5 * * * *\"\n";
    let engine = EngineProcess::start_config(&config(dir.path(), &drop_dir, schedule), &data);
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a04_register.hl7")).await).0,
        "AA"
    );
    let (_, journal) = engine.get("/journal").await;
    let dead_id = journal["entries"][0]["deliveries"][0]
        .as_str()
        .unwrap()
        .to_string();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let digest = loop {
        let found = std::fs::read_dir(&drop_dir)
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .find(|text| text.contains(&dead_id))
            })
            .ok()
            .flatten();
        if let Some(text) = found {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no digest naming {dead_id} in {}",
            drop_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(digest.contains("1 dead letter waiting"), "{digest}");
    assert!(digest.contains("to pix"), "{digest}");
    // The digest itself is journaled with the delivery it queued; the API never shows a
    // notification's content (it may carry secrets), and none is kept once delivered.
    let (_, journal) = engine.get("/journal").await;
    let entry = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message_type"] == "dead-letter digest")
        .expect("the digest is journaled")
        .clone();
    let digest_id = entry["deliveries"][0]
        .as_str()
        .expect("its delivery is named")
        .to_string();
    let (status, delivery) = engine.get(&format!("/outbox/deliveries/{digest_id}")).await;
    assert_eq!(status, 200);
    assert!(
        !delivery["payload"].as_str().unwrap().contains(&dead_id),
        "{delivery}"
    );
    assert!(
        delivery["payload"].as_str().unwrap().contains("not shown"),
        "{delivery}"
    );
}

#[test]
fn a_bad_schedule_is_refused_with_its_line() {
    let (dir, _data) = temp_store();
    let check = |schedule: &str| {
        let path = config(dir.path(), &dir.path().join("drop"), schedule);
        let output = std::process::Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let (code, stderr) = check("[[schedule]]\njob = \"retry-sweep\"\ncron = \"every day\"\n");
    assert_eq!(code, Some(2));
    assert!(stderr.contains(":33: schedule[0].cron"), "{stderr}");
    let (_, stderr) = check("[[schedule]]\njob = \"coffee\"\ncron = \"* * * * *\"\n");
    assert!(
        stderr.contains("schedule[0].job") && stderr.contains("retry-sweep"),
        "{stderr}"
    );
    let (_, stderr) = check("[[schedule]]\njob = \"journal-retention\"\ncron = \"0 3 * * *\"\n");
    assert!(stderr.contains("keep_days"), "{stderr}");
    let (code, _) =
        check("[[schedule]]\njob = \"journal-retention\"\ncron = \"0 3 * * *\"\nkeep_days = 30\n");
    assert_eq!(code, Some(0));
}
