//! The file adapter on real folders: names and contents, idempotent retries, refused ids, missing
//! folders, and readers that never see a half-written file.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tributary_adapter_core::{DeliveryError, Envelope, Outbound};
use tributary_adapter_file::{FileConfig, from_config};

/// Every entry in `dir`, sorted, temporary files included.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn each_envelope_becomes_id_dot_extension_with_the_exact_payload() {
    let dir = tempfile::tempdir().unwrap();
    let outbound = from_config(FileConfig::new(dir.path())).unwrap();
    assert_eq!(outbound.kind(), "file");
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "adt-1",
            b"MSH|^~\\&|PORTAL\rPID|1||42\r",
            "x-application/hl7-v2+er7",
        ),
        (
            "pat-2",
            br#"{"resourceType":"Patient","name":[{"text":"\xd8\xb3\xd8\xa7\xd8\xb1\xd8\xa9"}]}"#,
            "application/fhir+json",
        ),
        (
            "pat-3",
            b"<Patient xmlns=\"http://hl7.org/fhir\"/>",
            "application/fhir+xml",
        ),
        ("note-4", "مرحبا\n".as_bytes(), "text/plain; charset=utf-8"),
        ("mail-5", b"Subject: hi\r\n\r\nbody\r\n", "message/rfc822"),
        ("blob-6", b"\x00\xff\x10binary", "application/octet-stream"),
    ];
    for (id, payload, content_type) in cases {
        let reply = outbound
            .deliver(&Envelope::new(id, payload.to_vec(), content_type))
            .await
            .unwrap();
        let written = std::str::from_utf8(&reply).unwrap();
        assert_eq!(fs::read(written).unwrap(), payload, "{id}");
    }
    assert_eq!(
        entries(dir.path()),
        [
            "adt-1.hl7",
            "blob-6.bin",
            "mail-5.eml",
            "note-4.txt",
            "pat-2.json",
            "pat-3.xml"
        ]
    );
}

#[tokio::test]
async fn a_retry_replaces_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let outbound = from_config(FileConfig::new(dir.path())).unwrap();
    outbound
        .deliver(&Envelope::new("d-1", "first attempt, longer", "application/json"))
        .await
        .unwrap();
    outbound
        .deliver(&Envelope::new("d-1", "second", "application/json"))
        .await
        .unwrap();
    assert_eq!(entries(dir.path()), ["d-1.json"]);
    assert_eq!(fs::read_to_string(dir.path().join("d-1.json")).unwrap(), "second");
}

#[tokio::test]
async fn ids_that_would_leave_the_folder_are_permanent_and_nothing_is_written() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    let outbound = from_config(FileConfig::new(&dir)).unwrap();
    for id in [
        "../escape",
        "sub/file",
        "..",
        "a\\b",
        ".hidden",
        "",
        "a\0b",
        &"x".repeat(300),
    ] {
        let error = outbound
            .deliver(&Envelope::new(id, "x", "text/plain"))
            .await
            .unwrap_err();
        assert!(matches!(error, DeliveryError::Permanent(_)), "{id:?}: {error}");
    }
    assert_eq!(
        entries(root.path()),
        Vec::<String>::new(),
        "not even the folder was made"
    );
}

#[tokio::test]
async fn a_missing_folder_is_created_or_is_transient() {
    let root = tempfile::tempdir().unwrap();
    let nested = root.path().join("a/b/c");
    from_config(FileConfig::new(&nested))
        .unwrap()
        .deliver(&Envelope::new("d-1", "x", "text/plain"))
        .await
        .unwrap();
    assert_eq!(entries(&nested), ["d-1.txt"]);

    let missing = root.path().join("not-mounted");
    let mut config = FileConfig::new(&missing);
    config.create_dir = false;
    let outbound = from_config(config).unwrap();
    let error = outbound
        .deliver(&Envelope::new("d-1", "x", "text/plain"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Transient(m) if m.contains("not-mounted")),
        "{error}"
    );
    assert!(!missing.exists());
    // Once the share is back, the same envelope goes through.
    fs::create_dir(&missing).unwrap();
    outbound
        .deliver(&Envelope::new("d-1", "x", "text/plain"))
        .await
        .unwrap();
    assert_eq!(entries(&missing), ["d-1.txt"]);
}

#[tokio::test]
async fn a_failed_write_is_transient_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let outbound = from_config(FileConfig::new(dir.path())).unwrap();
    // A folder where the file should go: the rename fails whatever the user's rights.
    fs::create_dir(dir.path().join("d-1.json")).unwrap();
    fs::write(dir.path().join("d-1.json/keep"), "x").unwrap();
    let error = outbound
        .deliver(&Envelope::new("d-1", "{}", "application/json"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(entries(dir.path()), ["d-1.json"]);
}

#[test]
fn a_dir_that_is_a_file_is_refused_at_build_time() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let error = from_config(FileConfig::new(file.path())).unwrap_err();
    assert!(error.contains("not a folder"), "{error}");
    let error = from_config(FileConfig::new("")).unwrap_err();
    assert!(error.contains("dir"), "{error}");
}

#[tokio::test]
async fn concurrent_deliveries_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let outbound = Arc::new(from_config(FileConfig::new(dir.path())).unwrap());
    let mut tasks = Vec::new();
    for n in 0..40 {
        let outbound = outbound.clone();
        tasks.push(tokio::spawn(async move {
            let envelope = Envelope::new(format!("d-{n:02}"), format!("payload {n}"), "text/plain");
            outbound.deliver(&envelope).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let names = entries(dir.path());
    assert_eq!(names.len(), 40, "{names:?}");
    assert_eq!(
        fs::read_to_string(dir.path().join("d-07.txt")).unwrap(),
        "payload 7"
    );
}

/// A reader polling the file while it is rewritten sees one whole version or the other, never a
/// truncated or mixed one (an in-place rewrite fails this quickly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_sees_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = FileConfig::new(dir.path());
    config.fsync = false; // many rewrites; durability is not what this test is about
    let outbound = from_config(config).unwrap();
    let versions = [vec![b'a'; 256 * 1024], vec![b'b'; 512 * 1024]];
    let path = dir.path().join("big.bin");
    outbound
        .deliver(&Envelope::new(
            "big",
            versions[0].clone(),
            "application/octet-stream",
        ))
        .await
        .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (done, path, versions) = (done.clone(), path.clone(), versions.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                let content = fs::read(&path).unwrap();
                assert!(
                    content == versions[0] || content == versions[1],
                    "partial read of {} bytes",
                    content.len()
                );
                reads += 1;
            }
            reads
        })
    };
    for round in 0..200 {
        let payload = versions[round % 2].clone();
        outbound
            .deliver(&Envelope::new("big", payload, "application/octet-stream"))
            .await
            .unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw only whole files");
    assert!(reads > 0);
    assert_eq!(entries(dir.path()), ["big.bin"]);
}

#[test]
fn the_documented_example_parses() {
    let config: FileConfig = toml::from_str(
        r#"
        dir = "/var/spool/tributary/out"
        create_dir = true
        fsync = true
        "#,
    )
    .unwrap();
    assert_eq!(config, FileConfig::new("/var/spool/tributary/out"));
    assert!(toml::from_str::<FileConfig>("dir = \"x\"\nmode = 644\n").is_err());
}
