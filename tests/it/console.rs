//! The integration analyst's console over HTTP (issue 18, first part), against the real engine:
//! signing in with an analyst's key (and not with another role's), the channels dashboard, the
//! message browser and a message's labelled segments, a reprocess with its reason journaled,
//! and a dead letter retried to a PIX consumer that came back, then signing out.

use std::path::Path;

use crate::common::peers::{MllpPeer, free_addr};
use crate::common::{
    ANALYST_KEY, EngineProcess, FHIR_KEY, MAPPINGS, fixture, msa, pix_destination, temp_store, write_config,
};

struct Console {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Console {
    /// A browser-like client of the console at `base`, not signed in, that does not follow
    /// redirects (the tests read them).
    fn signed_out(base: &str) -> Console {
        Console {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            cookie: None,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn an_analyst_signs_in_browses_messages_reprocesses_one_and_retries_a_dead_letter() {
    let consumer_addr = free_addr();
    let (_dir, data) = temp_store();
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&pix_destination(&consumer_addr));
    text.push_str("[destinations.retry]\nmax_attempts = 1\n");
    std::fs::write(&config, text).unwrap();
    let engine = EngineProcess::start_config(&config, &data);
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a28_new_patient.hl7")).await).0,
        "AA"
    );
    let refused = engine.send(&fixture("ucr/adt_a99_unsupported_event.hl7")).await;
    assert_eq!(msa(&refused).0, "AR");

    let mut console = Console::signed_out(&engine.http);
    // Signed out: the sign-in page. Another role's key, or an unknown one, does not sign in.
    let (status, page) = console.get("/console").await;
    assert_eq!(status, 401);
    assert!(page.contains("action=\"/console/login\""), "{page}");
    assert_eq!(
        console
            .post("/console/login", &[("key", FHIR_KEY)])
            .await
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        console
            .post("/console/login", &[("key", "no-such-key")])
            .await
            .status()
            .as_u16(),
        401
    );
    let signed_in = console.post("/console/login", &[("key", ANALYST_KEY)]).await;
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(ANALYST_KEY), "the key is not the session");
    console.cookie = Some(cookie.split(';').next().unwrap().to_string());

    // The dashboard: the channel's messages by status.
    let (status, page) = console.get("/console").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("ucr-adt"), "{page}");
    assert!(page.contains("status=applied\">1</a>"), "{page}");
    assert!(page.contains("pix"), "{page}");
    assert!(
        page.contains("role=\"img\"") && page.contains("aria-label=\"ucr-adt: "),
        "the channel's msg/s chart, with its text alternative: {page}"
    );

