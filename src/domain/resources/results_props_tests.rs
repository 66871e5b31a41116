//! Property: whatever sequence of result messages arrives (new results, corrections, cancelled
//! and deleted ones, orders sent in any order, each message naming any subset of its order's
//! results), the store holds one Observation per (order, observation id) with what the last
//! message about it said, and each order's DiagnosticReport lists every result it was ever sent.
//! The messages go through the shipped mapping (`mappings/ucr-oru-result.map`) and the same
//! change path as the feed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::Current;
use super::change::{self, ResourceChange};
use super::search::{self, Sort};
use crate::hl7::Message;
use crate::mapping::{Input, Mapping};
use crate::store::{MemoryStore, Overlay, Store};

const NOW: &str = "2026-01-01T00:00:00.000Z";
const CODES: [&str; 3] = ["2345-7", "2823-3", "2951-2"];

#[derive(Debug, Clone)]
struct Obx {
    code: usize,
    value: u16,
    status: char,
}

#[derive(Debug, Clone)]
struct Oru {
    order: usize,
    results: Vec<Obx>,
}

fn message(n: usize, oru: &Oru) -> String {
    let mut text = format!(
        "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250314101500-0400||ORU^R01^ORU_R01|P{n}|P|2.5\r\
         PID|1||1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH\r\
         OBR|1||LAB{}^UCRLAB^2.16.840.1.113883.3.9999.7^ISO|24323-8^Panel^LN|||20250314073000-0400||||||||||||||||CH|F\r",
        oru.order
    );
    for (i, r) in oru.results.iter().enumerate() {
        text.push_str(&format!(
            "OBX|{}|NM|{}^Test^LN||{}|mmol/L|1-9||||{}\r",
            i + 1,
            CODES[r.code],
            r.value,
            r.status
        ));
    }
    text
}

fn status_of(code: char) -> &'static str {
    match code {
        'F' => "final",
        'C' => "corrected",
        'P' => "preliminary",
        'X' => "cancelled",
        _ => "entered-in-error",
    }
}

fn orus() -> impl Strategy<Value = Vec<Oru>> {
    let result = (
        0..CODES.len(),
        0u16..1000,
        prop::sample::select(vec!['F', 'C', 'P', 'X', 'D']),
    )
        .prop_map(|(code, value, status)| Obx { code, value, status });
    let oru = (0usize..3, prop::collection::vec(result, 1..4)).prop_map(|(order, mut results)| {
        // One OBX per observation id in a message, as a sender writes them.
        let mut seen = BTreeSet::new();
        results.retain(|r| seen.insert(r.code));
        Oru { order, results }
    });
    prop::collection::vec(oru, 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_store_holds_the_last_word_on_every_result(sequence in orus()) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let mapping = Mapping::load(&dir.join("ucr-oru-result.map"), &dir).unwrap();
        let store = MemoryStore::new();
        let mut tx = Overlay::new(&store);
        let patient = json!({"resourceType": "Patient", "identifier": [
            {"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "1000551903"}]});
        change::apply(&mut tx, &ResourceChange::Upsert { resource: patient }, NOW).unwrap();
        store.commit(tx.into_writes()).unwrap();

        let mut last: BTreeMap<(usize, usize), (u16, char)> = BTreeMap::new();
        for (n, oru) in sequence.iter().enumerate() {
            let text = message(n, oru);
            let parsed = Message::parse(text.as_bytes()).unwrap();
            let output = mapping.run(&Input::Hl7(&parsed), "20260101000000+0000").unwrap();
            let mut tx = Overlay::new(&store);
            for one in ResourceChange::from_output(output).unwrap() {
                change::apply(&mut tx, &one, NOW).unwrap();
            }
            store.commit(tx.into_writes()).unwrap();
            for r in &oru.results {
                last.insert((oru.order, r.code), (r.value, r.status));
            }
        }

        let observations = search::search(&store, "Observation", &[], Sort::default()).unwrap();
        prop_assert_eq!(observations.len(), last.len());
        for ((order, code), (value, status)) in &last {
            let found: Vec<&Value> = observations
                .iter()
                .filter(|o| {
                    o["basedOn"][0]["identifier"]["value"] == format!("LAB{order}")
                        && o["code"]["coding"][0]["code"] == CODES[*code]
                })
                .collect();
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(&found[0]["valueQuantity"]["value"], &json!(value));
            prop_assert_eq!(&found[0]["status"], status_of(*status));
        }
        let reports = search::search(&store, "DiagnosticReport", &[], Sort::default()).unwrap();
        let orders: BTreeSet<usize> = last.keys().map(|(order, _)| *order).collect();
        prop_assert_eq!(reports.len(), orders.len());
        for report in &reports {
            let listed: BTreeSet<String> = report["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["reference"].as_str().unwrap().trim_start_matches("Observation/").to_string())
                .collect();
            let order = report["identifier"][0]["value"].as_str().unwrap().trim_start_matches("LAB").parse::<usize>().unwrap();
            let expected: BTreeSet<String> = observations
                .iter()
                .filter(|o| o["basedOn"][0]["identifier"]["value"] == format!("LAB{order}"))
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect();
            prop_assert_eq!(listed, expected);
            let Some(Current::Live(_)) = super::read(&store, "DiagnosticReport", report["id"].as_str().unwrap()).unwrap() else {
                panic!("the report reads back");
            };
        }
    }
}
