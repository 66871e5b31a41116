//! Reloading the config without a restart (issue 18), against the real engine: SIGHUP puts a new
//! channel on a new port, a destination's new address and a new scheduled job in force; the
//! console's button takes the channel and the job away again; a config that does not validate
//! changes nothing and the console says why. Connections to the listener that stays are served
//! throughout.

use std::path::Path;
use std::time::Duration;

use tributary_adapter_mllp::Client;

use crate::common::peers::{MllpPeer, free_addr};
use crate::common::{
    ANALYST_KEY, EngineProcess, MAPPINGS, METRICS_KEY, fixture, msa, pix_destination, temp_store,
    write_config,
};

const NGUYEN_A28: &str = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250311081122-0400||ADT^A28^ADT_A05|RELOADA28|P|2.5\r\
     EVN|A28|20250311081122-0400\r\
     PID|1||1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH^THI^^^^L||19920905|F\r";

fn clinic_channel(address: &str) -> String {
    format!(
        "\n[[channels]]\nname = \"clinic-adt\"\nmapping = \"ucr-adt-patient\"\n\
         [channels.source]\nkind = \"mllp\"\nbind = \"{address}\"\n\
         [channels.filter]\nmessage_types = [\"ADT\"]\n"
    )
}

const SWEEP: &str = "\n[[schedule]]\njob = \"retry-sweep\"\ncron = \"* * * * * *\"\n";

/// Whether something accepts connections at `address` now.
async fn listening(address: &str) -> bool {
    tokio::net::TcpStream::connect(address).await.is_ok()
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sweeps(http: &str) -> f64 {
    let text = reqwest::Client::new()
        .get(format!("{http}/metrics"))
        .bearer_auth(METRICS_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("tributary_job_runs_total{job=\"retry-sweep\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_reload_puts_channels_destinations_and_jobs_in_force_and_a_bad_config_changes_nothing() {
    let (first_consumer, second_consumer) = (free_addr(), free_addr());
    let first = MllpPeer::start(&first_consumer, "AA").await;
    let second = MllpPeer::start(&second_consumer, "AA").await;
    let (_dir, data) = temp_store();
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{base}{}", pix_destination(&first_consumer))).unwrap();
    let engine = EngineProcess::start_config(&config, &data);
    let mut kept = Client::connect(&engine.mllp, Duration::from_secs(5))
        .await
        .unwrap();
    let ack = kept.send(&fixture("ucr/adt_a28_new_patient.hl7")).await.unwrap();
    assert_eq!(msa(&String::from_utf8_lossy(&ack)).0, "AA");
    first.wait_for(1).await;

    // SIGHUP: a new channel on a port of its own, PIX at another address, a job every second.
    let clinic = free_addr();
    assert!(!listening(&clinic).await);
    std::fs::write(
        &config,
        format!(
            "{base}{}{}{SWEEP}",
            clinic_channel(&clinic),
            pix_destination(&second_consumer)
        ),
    )
    .unwrap();
    engine.signal("HUP");
    until("the new channel listens", async || listening(&clinic).await).await;
    let mut client = Client::connect(&clinic, Duration::from_secs(5)).await.unwrap();
    let ack = client.send(NGUYEN_A28.as_bytes()).await.unwrap();
    assert_eq!(msa(&String::from_utf8_lossy(&ack)).0, "AA");
    let (_, journal) = engine.get("/journal").await;
    let newest = journal["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(newest["channel"], "clinic-adt", "{newest}");
    let received = second.wait_for(1).await;
    assert!(received[0].contains("NGUYEN"), "{received:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(first.received().len(), 1, "the old address hears nothing more");
    until("the new job runs", async || sweeps(&engine.http).await >= 2.0).await;
    // The connection to the listener that stayed was served across the reload.
    let ack = kept.send(&fixture("ucr/adt_a08_update.hl7")).await.unwrap();
    assert_eq!(msa(&String::from_utf8_lossy(&ack)).0, "AA");

    // The console's button: the channel and the job are gone again.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = http
        .post(format!("{}/console/login", engine.http))
        .form(&[("key", ANALYST_KEY)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let reload = async || {
        let response = http
            .post(format!("{}/console/config/reload", engine.http))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        http.get(format!("{}/console/config", engine.http))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    std::fs::write(&config, format!("{base}{}", pix_destination(&second_consumer))).unwrap();
    let page = reload().await;
    assert!(
        page.contains("3 channels on 1 listeners, 1 destinations, 0 scheduled jobs in force"),
        "{page}"
    );
    assert!(!listening(&clinic).await, "the removed channel's port is closed");
    let runs = sweeps(&engine.http).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sweeps(&engine.http).await, runs, "the removed job runs no more");

    // A config that does not validate changes nothing, and the page says why.
    std::fs::write(
        &config,
        format!(
            "{base}{}{}\n[[destinations]]\nname = \"pigeon\"\nkind = \"carrier-pigeon\"\n",
            clinic_channel(&clinic),
            pix_destination(&second_consumer)
        ),
    )
    .unwrap();
    let page = reload().await;
    assert!(
        page.contains("failed") && page.contains("tributary.toml:") && page.contains("destinations"),
        "{page}"
    );
    assert!(!listening(&clinic).await, "nothing of the bad config is in force");
    // Nor of one whose new channel names a mapping the folder does not have.
    std::fs::write(
        &config,
        format!(
            "{base}{}{}",
            clinic_channel(&clinic).replace("ucr-adt-patient", "no-such-mapping"),
            pix_destination(&second_consumer)
        ),
    )
    .unwrap();
    let page = reload().await;
    assert!(
        page.contains("failed") && page.contains("no-such-mapping"),
        "{page}"
    );
    assert!(!listening(&clinic).await, "nothing of the bad config is in force");
    let ack = engine.send(&fixture("ucr/adt_a28_new_patient.hl7")).await;
    assert_eq!(msa(&ack).0, "AA");
}
