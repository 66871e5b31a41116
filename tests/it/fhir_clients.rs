//! Third-party FHIR clients against the running engine (issue #13): python `fhirpy` creates,
//! searches (with `.count()`), reads and updates a Patient and posts a transaction to the base
//! (`[base]/`), and `fhir.resources` validates every resource the engine answers
//! (tests/python/fhirpy_client.py); fhirpy feeds the Summary types and a result for a patient
//! named by identifier and searches them (tests/python/fhirpy_records.py). `.ci/run` installs
//! both packages when they are absent.

use std::process::Command;

use crate::common::{EngineProcess, FHIR_KEY, temp_store};

/// What to run when the python packages are missing.
const INSTALL: &str = "python3 -m pip install --quiet fhirpy==2.3.1 fhir.resources==8.3.0";

#[test]
fn fhirpy_creates_searches_counts_reads_updates_and_posts_a_transaction_to_the_base() {
    run_script("fhirpy_client.py");
}

#[test]
fn fhirpy_feeds_the_summary_types_and_searches_them_by_patient_category_code_status_and_date() {
    run_script("fhirpy_records.py");
}

/// Runs `tests/python/<script>` against a fresh engine's FHIR base and asserts it printed `ok`.
fn run_script(script: &str) {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let script = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(&script)
        .arg(format!("{}/fhir", engine.http))
        .arg(FHIR_KEY)
        .output()
        .unwrap_or_else(|e| panic!("python3 cannot run ({e}): install python 3, then `{INSTALL}`"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(3),
        "the python FHIR client is not installed: run `{INSTALL}` (.ci/run does)\n{stderr}"
    );
    assert!(
        output.status.success() && stdout.trim_end().ends_with("ok"),
        "{script} against the engine failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
