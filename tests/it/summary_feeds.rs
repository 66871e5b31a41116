//! The Summary's HL7 v2 feeds over the wire (issue 16): allergies (ADT^A60, IAM), immunizations
//! (VXU^V04, RXA) and problems (PPR^PC1-PC3, PRB) sent over MLLP to the real engine, on the
//! shipped mappings, and read back over FHIR as a user would check them: each record tied to
//! the patient, updates and deletions landing on the same record, a record for an unknown
//! patient refused with ERR 204, and events HL7 does not define refused before any channel.

use std::path::Path;

use serde_json::Value;

use crate::common::{EngineProcess, MAPPINGS, add_channel, msa, segment, temp_store, write_config};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ucr");

const A28: &str = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250311081122-0400||ADT^A28^ADT_A05|SUMMARYA28|P|2.5\r\
     EVN|A28|20250311081122-0400\r\
     PID|1||1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH^THI^^^^L||19920905|F\r";

fn read(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

/// The test channels, the allergy channel ahead of the demographics one (which takes every ADT
/// event), and the immunization and problem channels.
fn start(data: &Path) -> EngineProcess {
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    let text = std::fs::read_to_string(&config).unwrap();
    let allergies = "[[channels]]\nname = \"ucr-allergies\"\nmapping = \"ucr-adt-allergy\"\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:0\"\n\
         [channels.filter]\nmessage_types = [\"ADT^A60\"]\n\n";
    let first_channel = text.find("[[channels]]").unwrap();
    let text = format!("{}{allergies}{}", &text[..first_channel], &text[first_channel..]);
    std::fs::write(&config, text).unwrap();
    add_channel(&config, "ucr-vxu", "ucr-vxu-immunization", "VXU");
    add_channel(&config, "ucr-ppr", "ucr-ppr-problem", "PPR");
    EngineProcess::start_config(&config, data)
}

fn coded<'a>(records: &'a [Value], path: &str, code: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r[path]["coding"][0]["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {records:?}"))
}

#[tokio::test]
async fn allergies_immunizations_and_problems_come_in_over_mllp_and_read_back_over_fhir() {
    let (dir, data) = temp_store();
    let engine = start(&data);

    // Before the patient's ADT: AE with ERR 204 on PID-3, nothing stored.
    let ack = engine.send(&read("vxu_v04_immunizations.hl7")).await;
    assert_eq!(msa(&ack), ("AE".into(), "UCR251002000501".into()), "{ack}");
    assert!(segment(&ack, "ERR").unwrap()[3].starts_with("204"), "{ack}");
    assert!(engine.found("Immunization").await.is_empty());
    assert_eq!(msa(&engine.send(A28.as_bytes()).await).0, "AA");
    let patient = engine.search("identifier=1000551903").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Immunizations: given, historical, refused; then the first one deleted.
    let ack = engine.send(&read("vxu_v04_immunizations.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let doses = engine.found(&format!("Immunization?patient={patient}")).await;
    assert_eq!(doses.len(), 3, "{doses:?}");
    let flu = coded(&doses, "vaccineCode", "140");
    assert_eq!(flu["status"], "completed");
    assert_eq!(flu["lotNumber"], "LOT4471A");
    assert_eq!(flu["doseQuantity"]["value"], 0.5);
    assert_eq!(flu["patient"]["reference"], format!("Patient/{patient}"));
    assert_eq!(coded(&doses, "vaccineCode", "213")["primarySource"], false);
    let mmr = coded(&doses, "vaccineCode", "03");
    assert_eq!(mmr["status"], "not-done");
    assert_eq!(mmr["statusReason"]["text"], "Parental decision");
    assert_eq!(
        engine
            .found(&format!(
                "Immunization?patient={patient}&date=ge2025-09-01&status=completed"
            ))
            .await
            .len(),
        1
    );
    let ack = engine.send(&read("vxu_v04_immunization_deleted.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let doses = engine.found(&format!("Immunization?patient={patient}")).await;
    assert_eq!(doses.len(), 3, "deleted in place, not added: {doses:?}");
    let flu = coded(&doses, "vaccineCode", "140");
    assert_eq!(flu["status"], "entered-in-error");
    assert_eq!(flu["meta"]["versionId"], "2");

    // Problems: two added, then one deleted.
    let ack = engine.send(&read("ppr_pc1_problems.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let problems = engine.found(&format!("Condition?patient={patient}")).await;
    assert_eq!(problems.len(), 2, "{problems:?}");
    let diabetes = coded(&problems, "code", "44054006");
    assert_eq!(diabetes["clinicalStatus"]["coding"][0]["code"], "active");
    assert_eq!(diabetes["onsetDateTime"], "2019-06-01");
    let asthma = coded(&problems, "code", "J45.909");
    assert_eq!(asthma["clinicalStatus"]["coding"][0]["code"], "resolved");
    assert_eq!(
        engine
            .found(&format!("Condition?patient={patient}&clinical-status=active"))
            .await
            .len(),
        1
    );
    let ack = engine.send(&read("ppr_pc3_problem_deleted.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let problems = engine.found(&format!("Condition?patient={patient}")).await;
    let asthma = coded(&problems, "code", "J45.909");
    assert_eq!(
        asthma["verificationStatus"]["coding"][0]["code"],
        "entered-in-error"
    );
    assert!(asthma.get("clinicalStatus").is_none(), "{asthma}");

    // Allergies (ADT^A60) go to their own channel and leave the demographics alone.
    let ack = engine.send(&read("adt_a60_allergies.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let allergies = engine
        .found(&format!("AllergyIntolerance?patient={patient}"))
        .await;
    assert_eq!(allergies.len(), 2, "{allergies:?}");
    let penicillin = coded(&allergies, "code", "7980");
    assert_eq!(penicillin["criticality"], "high");
    assert_eq!(penicillin["category"][0], "medication");
    assert_eq!(penicillin["reaction"][0]["manifestation"][1]["text"], "Wheezing");
    assert_eq!(
        engine
            .found(&format!("AllergyIntolerance?patient={patient}&category=food"))
            .await
            .len(),
        1
    );
    let ack = engine.send(&read("adt_a60_allergy_deleted.hl7")).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let allergies = engine
        .found(&format!("AllergyIntolerance?patient={patient}"))
        .await;
    let peanut = coded(&allergies, "code", "256349002");
    assert_eq!(
        peanut["verificationStatus"]["coding"][0]["code"],
        "entered-in-error"
    );
    let (_, stored) = engine.get(&format!("/fhir/Patient/{patient}")).await;
    assert_eq!(
        stored["meta"]["versionId"], "1",
        "the A60 did not touch the Patient: {stored}"
    );

    // Events HL7 does not define are refused before any channel, naming the ones it does.
    let unknown = String::from_utf8(read("ppr_pc1_problems.hl7"))
        .unwrap()
        .replace("PPR^PC1^PPR_PC1|UCR251005000601", "PPR^PC9|UCR251005000609");
    let ack = engine.send(unknown.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AR", "{ack}");
    assert!(ack.contains("PC1 to PC3"), "{ack}");
    let unknown = String::from_utf8(read("vxu_v04_immunizations.hl7"))
        .unwrap()
        .replace("VXU^V04^VXU_V04|UCR251002000501", "VXU^V05|UCR251002000509");
    let ack = engine.send(unknown.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AR", "{ack}");
    assert!(ack.contains("(V04)"), "{ack}");
    drop(dir);
}
