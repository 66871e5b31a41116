//! Our own sample feeds (fixtures/ucr, fixtures/trakcare) through the engine, checking the
//! Patients a person would look at: escapes decoded, Latin-1 names right, updates and merges.

use crate::common::{EngineProcess, fixture, msa, temp_store};

#[tokio::test]
async fn ucr_feed_creates_updates_and_escapes() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    for file in [
        "ucr/adt_a28_new_patient.hl7",
        "ucr/adt_a01_admit.hl7",
        "ucr/adt_a04_register.hl7",
        "ucr/adt_a08_update.hl7",
        "ucr/adt_a08_escapes.hl7",
        "ucr/adt_a04_utf8_bom.hl7",
        "ucr/adt_a08_crlf.hl7",
        "ucr/adt_a31_zuc_segment.hl7",
    ] {
        let ack = engine.send(&fixture(file)).await;
        assert_eq!(msa(&ack).0, "AA", "{file}: {ack}");
    }
    let jane = &engine.search("identifier=1000234567").await[0];
    assert_eq!(jane["name"][0]["family"], "DOE");
    assert_eq!(jane["address"][0]["city"], "Boston");
    assert_eq!(engine.search("email=jane.doe%40example.org").await.len(), 1);

    let ack = engine.send(&fixture("ucr/adt_a31_update_patient.hl7")).await;
    assert_eq!(msa(&ack).0, "AA");
    let jane = &engine.search("identifier=MRN00012345").await[0];
    assert_eq!(jane["address"][0]["city"], "Quincy");
    assert_eq!(jane["meta"]["versionId"], "2");
    assert_eq!(engine.search("email=jane.q.doe%40example.net").await.len(), 1);
    assert!(
        engine.search("email=jane.doe%40example.org").await.is_empty(),
        "the old email is no longer hers"
    );

    let maeve = &engine.search("identifier=1000733458").await[0];
    assert_eq!(
        maeve["address"][0]["line"],
        serde_json::json!(["12 Smith & Jones Lane", "Bldg 2^Rear"])
    );
    assert_eq!(maeve["name"][0]["family"], "O'CONNELL");
}

#[tokio::test]
async fn trakcare_feed_keeps_latin1_names_and_lf_messages() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    for file in [
        "trakcare/adt_a04_register.hl7",
        "trakcare/adt_a08_update.hl7",
        "trakcare/adt_a28_latin1_name.hl7",
        "trakcare/adt_a31_update_person.hl7",
    ] {
        let ack = engine.send(&fixture(file)).await;
        assert_eq!(msa(&ack).0, "AA", "{file}: {ack}");
    }
    let ack = engine.send(&fixture("trakcare/adt_a28_latin1_name.hl7")).await;
    assert!(ack.contains("|8859/1"), "the ACK echoes MSH-18: {ack}");
    let helene = &engine.search("identifier=TC0060344").await[0];
    assert_eq!(helene["name"][0]["given"][0], "Hélène");
    assert_eq!(helene["name"][0]["given"][1], "Amélie");
    let adaeze = &engine.search("phone=07700900456").await;
    assert_eq!(adaeze.len(), 1);
    assert_eq!(adaeze[0]["name"][0]["family"], "OKONKWO");
    // trakcare-adt-patient.map gives NHS numbers their national system.
    let found = engine
        .search("identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9990004560")
        .await;
    assert_eq!(found[0]["id"], adaeze[0]["id"]);
}

#[tokio::test]
async fn ucr_merge_and_identifier_change_fixtures() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let ack = engine.send(&fixture("ucr/adt_a40_merge.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let survivor = &engine.search("identifier=MRN00077001").await;
    assert_eq!(survivor.len(), 1, "the retired MRN finds the survivor");
    assert_eq!(survivor[0]["name"][0]["family"], "MARTINEZ");

    let ack = engine.send(&fixture("ucr/adt_a47_identifier_change.hl7")).await;
    assert_eq!(msa(&ack).0, "AE", "the old MRN is unknown here: {ack}");
    assert!(ack.contains("204"));
}
