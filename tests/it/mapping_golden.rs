//! The shipped mappings: every file loads, and every golden case under `mappings/tests/` passes
//! (a failure prints each differing field with both values and the rules that fired).

use std::path::Path;

use crate::common::MAPPINGS;
use tributary::mapping::{Mapping, MappingSet, SourceKind, TargetKind, run_golden_tests};

#[test]
fn every_shipped_mapping_loads() {
    let dir = Path::new(MAPPINGS);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "map"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no mapping files in {MAPPINGS}");
    for file in &files {
        let mapping = Mapping::load(file, dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Some(mapping.name.as_str()),
            file.file_stem().and_then(|s| s.to_str())
        );
    }
    let set = MappingSet::load(dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.names().len(), files.len());
    for name in ["ucr-adt-patient", "trakcare-adt-patient"] {
        let mapping = set.get(name).unwrap_or_else(|| panic!("{name} is not shipped"));
        assert_eq!(mapping.source, SourceKind::Hl7v2);
        assert_eq!(
            mapping.target,
            TargetKind::Fhir {
                resource_type: "Patient".into()
            }
        );
    }
}

#[test]
fn every_golden_case_passes() {
    let dir = Path::new(MAPPINGS);
    let set = MappingSet::load(dir).unwrap_or_else(|e| panic!("{e}"));
    let report = run_golden_tests(dir, &set, &[]);
    for name in set.names() {
        assert!(
            report.cases.iter().any(|c| c.mapping == name),
            "mapping `{name}` has no golden case under mappings/tests/{name}/"
        );
    }
    assert_eq!(report.failed(), 0, "golden test failures:\n{report}");
}
