//! Traces over OTLP (issue 18): the engine is given a collector, a stand-in on loopback that
//! takes OTLP/HTTP JSON as a real collector does (POST /v1/traces), and the test reads the span
//! trees it gets: a message's (parse, map, commit, ack, and the delivery it caused, in one
//! trace) and an HTTP request's, with the control id and journal sequence and no patient data.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

use crate::common::peers::{MllpPeer, free_addr};
use crate::common::{
    EngineProcess, FHIR_KEY, MAPPINGS, fixture, msa, pix_destination, temp_store, write_config,
};

/// The spans received, flattened: name, ids and attributes as strings.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    trace: String,
    id: String,
    parent: String,
    attributes: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Collector {
    bodies: Mutex<Vec<String>>,
}

async fn take(State(collector): State<Arc<Collector>>, body: String) -> &'static str {
    collector.bodies.lock().unwrap().push(body);
    "{}"
}

fn spans(bodies: &[String]) -> Vec<Received> {
    let mut found = vec![];
    for body in bodies {
        let export: Value = serde_json::from_str(body).expect("OTLP JSON");
        for resource in export["resourceSpans"].as_array().into_iter().flatten() {
            let service = resource["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .map(|a| a["value"]["stringValue"].clone());
            assert_eq!(service, Some(Value::from("tributary-test")));
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let attributes = span["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            let value = &a["value"];
                            let text = value["stringValue"]
                                .as_str()
                                .map(str::to_string)
                                .or_else(|| value["intValue"].as_str().map(str::to_string))
                                .or_else(|| value["intValue"].as_i64().map(|n| n.to_string()))
                                .unwrap_or_else(|| value.to_string());
                            (a["key"].as_str().unwrap().to_string(), text)
                        })
                        .collect();
                    found.push(Received {
                        name: span["name"].as_str().unwrap().to_string(),
                        trace: span["traceId"].as_str().unwrap().to_string(),
                        id: span["spanId"].as_str().unwrap().to_string(),
                        parent: span["parentSpanId"].as_str().unwrap_or("").to_string(),
                        attributes,
                    });
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn a_message_and_a_request_are_each_one_span_tree_at_the_collector() {
    let collector = Arc::new(Collector::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/traces", post(take))
        .with_state(collector.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let consumer_addr = free_addr();
    let consumer = MllpPeer::start(&consumer_addr, "AA").await;
    let (_dir, data) = temp_store();
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replacen(
        "[log]",
        &format!(
            "[traces]\notlp_endpoint = \"http://{collector_addr}/v1/traces\"\nservice_name = \"tributary-test\"\n[log]"
        ),
        1,
    );
    text.push_str(&pix_destination(&consumer_addr));
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start_config(&config, &data);

    let a28 = String::from_utf8(fixture("ucr/adt_a28_new_patient.hl7")).unwrap();
    let control_id = a28.split('|').nth(9).unwrap().to_string();
    assert_eq!(msa(&engine.send(a28.as_bytes()).await).0, "AA");
    consumer.wait_for(1).await;
    let (_, journal) = engine.get("/journal").await;
    let seq = journal["entries"][0]["seq"].as_u64().unwrap().to_string();
    let searched = reqwest::Client::new()
        .get(format!("{}/fhir/Patient?identifier=1000234567", engine.http))
        .bearer_auth(FHIR_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(searched.status(), 200);

    // Spans are sent every second; wait for the delivery's and the request's.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let received = loop {
        let bodies = collector.bodies.lock().unwrap().clone();
        let received = spans(&bodies);
        let names: Vec<&str> = received.iter().map(|s| s.name.as_str()).collect();
        if names.contains(&"delivery") && names.contains(&"http request") && names.contains(&"message") {
            for body in &bodies {
                for phi in ["DOE", "JANE", "1000234567", "Elm Street", "19840312"] {
                    assert!(
                        !body.contains(phi),
                        "a patient's data in a trace: {phi} in {body}"
                    );
                }
            }
            break received;
        }
        assert!(tokio::time::Instant::now() < deadline, "spans so far: {names:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let message = received
        .iter()
        .find(|s| s.name == "message" && s.attribute("control_id") == Some(&control_id))
        .unwrap_or_else(|| panic!("the message's span: {received:#?}"));
    assert_eq!(message.parent, "", "a message is a trace of its own");
    assert_eq!(message.attribute("journal_seq"), Some(seq.as_str()));
    assert_eq!(message.attribute("channel"), Some("ucr-adt"));
    assert_eq!(message.attribute("message_type"), Some("ADT^A28"));
    assert_eq!(message.attribute("status"), Some("applied"));
    let under_message: Vec<&Received> = received.iter().filter(|s| s.parent == message.id).collect();
    for step in ["parse", "map", "commit", "ack", "delivery"] {
        let found = under_message
            .iter()
            .find(|s| s.name == step)
            .unwrap_or_else(|| panic!("no {step} under the message: {received:#?}"));
        assert_eq!(found.trace, message.trace, "{step} is in the message's trace");
    }
    let commit = under_message.iter().find(|s| s.name == "commit").unwrap();
    assert_eq!(commit.attribute("journal_seq"), Some(seq.as_str()));
    let delivery = under_message.iter().find(|s| s.name == "delivery").unwrap();
    assert_eq!(delivery.attribute("destination"), Some("pix"));
    assert_eq!(delivery.attribute("result"), Some("delivered"));
    assert_eq!(delivery.attribute("cause_journal_seq"), Some(seq.as_str()));

    let request = received
        .iter()
        .find(|s| s.name == "http request" && s.attribute("http.route") == Some("/fhir/{type}"))
        .unwrap_or_else(|| panic!("the search's span: {received:#?}"));
    assert_eq!(request.parent, "");
    assert_eq!(request.attribute("http.request.method"), Some("GET"));
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
}

#[test]
fn a_collector_address_that_is_not_a_url_is_refused_naming_the_line() {
    let (_dir, data) = temp_store();
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[log]",
        "[traces]\notlp_endpoint = \"collector:4318\"\n[log]",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let output = std::process::Command::new(crate::common::BIN)
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("otlp_endpoint"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "tributary.toml:{line}: traces.otlp_endpoint: `collector:4318`"
        )),
        "{stderr}"
    );
}
