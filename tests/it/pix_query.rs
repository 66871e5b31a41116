//! PIX query over MLLP (IHE ITI-9): QBP^Q23 in, RSP^K23 out, with the identifiers of the
//! domains asked for, NF when there are none, AE + ERR for an unknown identifier or domain.

use crate::common::{EngineProcess, fixture, msa, segment, temp_store};

const MPI: &str = "UCRMPI&2.16.840.1.113883.3.9999.1&ISO";
const HOSPB: &str = "HOSPB&2.16.840.1.113883.3.9999.3&ISO";

fn query(control_id: &str, identifier: &str, domains: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PIXCONSUMER|CLINIC|TRIBUTARY|PORTAL|20261125100000||QBP^Q23^QBP_Q21|{control_id}|P|2.5\r\
         QPD|IHE PIX Query|Q-{control_id}|{identifier}|{domains}\r\
         RCP|I\r"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_pix_query_is_answered_with_the_cross_referenced_identifiers() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a04_register.hl7")).await).0,
        "AA"
    );

    let rsp = engine
        .send(&query("Q1", &format!("1000551903^^^{MPI}"), ""))
        .await;
    let msh = segment(&rsp, "MSH").unwrap();
    assert_eq!(msh[8], "RSP^K23^RSP_K23", "{rsp}");
    assert_eq!(msa(&rsp), ("AA".to_string(), "Q1".to_string()));
    let qak = segment(&rsp, "QAK").unwrap();
    assert_eq!((qak[1].as_str(), qak[2].as_str()), ("Q-Q1", "OK"));
    assert_eq!(segment(&rsp, "QPD").unwrap()[2], "Q-Q1", "QPD echoed");
    let pid = segment(&rsp, "PID").unwrap();
    assert!(
        pid[3].starts_with("MRN00061022^^^HOSPB&2.16.840.1.113883.3.9999.3&ISO"),
        "{}",
        pid[3]
    );
    assert!(
        !pid[3].contains("1000551903"),
        "the known identifier is not repeated"
    );
    // ITI TF-2a 3.9.4.2.2.5: PID-5 present, no name of any domain, name type S.
    assert_eq!(pid[5], "~^^^^^^S", "{rsp}");

    // Asked for the MPI domain only: nothing else to say.
    let rsp = engine
        .send(&query(
            "Q2",
            &format!("MRN00061022^^^{HOSPB}"),
            &format!("^^^{MPI}"),
        ))
        .await;
    assert_eq!(segment(&rsp, "QAK").unwrap()[2], "OK");
    assert!(segment(&rsp, "PID").unwrap()[3].starts_with("1000551903^^^UCRMPI"));

    let rsp = engine.send(&query("Q3", &format!("nobody^^^{MPI}"), "")).await;
    assert_eq!(msa(&rsp).0, "AE");
    assert_eq!(segment(&rsp, "QAK").unwrap()[2], "AE");
    let err = segment(&rsp, "ERR").unwrap();
    assert_eq!(err[2], "QPD^1^3^1^1");
    assert!(err[3].starts_with("204^"));
    assert!(segment(&rsp, "PID").is_none());

    let rsp = engine
        .send(&query(
            "Q4",
            &format!("1000551903^^^{MPI}"),
            "^^^ELSEWHERE&9.9.9&ISO",
        ))
        .await;
    assert_eq!(msa(&rsp).0, "AE");
    assert_eq!(segment(&rsp, "ERR").unwrap()[2], "QPD^1^4^1^1");

    // Queries are journaled and change nothing.
    let (_, journal) = engine.get("/journal").await;
    let last = journal["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["message_type"], "QBP^Q23");
    assert_eq!(last["patients"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_pdq_query_is_refused_as_an_unsupported_event() {
    let (_dir, data) = temp_store();
    let engine = EngineProcess::start(&data);
    let pdq = "MSH|^~\\&|PDQCONSUMER|CLINIC|TRIBUTARY|PORTAL|20261125100000||QBP^Q22^QBP_Q21|P1|P|2.5\r\
               QPD|IHE PDQ Query|Q-P1|@PID.5.1.1^OKAFOR\rRCP|I\r";
    let ack = engine.send(pdq.as_bytes()).await;
    assert_eq!(msa(&ack), ("AR".to_string(), "P1".to_string()), "{ack}");
    let err = segment(&ack, "ERR").unwrap();
    assert!(err[3].starts_with("201^"), "{ack}");
    assert_eq!(err[2], "MSH^1^9^1^2");
}
