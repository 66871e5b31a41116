//! Scheduled jobs in the running engine: a dead-letter digest goes out through a destination
//! (a file drop here) on its cron schedule; bad schedules are refused at load with their line.

use std::path::Path;
use std::time::Duration;

use crate::common::peers::free_addr;
use crate::common::{BIN, EngineProcess, MAPPINGS, fixture, msa, temp_store, test_clients};

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

    let digest = wait_digest_naming(&drop_dir, &dead_id).await;
    assert!(
        digest.contains("1 new dead letter since the last digest"),
        "{digest}"
    );
    assert!(digest.contains("1 dead letter waiting"), "{digest}");
    assert!(digest.contains("to pix"), "{digest}");

    // Runs every second, but a dead letter is reported once: runs with nothing new send nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(digests(&drop_dir).len(), 1, "{:?}", digests(&drop_dir));

    // A new dead letter: the next digest names it, and only it.
    let other = fixture("ucr/adt_a08_update.hl7");
    assert_eq!(msa(&engine.send(&other).await).0, "AA");
    let (_, journal) = engine.get("/journal").await;
    let second_id = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find_map(|e| e["deliveries"][0].as_str().filter(|id| id.starts_with("pix-")))
        .unwrap()
        .to_string();
    assert_ne!(second_id, dead_id);
    let second = wait_digest_naming(&drop_dir, &second_id).await;
    assert!(
        second.contains("1 new dead letter since the last digest"),
        "{second}"
    );
    assert!(second.contains("2 dead letters waiting"), "{second}");
    assert!(!second.contains(&dead_id), "reported again: {second}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(digests(&drop_dir).len(), 2, "{:?}", digests(&drop_dir));
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

/// Every digest dropped so far.
fn digests(drop_dir: &Path) -> Vec<String> {
    std::fs::read_dir(drop_dir)
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter(|text| text.contains("dead letter"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits for the digest that names `id` (panics after 20 s).
async fn wait_digest_naming(drop_dir: &Path, id: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(text) = digests(drop_dir).into_iter().find(|text| text.contains(id)) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no digest naming {id} in {}",
            drop_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
