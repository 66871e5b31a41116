//! Fuzz target: the mapping language's parser and compiler (`Mapping::parse`), the code-table
//! loader, and a run of whatever compiles.
//!
//! Mapping files are written by analysts and reloaded while the engine runs (SIGHUP, a changed
//! file): a broken file must be refused with a line and a message, never crash the engine. A file
//! that compiles is run once over a fixture (an ADT message, or a FHIR Patient for a fhir source):
//! running a mapping may fail with a `RunError`, never panic.
//!
//! Input: the text of a `.map` file; the file is named after its `mapping NAME` line, as the
//! loader requires, and its tables resolve in the repository's `mappings/` folder. An input that
//! starts with `#table\n` is instead the text of a code table (`tables/*.csv`): it is written to a
//! scratch folder and loaded by a small fixed mapping that looks a code up in it.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tributary::hl7::Message;
use tributary::mapping::{Input, Mapping, SourceKind};

const NOW: &str = "20260101120000+0000";
const MAPPINGS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mappings");
const TABLE_MODE: &str = "#table\n";
/// Looks the gender of the fixture message up in the fuzzed table.
const TABLE_MAPPING: &str = "mapping fuzz-table\nsource hl7v2\ntarget fhir Patient\n\
    table codes = \"tables/fuzz.csv\"\ngender = lookup(codes, PID-8)\n";

static HL7_INPUT: LazyLock<Option<Message>> =
    LazyLock::new(|| Message::parse(include_bytes!("../../fixtures/ucr/adt_a08_update.hl7")).ok());
static FHIR_INPUT: LazyLock<Option<serde_json::Value>> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../mappings/tests/ucr-fhir-patient/minimal_patient.in.json"
    ))
    .ok()
});
/// A scratch mappings folder of this process, for table mode.
static SCRATCH: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("tributary-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tables")).expect("scratch folder");
    dir
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(table) = text.strip_prefix(TABLE_MODE) {
        std::fs::write(SCRATCH.join("tables/fuzz.csv"), table).expect("write the table");
        match Mapping::parse(TABLE_MAPPING, Path::new("fuzz-table.map"), &SCRATCH) {
            Ok(mapping) => run(&mapping),
            // The fixed mapping is right, so only the table can be what is wrong.
            Err(error) => assert!(error.message.starts_with("table `codes`: "), "{error}"),
        }
        return;
    }
    let name = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("mapping "))
        .map_or("fuzz", str::trim);
    let file = PathBuf::from(format!("{name}.map"));
    match Mapping::parse(text, &file, Path::new(MAPPINGS_DIR)) {
        Ok(mapping) => run(&mapping),
        Err(error) => {
            let _ = error.to_string();
        }
    }
});

fn run(mapping: &Mapping) {
    let result = match mapping.source {
        SourceKind::Hl7v2 => HL7_INPUT.as_ref().map(|m| mapping.run(&Input::Hl7(m), NOW)),
        SourceKind::Fhir => FHIR_INPUT.as_ref().map(|r| mapping.run(&Input::Fhir(r), NOW)),
    };
    if let Some(Err(error)) = result {
        let _ = error.to_string();
    }
}
