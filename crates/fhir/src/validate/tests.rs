//! Unit tests of the structural validator.

use super::*;

fn issues(resource: Value) -> Vec<(String, &'static str)> {
    validate(&resource)
        .into_iter()
        .map(|i| (i.path, i.code))
        .collect()
}

fn one(resource: Value) -> Issue {
    let found = validate(&resource);
    assert_eq!(found.len(), 1, "expected one issue, got {found:#?}");
    found.into_iter().next().unwrap()
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": { "versionId": "1", "lastUpdated": "2024-01-02T03:04:05.123Z" },
        "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Ann <b>Lee</b></div>" },
        "identifier": [{ "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345" }],
        "active": true,
        "name": [{ "use": "official", "family": "Lee", "given": ["Ann", "Marie"], "_given": [null, { "id": "g2" }] }],
        "gender": "female",
        "birthDate": "1974-12-25",
        "_birthDate": { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00" }] },
        "deceasedBoolean": false,
        "multipleBirthInteger": 2,
        "contact": [{ "name": { "family": "Lee" }, "telecom": [{ "system": "phone", "value": "555" }] }],
        "contained": [{ "resourceType": "Organization", "id": "org", "name": "Clinic" }],
        "managingOrganization": { "reference": "#org" }
    })
}

#[test]
fn a_valid_patient_has_no_issues() {
    assert_eq!(validate(&patient()), vec![]);
}

#[test]
fn unknown_elements_are_structure_errors() {
    let mut p = patient();
    p["nickname"] = json!("Annie");
    p["name"][0]["middle"] = json!("M");
    p["contact"][0]["foo"] = json!(1);
    p["_gender"] = json!({ "id": "x" });
    p["_name"] = json!([{ "id": "x" }]);
    let found = issues(p);
    assert!(
        found.contains(&("Patient.nickname".into(), "structure")),
        "{found:?}"
    );
    assert!(
        found.contains(&("Patient.name[0].middle".into(), "structure")),
        "{found:?}"
    );
    assert!(
        found.contains(&("Patient.contact[0].foo".into(), "structure")),
        "{found:?}"
    );
    assert!(
        found.contains(&("Patient._name".into(), "structure")),
        "_ of a complex element: {found:?}"
    );
    assert_eq!(found.len(), 4, "_gender is fine: {found:?}");
}

#[test]
fn wrong_json_shapes() {
    let mut p = patient();
    p["name"] = json!({ "family": "Lee" });
    p["gender"] = json!(["female"]);
    p["identifier"] = json!([]);
    p["managingOrganization"] = json!("Organization/1");
    p["contact"][0]["name"]["given"] = json!("Ann");
    p["telecom"] = json!([null]);
    p["address"] = json!([{}]);
    let found = issues(p);
    for (path, code) in [
        ("Patient.name", "structure"),
        ("Patient.gender", "structure"),
        ("Patient.identifier", "structure"),
        ("Patient.managingOrganization", "structure"),
        ("Patient.contact[0].name.given", "structure"),
        ("Patient.telecom[0]", "structure"),
        ("Patient.address[0]", "structure"),
    ] {
        assert!(found.contains(&(path.into(), code)), "{path}: {found:?}");
    }
    assert_eq!(found.len(), 7, "{found:?}");
}

#[test]
fn primitives_of_the_wrong_json_kind() {
    let mut p = patient();
    p["active"] = json!("true");
    p["birthDate"] = json!(19741225);
    p["name"][0]["given"] = json!(["Ann", 7]);
    p["multipleBirthInteger"] = json!("2");
    let found = issues(p);
    for path in [
        "Patient.active",
        "Patient.birthDate",
        "Patient.name[0].given[1]",
        "Patient.multipleBirthInteger",
    ] {
        assert!(found.contains(&(path.into(), "value")), "{path}: {found:?}");
    }
    assert_eq!(found.len(), 4, "{found:?}");
}

