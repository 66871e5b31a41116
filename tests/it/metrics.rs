//! Prometheus metrics over the wire (issue 18): the real engine takes HL7 v2 messages (applied,
//! resent, refused), FHIR requests and scheduled job runs, and delivers A31s to a real MLLP PIX
//! consumer; `/metrics` is then read with the Prometheus project's own text parser (python
//! `prometheus_client`), and each count is the one the test caused. Only a `metrics-reader` key
//! reads it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::peers::{MllpPeer, free_addr};
use crate::common::{
    ANALYST_KEY, EngineProcess, FHIR_KEY, MAPPINGS, METRICS_KEY, fixture, msa, pix_destination, temp_store,
    write_config,
};

/// The samples of a Prometheus text page, as the reference parser reads them: name, labels, value.
fn parse(text: &str) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = []\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       out.append([s.name, s.labels, s.value])\n\
        print(json.dumps(out))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client does not read the page (or is missing: python3 -m pip install prometheus-client): {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    samples
        .into_iter()
        .map(|s| {
            (
                s[0].as_str().unwrap().to_string(),
                s[1].as_object().unwrap().clone(),
                s[2].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include every pair of `labels`.
fn total(
    samples: &[(String, serde_json::Map<String, Value>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

async fn scrape(engine: &EngineProcess, key: Option<&str>) -> (u16, String, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", engine.http));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_what_the_engine_did_and_a_prometheus_parser_reads_them() {
    let consumer_addr = free_addr();
    let consumer = MllpPeer::start(&consumer_addr, "AA").await;
    let (_dir, data) = temp_store();
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&pix_destination(&consumer_addr));
    text.push_str("\n[[schedule]]\njob = \"retry-sweep\"\ncron = \"* * * * * *\"\n");
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start_config(&config, &data);

    // Two new patients, one of them sent twice, and an event HL7 does not define.
    for file in [
        "ucr/adt_a28_new_patient.hl7",
        "ucr/adt_a04_register.hl7",
        "ucr/adt_a28_new_patient.hl7",
    ] {
        assert_eq!(msa(&engine.send(&fixture(file)).await).0, "AA");
    }
    let refused = engine.send(&fixture("ucr/adt_a99_unsupported_event.hl7")).await;
    assert_eq!(msa(&refused).0, "AR", "{refused}");
    consumer.wait_for(2).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let response = http
            .get(format!("{}/fhir/Patient?identifier=1000234567", engine.http))
            .bearer_auth(FHIR_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    // Only its own role reads it.
    assert_eq!(scrape(&engine, None).await.0, 401);
    assert_eq!(scrape(&engine, Some(ANALYST_KEY)).await.0, 403);
    let (status, content_type, page) = scrape(&engine, Some(METRICS_KEY)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let samples = parse(&page);

    let messages = |status: &str| {
        total(
            &samples,
            "tributary_messages_total",
            &[("channel", "ucr-adt"), ("status", status)],
        )
    };
    assert_eq!(messages("applied"), 2.0, "{page}");
    assert_eq!(messages("duplicate"), 1.0, "{page}");
    assert_eq!(
        total(&samples, "tributary_messages_total", &[("status", "rejected")]),
        1.0,
        "{page}"
    );
    assert_eq!(
        total(
            &samples,
            "tributary_messages_total",
            &[("type", "ADT^A04"), ("status", "applied")]
        ),
        1.0,
        "by message type: {page}"
    );
    // Every message answered has its ACK latency, in buckets.
    assert_eq!(
        total(&samples, "tributary_ack_latency_seconds_count", &[]),
        4.0,
        "{page}"
    );
    assert_eq!(
        total(
            &samples,
            "tributary_ack_latency_seconds_bucket",
            &[("le", "+Inf")]
        ),
        4.0,
        "{page}"
    );
    assert!(
        total(&samples, "tributary_commit_batch_jobs_count", &[]) >= 4.0,
        "{page}"
    );
    assert!(
        total(&samples, "tributary_fsync_seconds_count", &[]) >= 1.0,
        "{page}"
    );
    // The two A31s went out, and nothing waits.
    let delivered = total(
        &samples,
        "tributary_deliveries_total",
        &[("destination", "pix"), ("result", "delivered")],
    );
    assert_eq!(delivered, consumer.received().len() as f64, "{page}");
    assert_eq!(
        total(
            &samples,
            "tributary_delivery_seconds_count",
            &[("destination", "pix")]
        ),
        delivered
    );
    assert_eq!(
        total(&samples, "tributary_outbox_depth", &[("destination", "pix")]),
        0.0,
        "{page}"
    );
    assert!(
        samples
            .iter()
            .any(|(n, l, _)| n == "tributary_outbox_oldest_age_seconds" && l["destination"] == "pix")
    );
    // The job ran about once a second, and never failed.
    assert!(
        total(&samples, "tributary_job_runs_total", &[("job", "retry-sweep")]) >= 1.0,
        "{page}"
    );
    assert_eq!(
        total(&samples, "tributary_job_failures_total", &[]),
        0.0,
        "{page}"
    );
    // HTTP by route pattern (never a path with an id or a patient in it), method and status.
    assert_eq!(
        total(
            &samples,
            "tributary_http_requests_total",
            &[("route", "/fhir/{type}"), ("method", "GET"), ("status", "200")]
        ),
        3.0,
        "{page}"
    );
    assert_eq!(
        total(
            &samples,
            "tributary_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ),
        1.0
    );
    assert_eq!(
        total(
            &samples,
            "tributary_http_request_seconds_count",
            &[("route", "/fhir/{type}")]
        ),
        3.0
    );
    assert!(!page.contains("1000234567"), "no identifier in a label");
    assert!(
        total(&samples, "tributary_process_resident_memory_bytes", &[]) > 1e6,
        "{page}"
    );
    assert!(
        total(&samples, "tributary_process_open_sockets", &[]) >= 2.0,
        "{page}"
    );
}
