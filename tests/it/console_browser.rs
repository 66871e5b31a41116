//! The console in a real browser (issue 18): Debian's Chromium, headless, driven through
//! chromedriver with `fantoccini`, against the real engine. An analyst signs in, watches the
//! counts move while messages are sent, finds a message by its patient's identifier and opens
//! it, reprocesses a result that failed on a broken mapping once the mapping is fixed, and
//! retries a dead letter to a PIX consumer that came back. Screenshots of the dashboard and a
//! message go to `target/console-screenshots/` (the README shows copies kept in `docs/`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::peers::{MllpPeer, free_addr};
use crate::common::{
    ANALYST_KEY, EngineProcess, MAPPINGS, add_channel, copy_tree, fixture, msa, pix_destination, temp_store,
    write_config,
};

const NGUYEN_A28: &str = "MSH|^~\\&|UCR|UCRHIE|TRIBUTARY|PORTAL|20250311081122-0400||ADT^A28^ADT_A05|BRWSA28|P|2.5\r\
     EVN|A28|20250311081122-0400\r\
     PID|1||1000551903^^^UCRMPI&2.16.840.1.113883.3.9999.1&ISO^PI||NGUYEN^LINH^THI^^^^L||19920905|F\r";

/// chromedriver on a loopback port of its own, stopped with the test.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser(profile: &Path) -> (Driver, Client) {
    let port = free_addr().rsplit(':').next().unwrap().to_string();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver runs (Debian: apt-get install chromium chromium-driver; .ci/run installs them)",
        );
    let driver = Driver(driver);
    let mut capabilities = serde_json::Map::new();
    // As root in a container Chromium needs --no-sandbox; the network flags keep it from
    // reaching for the internet at start.
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut last_error = String::new();
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no WebDriver session: {last_error}");
}

/// The text of the element `css` finds.
async fn text(client: &Client, css: &str) -> String {
    let found = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await;
    match found {
        Ok(element) => element.text().await.unwrap(),
        Err(e) => panic!("{css}: {e}\n{}", client.source().await.unwrap_or_default()),
    }
}

/// Reloads the page until the element `css` reads `wanted` (20 s at most).
async fn until_text(client: &Client, css: &str, wanted: &str) {
    for _ in 0..100 {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && element.text().await.unwrap_or_default().trim() == wanted
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.refresh().await.unwrap();
    }
    panic!(
        "{css} never read {wanted}: {}",
        client.source().await.unwrap_or_default()
    );
}

