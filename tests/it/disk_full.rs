//! A disk that fills and frees: no AA'd message may be lost, and `/health` says the store is
//! failing while writes fail. The store lives on a small tmpfs the test mounts (it needs root;
//! where mounting is impossible the test says `skipped:` and why).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{EngineProcess, MAPPINGS, msa, write_config};

/// A tmpfs of its own, unmounted when dropped.
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tributary-test"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(SmallDisk { _dir: dir, path })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// An A28 of about `size` bytes (the padding rides in an NTE the mapping ignores).
fn a28(n: usize, size: usize) -> Vec<u8> {
    let pad = "x".repeat(size);
    format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20261125101500||ADT^A28^ADT_A05|DF{n}|P|2.5\r\
         EVN|A28|20261125101500\r\
         PID|1||{id}^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||Full^Disk^Q^^^^L||19840612|F\r\
         PV1||N\r\
         NTE|1||{pad}\r",
        id = 5_000_000 + n
    )
    .into_bytes()
}

fn config(dir: &Path, store: &str) -> PathBuf {
    let path = write_config(dir, "", Path::new(MAPPINGS));
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("\n[store]\n{store}\n"));
    std::fs::write(&path, text).unwrap();
    path
}

async fn health(engine: &EngineProcess) -> (u16, serde_json::Value) {
    engine.get("/health").await
}

#[tokio::test]
async fn no_aad_message_is_lost_when_the_disk_fills_and_frees() {
    let disk = match SmallDisk::mount("30m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: cannot mount a small tmpfs here ({why})");
            return;
        }
    };
    let config_dir = tempfile::tempdir().unwrap();
    // No free-space floor: the writes themselves must meet the full disk.
    let config = config(config_dir.path(), "min_free_bytes = 0");
    let data = disk.path.join("data");
    let mut engine = EngineProcess::start_config(&config, &data);

    let mut acked = vec![];
    let mut refused = 0;
    let mut n = 0;
    // Fill the disk: every message is AA or AE, never lost, never unanswered.
    while refused < 5 {
        n += 1;
        assert!(n < 5_000, "the disk never filled");
        let ack = engine.send(&a28(n, 48 * 1024)).await;
        match msa(&ack).0.as_str() {
            "AA" => acked.push(n),
            "AE" => {
                refused += 1;
                assert!(ack.contains("ERR|"), "an AE says why: {ack}");
                let (status, body) = health(&engine).await;
                assert_eq!(status, 503, "health while writes fail: {body}");
                assert_eq!(body["store"], "failing");
            }
            other => panic!("message {n}: unexpected {other}: {ack}"),
        }
    }
    assert!(acked.len() > 100, "the disk held only {} messages", acked.len());

    // Free the disk: the engine takes messages again, without a restart.
    disk.resize("200m");
    for m in 0..50 {
        n += 1;
        let ack = engine.send(&a28(n, 1024)).await;
        assert_eq!(msa(&ack).0, "AA", "after the disk was freed, message {m}: {ack}");
        acked.push(n);
    }
    let (status, body) = health(&engine).await;
    assert_eq!(status, 200, "health once writes succeed again: {body}");

    // kill -9, and every AA'd message must be there after the restart.
    engine.kill();
    let engine = EngineProcess::start_config(&config, &data);
    let mut missing = vec![];
    for n in &acked {
        if engine
            .search(&format!("identifier={}", 5_000_000 + n))
            .await
            .len()
            != 1
        {
            missing.push(*n);
        }
    }
    assert!(missing.is_empty(), "AA'd messages lost: {missing:?}");
}

#[tokio::test]
async fn below_the_free_space_floor_writes_are_refused_before_they_start() {
    let disk = match SmallDisk::mount("40m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: cannot mount a small tmpfs here ({why})");
            return;
        }
    };
    let config_dir = tempfile::tempdir().unwrap();
    let config = config(config_dir.path(), "min_free_bytes = 20971520");
    let data = disk.path.join("data");
    let mut engine = EngineProcess::start_config(&config, &data);
    let mut acked = vec![];
    let mut n = 0;
    let refusal = loop {
        n += 1;
        assert!(n < 5_000, "the floor was never reached");
        let ack = engine.send(&a28(n, 48 * 1024)).await;
        match msa(&ack).0.as_str() {
            "AA" => acked.push(n),
            "AE" => break ack,
            other => panic!("unexpected {other}: {ack}"),
        }
    };
    assert!(
        refusal.contains("min_free_bytes"),
        "the AE names the floor: {refusal}"
    );
    let (status, body) = health(&engine).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("below the floor"),
        "{body}"
    );
    // A FHIR write is refused the same way: 503, an OperationOutcome, nothing stored.
    let response = reqwest::Client::new()
        .post(format!("{}/fhir/Patient", engine.http))
        .bearer_auth(crate::common::FHIR_KEY)
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Patient","identifier":[{"system":"urn:test:floor","value":"F1"}],"name":[{"family":"Floor"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let outcome: serde_json::Value = response.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "transient", "{outcome}");
    // The disk is not full: the floor kept room, so the store's own files are whole.
    let free = Command::new("df")
        .arg("--output=avail")
        .arg(&disk.path)
        .output()
        .unwrap();
    let free_kb: u64 = String::from_utf8_lossy(&free.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(free_kb > 10 * 1024, "the floor left {free_kb} KiB free");
    engine.kill();
    disk.resize("200m");
    let engine = EngineProcess::start_config(&config, &data);
    for n in &acked {
        assert_eq!(
            engine
                .search(&format!("identifier={}", 5_000_000 + n))
                .await
                .len(),
            1,
            "message {n}"
        );
    }
    let ack = engine.send(&a28(n + 1, 1024)).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
}