#[test]
fn bad_primitive_values() {
    let cases = [
        ("birthDate", json!("1974-13-01")),
        ("birthDate", json!("25/12/1974")),
        ("gender", json!("fe male ")),
        ("id", json!("p_1")),
        ("implicitRules", json!("http://x/ y")),
        ("multipleBirthInteger", json!(2_147_483_648_i64)),
        ("multipleBirthInteger", json!(1.5)),
        ("language", json!("")),
    ];
    for (key, value) in cases {
        let mut p = patient();
        p[key] = value.clone();
        let issue = one(p);
        assert_eq!(
            (issue.path.as_str(), issue.code),
            (format!("Patient.{key}").as_str(), "value"),
            "{value}"
        );
    }
}

#[test]
fn date_times_need_a_zone_with_a_time() {
    let obs = |effective: &str| {
        json!({
            "resourceType": "Observation", "status": "final", "code": { "text": "x" },
            "effectiveDateTime": effective,
            "issued": "2015-02-07T13:28:17.239+02:00",
            "valueQuantity": { "value": 1.5, "unit": "mmol/L" }
        })
    };
    assert_eq!(validate(&obs("2015-02-07T13:28:17-05:00")), vec![]);
    assert_eq!(validate(&obs("2015-02")), vec![]);
    let issue = one(obs("2015-02-07T13:28:17"));
    assert_eq!(
        (issue.path.as_str(), issue.code),
        ("Observation.effectiveDateTime", "value")
    );
    assert!(issue.message.contains("time zone"), "{}", issue.message);
}

#[test]
fn integer_ranges() {
    let with_count = |n: Value| json!({ "resourceType": "Bundle", "type": "searchset", "total": n });
    assert_eq!(validate(&with_count(json!(0))), vec![]);
    assert_eq!(one(with_count(json!(-1))).code, "value");
    let rank = |n: Value| json!({ "resourceType": "Patient", "contact": [{ "name": { "family": "x" }, "period": { "start": "2020" } }], "photo": [{ "size": n }] });
    assert_eq!(validate(&rank(json!(5))), vec![]);
    assert_eq!(one(rank(json!(-5))).path, "Patient.photo[0].size");
}

#[test]
fn required_elements() {
    let found = issues(json!({ "resourceType": "Observation", "valueString": "x" }));
    assert_eq!(
        found,
        vec![
            ("Observation.status".to_string(), "required"),
            ("Observation.code".to_string(), "required")
        ]
    );
    // A primitive given only by its extensions counts as present.
    let found = issues(json!({
        "resourceType": "Observation", "code": { "text": "x" },
        "_status": { "extension": [{ "url": "http://example.org/absent", "valueCode": "unknown" }] }
    }));
    assert_eq!(found, vec![]);
    // Required inside data types and backbones; an Extension needs its url.
    let found = issues(json!({
        "resourceType": "Patient",
        "link": [{ "type": "seealso" }],
        "extension": [{ "valueString": "x" }]
    }));
    assert!(
        found.contains(&("Patient.link[0].other".into(), "required")),
        "{found:?}"
    );
    assert!(
        found.contains(&("Patient.extension[0].url".into(), "required")),
        "{found:?}"
    );
    // A required choice is satisfied by any of its names.
    let ok = json!({ "resourceType": "Observation", "status": "final", "code": { "text": "x" },
        "component": [{ "code": { "text": "y" } }] });
    assert_eq!(validate(&ok), vec![]);
}

#[test]
fn choices() {
    let found = issues(json!({
        "resourceType": "Observation", "status": "final", "code": { "text": "x" },
        "valueString": "a", "valueBoolean": true
    }));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "structure");
    let found = issues(
        json!({ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "valueHumanName": {} }),
    );
    assert_eq!(
        found,
        vec![("Observation.valueHumanName".to_string(), "structure")]
    );
    let found = issues(
        json!({ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "value": 1 }),
    );
    assert_eq!(found, vec![("Observation.value".to_string(), "structure")]);
}

