//! Fuzz target: the FHIR XML reader (`crates/fhir/src/xml.rs`) on any request body.
//!
//! `parse_fhir_body` with XML is what the FHIR endpoint runs on an `application/fhir+xml` body: UTF-8
//! check, then XML -> JSON, bounded in size and nesting. It must never panic or hang. When it
//! reads a resource, the codec must be able to write that resource back (JSON -> XML) and reading
//! what it wrote must give the same JSON: the two directions agree. The validator must not panic
//! on what the reader produced either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary::{FhirFormat, parse_fhir_body};
use tributary::fhir::validate::validate;
use tributary::fhir::xml::{json_to_xml, xml_to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(resource) = parse_fhir_body(FhirFormat::Xml, data) else {
        return;
    };
    let _ = validate(&resource);
    let xml = match json_to_xml(&resource) {
        Ok(xml) => xml,
        Err(e) => panic!("a resource read from XML cannot be written back: {e}\n{resource}"),
    };
    match xml_to_json(&xml) {
        Ok(back) => assert_eq!(
            back, resource,
            "XML -> JSON -> XML -> JSON changed the resource\n{xml}"
        ),
        Err(e) => panic!("the XML written back does not read: {e}\n{xml}"),
    }
});
