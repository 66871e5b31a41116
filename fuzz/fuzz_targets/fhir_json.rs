//! Fuzz target: the FHIR JSON reader and the structural validator on any request body.
//!
//! `parse_fhir_body` is what the FHIR endpoint runs on a JSON body (`POST /fhir/Patient` ...), then
//! `validate` decides between storing it and answering 400 with an OperationOutcome. Neither may
//! panic or recurse without bound on any input. And a resource the validator accepts must be one
//! the FHIR XML codec can carry: JSON -> XML must succeed and XML -> JSON give the same JSON back
//! (a client may ask for any stored resource as XML). The one exception is a string holding a
//! control character, which FHIR discourages but allows and XML cannot carry (the endpoint
//! answers 406 when such a resource is asked for as XML).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary::{FhirFormat, parse_fhir_body};
use tributary::fhir::validate::{has_errors, operation_outcome, validate};
use tributary::fhir::xml::{json_to_xml, xml_to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(resource) = parse_fhir_body(FhirFormat::Json, data) else {
        return;
    };
    let issues = validate(&resource);
    let outcome = operation_outcome(&issues);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    if has_errors(&issues) {
        // Not every invalid resource has an XML form; it must only not panic.
        let _ = json_to_xml(&resource);
        return;
    }
    let xml = match json_to_xml(&resource) {
        Ok(xml) => xml,
        // FHIR says strings SHOULD NOT hold control characters, so the validator lets them
        // through; XML cannot carry them, and the endpoint answers 406 for such a resource in XML.
        Err(e) if e.message.contains("character XML cannot carry") => return,
        Err(e) => panic!("a valid resource cannot be written as XML: {e}\n{resource}"),
    };
    match xml_to_json(&xml) {
        Ok(back) => assert_eq!(back, resource, "JSON -> XML -> JSON changed the resource\n{xml}"),
        Err(e) => panic!("the XML written for a valid resource does not read: {e}\n{xml}"),
    }
});