/// Clicks the element `css` finds and waits until the page that follows is at a URL holding
/// `arrived` (a form's answer, a link's target), so nothing of the old page is read after.
async fn click_and_load(client: &Client, css: &str, arrived: &str) {
    let before = client.current_url().await.unwrap();
    client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        let now = client.current_url().await.unwrap();
        if now != before && now.as_str().contains(arrived) {
            // The URL changes before the new page has loaded: wait for its heading too.
            client.wait().for_element(Locator::Css("main h1")).await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no page at {arrived} after clicking {css}: {}",
        client.current_url().await.unwrap()
    );
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn an_analyst_works_the_console_in_chromium() {
    let consumer_addr = free_addr();
    let (dir, data) = temp_store();
    // A mapping folder of its own, so the test can break the results mapping and fix it.
    let mappings = dir.path().join("mappings");
    copy_tree(Path::new(MAPPINGS), &mappings);
    let results_mapping = mappings.join("ucr-oru-result.map");
    let working = std::fs::read_to_string(&results_mapping).unwrap();
    let broken = working.replace(
        "let patient-value = required(PID-3.1)",
        "let patient-value = required(PID-3.99)",
    );
    assert_ne!(working, broken);
    std::fs::write(&results_mapping, &broken).unwrap();
    let config = write_config(dir.path(), "", &mappings);
    add_channel(&config, "ucr-oru", "ucr-oru-result", "ORU");
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    text_config.push_str(&pix_destination(&consumer_addr));
    text_config.push_str("[destinations.retry]\nmax_attempts = 1\n");
    std::fs::write(&config, text_config).unwrap();
    let engine = EngineProcess::start_config(&config, &data);
    let (_driver, client) = browser(&dir.path().join("chromium")).await;

    // Sign in.
    client.goto(&format!("{}/console", engine.http)).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("input[name=key]"))
        .await
        .unwrap()
        .send_keys(ANALYST_KEY)
        .await
        .unwrap();
    client
        .find(Locator::Css("form[action='/console/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("form[action='/console/logout']"))
        .await
        .unwrap();
    assert_eq!(text(&client, "h1").await, "Channels");

    // The counts move as messages arrive.
    assert_eq!(
        msa(&engine.send(&fixture("ucr/adt_a28_new_patient.hl7")).await).0,
        "AA"
    );
    let applied = "a[href='/console/messages?channel=ucr-adt&status=applied']";
    until_text(&client, applied, "1").await;
    assert_eq!(msa(&engine.send(NGUYEN_A28.as_bytes()).await).0, "AA");
    until_text(&client, applied, "2").await;
    std::fs::write(
        screenshots().join("dashboard.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // Found by the patient's identifier, and opened.
    client
        .goto(&format!("{}/console/messages", engine.http))
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("input[name=patient]"))
        .await
        .unwrap()
        .send_keys("1000234567")
        .await
        .unwrap();
    click_and_load(
        &client,
        "form[action='/console/messages'] button",
        "patient=1000234567",
    )
    .await;
    assert_eq!(
        text(&client, "table tr:nth-child(2) td:nth-child(4)").await,
        "ADT^A28"
    );
    assert!(
        client
            .find(Locator::Css("table tr:nth-child(3) td:nth-child(4)"))
            .await
            .is_err(),
        "only Jane's"
    );
    click_and_load(
        &client,
        "table tr:nth-child(2) td:first-child a",
        "/console/messages/",
    )
    .await;
    assert_eq!(text(&client, "span[title='PID-5.1']").await, "DOE");
    assert_eq!(text(&client, "span[title='MSA-1']").await, "AA");
    std::fs::write(
        screenshots().join("message.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // A result fails on the broken mapping; fixed, it is reprocessed and applied.
    let ack = engine.send(&fixture("ucr/oru_r01_lab_panel.hl7")).await;
    assert_eq!(msa(&ack).0, "AE", "{ack}");
    std::fs::write(&results_mapping, &working).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await; // the mapping folder is polled every second
    client
        .goto(&format!(
            "{}/console/messages?channel=ucr-oru&status=error",
            engine.http
        ))
        .await
        .unwrap();
    click_and_load(
        &client,
        "table tr:nth-child(2) td:first-child a",
        "/console/messages/",
    )
    .await;
    // One click from the error to the rule that raised it.
    let errored = client.current_url().await.unwrap();
    click_and_load(
        &client,
        "a[href^='/console/mappings/ucr-oru-result']",
        "/console/mappings/ucr-oru-result",
    )
    .await;
    assert!(
        text(&client, "tr.failed code")
            .await
            .contains("required(PID-3.1)"),
        "the failing rule's line, as the mapping reads now"
    );
    client.goto(errored.as_str()).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("results mapping fixed")
        .await
        .unwrap();
    click_and_load(&client, "form[action$='/reprocess'] button", "channel=ucr-oru").await;
    client
        .goto(&format!(
            "{}/console/messages?channel=ucr-oru&status=applied",
            engine.http
        ))
        .await
        .unwrap();
    assert_eq!(
        text(&client, "table tr:nth-child(2) td:nth-child(4)").await,
        "ORU^R01"
    );

    // The A31s found no consumer and died; it comes back, and a retry delivers one.
    let consumer = MllpPeer::start(&consumer_addr, "AA").await;
    client
        .goto(&format!("{}/console/dead-letters", engine.http))
        .await
        .unwrap();
    let retry = "form[action$='/retry'] button";
    for _ in 0..100 {
        if client.find(Locator::Css(retry)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.refresh().await.unwrap();
    }
    client
        .find(Locator::Css(retry))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let received = consumer.wait_for(1).await;
    assert!(received[0].contains("ADT^A31"), "{received:?}");

    // Every page is labelled and starts with a way past the navigation for the keyboard.
    for path in [
        "/console",
        "/console/messages",
        "/console/messages?channel=ucr-oru",
        "/console/dead-letters",
        "/console/mappings",
        "/console/mappings/ucr-oru-result",
        "/console/config",
    ] {
        client.goto(&format!("{}{path}", engine.http)).await.unwrap();
        assert_accessible(&client, path).await;
    }
    let first_message = format!("{}/console/messages", engine.http);
    client.goto(&first_message).await.unwrap();
    click_and_load(
        &client,
        "table tr:nth-child(2) td:first-child a",
        "/console/messages/",
    )
    .await;
    assert_accessible(&client, "a message").await;
    client.close().await.unwrap();
}

/// Every form control has a label (around it, pointing at it, or `aria-label`), every image a
/// text alternative, and the first Tab reaches the link that skips to the page's content.
async fn assert_accessible(client: &Client, page: &str) {
    let unlabelled = client
        .find_all(Locator::XPath(
            "//input[not(@type='hidden') and not(ancestor::label) and not(@aria-label) and not(@id = //label/@for)] \
             | //select[not(ancestor::label) and not(@aria-label)] | //textarea[not(ancestor::label) and not(@aria-label)] \
             | //*[@role='img'][not(@aria-label)] | //button[normalize-space(.)='']",
        ))
        .await
        .unwrap();
    assert!(
        unlabelled.is_empty(),
        "{page}: {} controls without a label",
        unlabelled.len()
    );
    assert!(
        client.find(Locator::Css("html[lang] main h1")).await.is_ok(),
        "{page}: a language and a main heading"
    );
    let tab = KeyActions::new("keyboard".into())
        .then(KeyAction::Down {
            value: Key::Tab.into(),
        })
        .then(KeyAction::Up {
            value: Key::Tab.into(),
        });
    client.perform_actions(tab).await.unwrap();
    let focused = client.active_element().await.unwrap();
    assert_eq!(
        focused.text().await.unwrap(),
        "Skip to content",
        "{page}: the first Tab goes to the skip link"
    );
}
