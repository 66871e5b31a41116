//! Demographics from senders other than our UCR (issue 13, items 6-9), over the wire: an ADT
//! message in over MLLP, the Patient read back over FHIR as a user would check it. The field
//! rules themselves have golden cases in mappings/tests/*/upstream_*; this proves the store keeps
//! what the mapping writes: identifiers once each, one of deceasedDateTime / deceasedBoolean.

use crate::common::{EngineProcess, UCR_MPI, identifier_query, msa, temp_store};
use serde_json::{Value, json};

const SSN: &str = "http://hl7.org/fhir/sid/us-ssn";

/// The patient's identifiers with this system.
fn with_system<'a>(patient: &'a Value, system: &str) -> Vec<&'a Value> {
    patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["system"] == system)
        .collect()
}

#[tokio::test]
async fn another_senders_pid_fields_reach_the_patient_and_the_store_keeps_them_once() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);

    // PID-2 repeats PID-3's first identifier; the SSN comes both in PID-3 (CX-5 SS, v2.7 style)
    // and in PID-19.
    let a28 = "MSH|^~\\&|EHR|CLINIC|TRIBUTARY|PORTAL|20250501090000-0400||ADT^A28^ADT_A05|UPS1|P|2.5\r\
         EVN|A28|20250501090000-0400\r\
         PID|1|1000880001^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI|1000880001^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI~123456789^^^SSA^SS||OSEI^KWAME^^^DR^^L^^^^^^^MD||19650214|M|||1000&Hospital Lane^Ste. 123^Ann Arbor^MI^99999^USA^H||78788788^PRN^CP^5555^^^1111||ara^Arabic^ISO639|M^Married^HL70002|||123456789|S99912345^MA^20301231|||||||||20250430183000-0400|Y\r\
         PV1||N\r";
    let ack = engine.send(a28.as_bytes()).await;
    assert_eq!(msa(&ack), ("AA".into(), "UPS1".into()), "{ack}");

    let found = engine.search(&identifier_query(UCR_MPI, "1000880001")).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let patient = &found[0];
    assert_eq!(
        with_system(patient, UCR_MPI).len(),
        1,
        "PID-2 is not a second copy: {patient}"
    );
    let ssn = with_system(patient, SSN);
    assert_eq!(ssn.len(), 1, "the SSN is kept once: {patient}");
    assert_eq!(ssn[0]["value"], "123456789");
    assert_eq!(ssn[0]["type"]["coding"][0]["code"], "SS");
    let dl = with_system(patient, "urn:oid:2.16.840.1.113883.4.3.25");
    assert_eq!(dl.len(), 1, "the Massachusetts licence: {patient}");
    assert_eq!(dl[0]["value"], "S99912345");
    assert_eq!(dl[0]["type"]["coding"][0]["code"], "DL");
    assert_eq!(dl[0]["period"]["end"], "2030-12-31");

    assert_eq!(patient["name"][0]["suffix"], json!(["MD"]));
    assert_eq!(
        patient["address"][0]["line"],
        json!(["1000 Hospital Lane", "Ste. 123"])
    );
    assert_eq!(
        patient["telecom"],
        json!([{"system": "phone", "value": "1111", "use": "mobile"}]),
        "the mobile phone, not an e-mail address 5555"
    );
    assert_eq!(
        patient["communication"][0]["language"]["coding"],
        json!([
            {"system": "urn:ietf:bcp:47", "code": "ar"},
            {"system": "http://terminology.hl7.org/CodeSystem/iso639-2", "code": "ara"}
        ])
    );
    assert_eq!(
        patient["maritalStatus"]["coding"][0],
        json!({"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"})
    );
    assert_eq!(patient["deceasedDateTime"], "2025-04-30T18:30:00-04:00");
    assert!(patient.get("deceasedBoolean").is_none(), "{patient}");

    // The SSN finds the patient.
    let by_ssn = engine.search(&identifier_query(SSN, "123456789")).await;
    assert_eq!(by_ssn.len(), 1);
    assert_eq!(by_ssn[0]["id"], patient["id"]);

    // Another person whose record carries the same SSN (mistyped, or shared) is not matched by
    // it: the first patient's demographics stay as they were.
    let other = "MSH|^~\\&|EHR|CLINIC|TRIBUTARY|PORTAL|20250501100000-0400||ADT^A28^ADT_A05|UPS3|P|2.5\r\
         EVN|A28|20250501100000-0400\r\
         PID|1||1000880002^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||MENSAH^AMA^^^^^L||19800303|F|||||||||||123456789\r\
         PV1||N\r";
    let ack = engine.send(other.as_bytes()).await;
    assert_eq!(msa(&ack), ("AA".into(), "UPS3".into()), "{ack}");
    let second = engine.search(&identifier_query(UCR_MPI, "1000880002")).await;
    assert_eq!(second.len(), 1);
    assert_ne!(second[0]["id"], patient["id"], "a new patient");
    let (_, first) = engine
        .get(&format!("/fhir/Patient/{}", patient["id"].as_str().unwrap()))
        .await;
    assert_eq!(first["name"], patient["name"]);
    assert_eq!(with_system(&first, UCR_MPI).len(), 1, "{first}");

    // A later message says only that the patient died: the time goes, FHIR takes one of the two.
    let a08 = "MSH|^~\\&|EHR|CLINIC|TRIBUTARY|PORTAL|20250502090000-0400||ADT^A08^ADT_A01|UPS2|P|2.5\r\
         EVN|A08|20250502090000-0400\r\
         PID|1||1000880001^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||OSEI^KWAME^^^DR^^L||19650214|M||||||||||||||||||||||Y\r\
         PV1||N\r";
    let ack = engine.send(a08.as_bytes()).await;
    assert_eq!(msa(&ack), ("AA".into(), "UPS2".into()), "{ack}");
    let (status, after) = engine
        .get(&format!("/fhir/Patient/{}", patient["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(after["deceasedBoolean"], true, "{after}");
    assert!(after.get("deceasedDateTime").is_none(), "{after}");
    assert_eq!(
        after["maritalStatus"], patient["maritalStatus"],
        "an empty PID-16 keeps it"
    );
}