    // The browser finds the refused message by status; its page labels every field.
    let (_, page) = console.get("/console/messages?status=rejected").await;
    assert!(page.contains("ADT^A99"), "{page}");
    assert!(!page.contains("ADT^A28"), "only the rejected one: {page}");
    let (_, page) = console.get("/console/messages?type=ADT%5EA28").await;
    let seq: u64 = page
        .split("href=\"/console/messages/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a link to the A28: {page}"));
    let (status, page) = console.get(&format!("/console/messages/{seq}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("title=\"PID-5.1\">DOE</span>"), "{page}");
    assert!(page.contains("title=\"MSA-1\">AA</span>"), "the ACK sent: {page}");
    // What it wrote: the Patient version it made, as stored.
    assert!(page.contains("<summary>Patient/"), "{page}");
    assert!(page.contains("version 1</summary>"), "{page}");
    assert!(page.contains("&quot;family&quot;: &quot;DOE&quot;"), "{page}");

    // Found by either of its patient identifiers, in its time range and not outside it.
    for identifier in ["1000234567", "MRN00012345"] {
        let (_, page) = console
            .get(&format!("/console/messages?patient={identifier}"))
            .await;
        assert!(
            page.contains(&format!("href=\"/console/messages/{seq}\"")),
            "{page}"
        );
    }
    let (_, page) = console.get("/console/messages?patient=1000234568").await;
    assert!(page.contains("No message matches."), "{page}");
    let (_, page) = console
        .get("/console/messages?patient=1000234567&since=2000-01-01T00:00&until=2999-01-01T00:00")
        .await;
    assert!(
        page.contains(&format!("href=\"/console/messages/{seq}\"")),
        "{page}"
    );
    for range in ["since=2999-01-01T00:00", "until=2000-01-01T00:00"] {
        let (_, page) = console
            .get(&format!("/console/messages?patient=1000234567&{range}"))
            .await;
        assert!(page.contains("No message matches."), "{range}: {page}");
    }
    assert_eq!(console.get("/console/messages/999999").await.0, 404);

    // Reprocessed with a reason: a new journal entry says who and why.
    let response = console
        .post(
            &format!("/console/messages/{seq}/reprocess"),
            &[("reason", "mapping fixed")],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let journal: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/journal?from={}", engine.http, seq + 1))
        .bearer_auth(ANALYST_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let peers: Vec<&str> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["peer"].as_str())
        .collect();
    assert!(
        peers
            .iter()
            .any(|p| p.contains(&format!("reprocess of journal {seq}")) && p.contains("mapping fixed")),
        "{peers:?}"
    );

    // A set: every message a search finds (here the refused A99), reprocessed with a reason.
    let (_, page) = console.get("/console/messages?status=rejected").await;
    assert!(page.contains("action=\"/console/messages/reprocess\""), "{page}");
    let response = console
        .post(
            "/console/messages/reprocess",
            &[
                ("status", "rejected"),
                ("type", "ADT^A99"),
                ("reason", "A99 support checked"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("1 messages found"), "{page}");
    assert!(
        page.contains("<td>AR</td><td>1</td>"),
        "still unsupported: {page}"
    );
    let (_, journal) = engine.get(&format!("/journal?from={}", seq + 1)).await;
    assert!(
        journal["entries"].as_array().unwrap().iter().any(|e| {
            let peer = e["peer"].as_str().unwrap_or("");
            peer.contains("reprocess of journal") && peer.contains("A99 support checked")
        }),
        "{journal}"
    );

    // The A31 found no consumer and died; the consumer comes back and a retry delivers it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let dead_id = loop {
        let (_, page) = console.get("/console/dead-letters").await;
        if let Some(id) = page
            .split("action=\"/console/dead-letters/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
        {
            break id.to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let consumer = MllpPeer::start(&consumer_addr, "AA").await;
    let response = console
        .post(&format!("/console/dead-letters/{dead_id}/retry"), &[])
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let received = consumer.wait_for(1).await;
    assert!(received[0].contains("ADT^A31"), "{received:?}");

    // Each channel's mapping; the golden tests, run on request; the config, secrets redacted.
    let (status, page) = console.get("/console/mappings").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(
            "<td>ucr-adt</td><td><a href=\"/console/mappings/ucr-adt-patient\">ucr-adt-patient</a></td>"
        ),
        "{page}"
    );
    let (status, page) = console.get("/console/mappings/ucr-adt-patient?line=3").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<tr id=\"L3\" class=\"failed\">"),
        "the line asked for is marked: {page}"
    );
    assert_eq!(console.get("/console/mappings/..%2Fconfig").await.0, 404);
    assert_eq!(console.get("/console/mappings/no-such-mapping").await.0, 404);
    let ran = console.post("/console/mappings/test", &[]).await;
    assert_eq!(ran.status().as_u16(), 200);
    let page = ran.text().await.unwrap();
    assert!(page.contains(" passed, 0 failed"), "{page}");
    assert!(page.contains("mdm_t02_message_with_letter.in.hl7"), "{page}");
    let (status, page) = console.get("/console/config").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("name = &quot;ucr-adt&quot;"), "{page}");
    assert!(page.contains("key_sha256 = &quot;[redacted]&quot;"), "{page}");
    assert!(
        !page.contains(&crate::common::sha256_hex(ANALYST_KEY)),
        "no key hash shown"
    );

    // Signed out, the session is gone.
    assert_eq!(console.post("/console/logout", &[]).await.status().as_u16(), 303);
    assert_eq!(console.get("/console").await.0, 401);
}

#[tokio::test]
async fn sighup_puts_new_api_clients_in_force_and_a_broken_config_changes_nothing() {
    let (_dir, data) = temp_store();
    let config = write_config(data.parent().unwrap(), "", Path::new(MAPPINGS));
    let engine = EngineProcess::start_config(&config, &data);
    let late_key = "key-late-analyst-0001";
    let journal = |key: &'static str| {
        let url = format!("{}/journal", engine.http);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(journal(late_key).await, 401);

    // A client added to the file is in force after SIGHUP, without a restart.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&crate::common::clients_toml(&[(
        "late",
        late_key,
        &["integration-analyst"],
        &[],
    )]));
    std::fs::write(&config, &text).unwrap();
    engine.signal("HUP");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while journal(late_key).await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "the new key never worked");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // A config that does not validate changes nothing, and the console says why.
    std::fs::write(&config, format!("{text}\n[[api_clients]]\nname = \"broken\"\nkey_sha256 = \"not-hex\"\nroles = [\"no-such-role\"]\n")).unwrap();
    engine.signal("HUP");
    let mut console = Console::signed_out(&engine.http);
    let signed_in = console.post("/console/login", &[("key", late_key)]).await;
    assert_eq!(signed_in.status().as_u16(), 303, "the reloaded key signs in");
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_string();
    console.cookie = Some(cookie.split(';').next().unwrap().to_string());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, page) = console.get("/console/config").await;
        if page.contains("failed") {
            assert!(
                page.contains("tributary.toml:") && page.contains(".key_sha256"),
                "names the file, line and key: {page}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed reload shown: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(journal(late_key).await, 200, "the clients in force stay");
    assert_eq!(journal(ANALYST_KEY).await, 200);
}
