//! HL7's official FHIR R4 examples against our FHIR code: for every example of the resource
//! types the portal uses, `validate` finds no error and JSON -> XML -> JSON gives back the same
//! JSON. The examples come from the npm package `hl7.fhir.r4.examples` 4.0.1 (see
//! `fhir_packages.rs`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use tributary::fhir::validate::{Severity, validate};
use tributary::fhir::xml::{json_to_xml, xml_to_json};

/// The resource types the portal uses (STANDARDS.md), whose examples are all checked.
const TYPES: [&str; 14] = [
    "Patient",
    "RelatedPerson",
    "Task",
    "Questionnaire",
    "QuestionnaireResponse",
    "Appointment",
    "Communication",
    "CommunicationRequest",
    "Consent",
    "DocumentReference",
    "Observation",
    "DiagnosticReport",
    "CarePlan",
    "Bundle",
];

/// Official examples that are themselves invalid, and why. They are still round-tripped through
/// XML; only their validation errors are expected (and each must still have some).
const INVALID_EXAMPLES: &[(&str, &str)] = &[(
    "Questionnaire-qs1.json",
    "Questionnaire.item.linkId is required (1..1), but the example's nested items (item.item) have none",
)];

fn example_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".json") && TYPES.iter().any(|t| name.starts_with(&format!("{t}-")))
        })
        .collect();
    files.sort();
    files
}

/// Checks one example; returns what went wrong, if anything.
fn check(path: &Path) -> Vec<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_owned();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
    let json: Value = match serde_json::from_str(&text) {
        Ok(json) => json,
        Err(e) => return vec![format!("{name}: not JSON: {e}")],
    };
    let mut problems = Vec::new();
    let file_type = name.split('-').next().unwrap_or("");
    if json["resourceType"] != file_type {
        problems.push(format!(
            "{name}: resourceType is {}, not {file_type}",
            json["resourceType"]
        ));
    }

    let errors: Vec<String> = validate(&json)
        .into_iter()
        .filter(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
        .map(|i| format!("{} [{}] {}", i.path, i.code, i.message))
        .collect();
    let known_invalid = INVALID_EXAMPLES.iter().any(|(file, _)| *file == name);
    match (known_invalid, errors.is_empty()) {
        (false, false) => {
            let shown: Vec<&String> = errors.iter().take(5).collect();
            problems.push(format!(
                "{name}: {} validation errors, first: {shown:#?}",
                errors.len()
            ));
        }
        (true, true) => problems.push(format!(
            "{name}: listed as invalid but validates: take it off the list"
        )),
        _ => {}
    }

    match json_to_xml(&json) {
        Err(e) => problems.push(format!("{name}: JSON -> XML failed: {e}")),
        Ok(xml) => match xml_to_json(&xml) {
            Err(e) => problems.push(format!("{name}: XML -> JSON failed: {e}")),
            Ok(back) if back != json => problems.push(format!(
                "{name}: JSON -> XML -> JSON differs: {}",
                first_difference(&json, &back, "")
            )),
            Ok(_) => {}
        },
    }
    problems
}

/// Where two JSON values first differ, for a readable failure.
fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return format!("{path}.{k} is missing after the round trip"),
                    Some(w) if v != w => return first_difference(v, w, &format!("{path}.{k}")),
                    _ => {}
                }
            }
            match y.keys().find(|k| !x.contains_key(*k)) {
                Some(k) => format!("{path}.{k} appeared in the round trip"),
                None => format!("{path}: objects differ"),
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            match x.iter().zip(y).position(|(v, w)| v != w) {
                Some(i) => first_difference(&x[i], &y[i], &format!("{path}[{i}]")),
                None => format!("{path}: arrays differ"),
            }
        }
        _ => {
            let show = |v: &Value| {
                let s = v.to_string();
                if s.len() > 200 {
                    format!("{}...", &s[..s.char_indices().nth(200).map_or(s.len(), |c| c.0)])
                } else {
                    s
                }
            };
            format!("{path}: {} became {}", show(a), show(b))
        }
    }
}

#[test]
fn official_examples_validate_and_round_trip_through_xml() {
    let dir = crate::fhir_packages::examples_dir();
    let files = example_files(&dir);
    // Every type must have examples, or the package is not what this test expects.
    for t in TYPES {
        let prefix = format!("{t}-");
        assert!(
            files.iter().any(|f| f
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))),
            "no {t} examples in {}",
            dir.display()
        );
    }
    for (file, _) in INVALID_EXAMPLES {
        assert!(
            files.iter().any(|f| f.ends_with(file)),
            "{file} is listed as invalid but is not in the package"
        );
    }

    // The big Bundles (the whole specification's definitions, 35 MB and down) dominate; two
    // workers share the files.
    let queue = Mutex::new(files.iter());
    let problems = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some(path) = next else { break };
                    let found = check(path);
                    problems.lock().unwrap().extend(found);
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    println!(
        "checked {} official examples ({} listed as invalid)",
        files.len(),
        INVALID_EXAMPLES.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