#[test]
fn parallel_arrays() {
    let name = |given: Value, extras: Value| json!({ "resourceType": "Patient", "name": [{ "given": given, "_given": extras }] });
    assert_eq!(
        validate(&name(json!([null, "B"]), json!([{ "id": "a" }, null]))),
        vec![]
    );
    // A null with no partner, lengths that differ, both null.
    assert_eq!(
        one(name(json!([null, "B"]), json!([null, { "id": "b" }]))).path,
        "Patient.name[0].given[0]"
    );
    assert_eq!(
        one(name(json!(["A", "B"]), json!([{ "id": "a" }]))).path,
        "Patient.name[0]._given"
    );
    assert_eq!(
        one(name(json!(["A"]), json!(["x"]))).path,
        "Patient.name[0]._given[0]"
    );
    // A null in a non-primitive array is never allowed.
    assert_eq!(
        one(json!({ "resourceType": "Patient", "name": [null] })).path,
        "Patient.name[0]"
    );
}

#[test]
fn resource_type() {
    assert_eq!(issues(json!({ "id": "x" })), vec![(String::new(), "required")]);
    assert_eq!(
        issues(json!({ "resourceType": "Patients" })),
        vec![(String::new(), "invalid")]
    );
    assert_eq!(
        issues(json!({ "resourceType": "DomainResource" })),
        vec![(String::new(), "invalid")]
    );
    assert_eq!(issues(json!([1])), vec![(String::new(), "structure")]);
    assert_eq!(
        issues(json!({ "resourceType": "Patient", "name": [{ "resourceType": "HumanName" }] })).len(),
        1
    );
}

#[test]
fn nested_resources_are_validated_where_they_sit() {
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            { "resource": { "resourceType": "Patient", "birthDate": "1974-12-25" }, "request": { "method": "POST", "url": "Patient" } },
            { "resource": { "resourceType": "Observation", "status": "final" }, "request": { "method": "POST", "url": "Observation" } },
            { "resource": { "resourceType": "Parameters", "parameter": [{ "name": "p", "resource": { "resourceType": "Patient", "gender": 1 } }] } }
        ]
    });
    let found = issues(bundle);
    assert_eq!(
        found,
        vec![
            ("Bundle.entry[1].resource.code".to_string(), "required"),
            (
                "Bundle.entry[2].resource.parameter[0].resource.gender".to_string(),
                "value"
            ),
        ]
    );
    let mut p = patient();
    p["contained"][0]["name"] = json!(["Clinic"]);
    assert_eq!(
        issues(p),
        vec![("Patient.contained[0].name".to_string(), "structure")]
    );
}

#[test]
fn narrative_div() {
    let with_div =
        |div: &str| json!({ "resourceType": "Patient", "text": { "status": "generated", "div": div } });
    assert_eq!(
        validate(&with_div(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</p></div>"
        )),
        vec![]
    );
    for bad in [
        "<div>no namespace</div>",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</div>",
        "<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>",
        "text",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\">a</div><div xmlns=\"http://www.w3.org/1999/xhtml\">b</div>",
        // Found by the fhir_json fuzz target: a byte order mark before the div passed, and the
        // XML written for the resource then did not read.
        "\u{feff}<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>",
    ] {
        let issue = one(with_div(bad));
        assert_eq!(
            (issue.path.as_str(), issue.code),
            ("Patient.text.div", "value"),
            "{bad}"
        );
    }
    let issue = one(
        json!({ "resourceType": "Patient", "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>", "_div": { "id": "d" } } }),
    );
    assert_eq!(issue.path, "Patient.text._div");
}

#[test]
fn depth_is_bounded() {
    // Questionnaire items nest without limit in the model; hostile input must not recurse
    // forever (serde_json itself stops at 128 levels, so build the value directly).
    let mut item = json!({ "linkId": "x", "type": "group" });
    for _ in 0..200 {
        item = json!({ "linkId": "x", "type": "group", "item": [item] });
    }
    let q = json!({ "resourceType": "Questionnaire", "status": "active", "item": [item] });
    let found = validate(&q);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code, "invalid");
}

#[test]
fn operation_outcome_lists_every_issue() {
    let found = validate(&json!({ "resourceType": "Observation" }));
    assert!(has_errors(&found));
    let outcome = operation_outcome(&found);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["severity"], "error");
    assert_eq!(outcome["issue"][0]["code"], "required");
    assert_eq!(outcome["issue"][0]["expression"][0], "Observation.status");
    assert_eq!(outcome["issue"].as_array().unwrap().len(), 2);
    assert_eq!(
        validate(&outcome),
        vec![],
        "the outcome is itself a valid resource"
    );
}
