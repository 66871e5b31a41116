//! A member's bills over HTTP against the real engine (issue 17, release notes 6.5): finalized
//! bills posted as FHIR Invoices with their PDF, listed and downloaded by the member and a
//! granted proxy; the pay action redirects to the gateway's signed link; the gateway (this test,
//! holding the shared key as a real gateway would) posts its payment notice, which marks the
//! bill paid once and is refused when forged or for the wrong amount.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::code;
use crate::credentials_support::{active_jane, as_member, session_of};
use crate::members_support::{World, start};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

/// The gateway's signature: HMAC-SHA256 under the key the engine made, hex.
fn sign(w: &World, text: &str) -> String {
    let hex = std::fs::read_to_string(w.engine.data_dir.join("payment-gateway.key")).unwrap();
    let key: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap())
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(text.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn notice(w: &World, body: Value) -> (u16, Value) {
    let response = w
        .http
        .post(format!("{}/api/bills/payment-notice", w.engine.http))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_member_lists_downloads_and_pays_a_bill_and_the_gateways_notice_marks_it_paid() {
    let w = start(
        "[credentials]\nmode = \"portal\"\ntwo_factor = false\n\n\
         [bills]\npayment_url = \"https://pay.example/checkout?bill={bill}&amount={amount}&currency={currency}&sig={signature}\"\n",
    )
    .await;
    let jane = active_jane(&w).await;
    let invoice = |number: &str, date: &str, status: &str, total: &str| {
        let mut invoice: Value = serde_json::from_str(&format!(
            r#"{{"resourceType": "Invoice", "status": "{status}", "date": "{date}",
                "identifier": [{{ "system": "urn:oid:2.16.840.1.113883.3.9999.20", "value": "{number}" }}],
                "subject": {{ "reference": "Patient/{jane}" }},
                "issuer": {{ "display": "Riverside Hospital Billing" }},
                "type": {{ "text": "Outpatient visit" }},
                "totalNet": {{ "value": 40.00, "currency": "USD" }},
                "totalGross": {{ "value": {total}, "currency": "USD" }}}}"#
        ))
        .unwrap();
        invoice["extension"] = json!([{
            "url": "urn:tributary:bill-document",
            "valueAttachment": { "contentType": "application/pdf", "data": base64::engine::general_purpose::STANDARD.encode(PDF) }
        }]);
        invoice
    };
    let mut ids = vec![];
    for bill in [
        invoice("INV-1001", "2025-09-01", "issued", "45.50"),
        invoice("INV-1002", "2025-10-01", "issued", "120.00"),
        invoice("INV-1003", "2025-10-02", "draft", "9.99"),
    ] {
        let (status, stored) = w.post("/fhir/Invoice", "fhir", bill).await;
        assert_eq!(status, 201, "{stored}");
        ids.push(stored["id"].as_str().unwrap().to_string());
    }
    let session = session_of(&w, "jane").await;
    let (status, listed) = as_member(&w, "GET", "/api/me/bills", &session).await;
    assert_eq!(status, 200, "{listed}");
    let numbers: Vec<&str> = listed["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["number"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["INV-1002", "INV-1001"],
        "finalized ones, newest first: {listed}"
    );
    assert_eq!(listed["bills"][1]["total"]["value"].as_f64(), Some(45.5));
    assert_eq!(listed["bills"][1]["paid"], false);

    let first = &ids[0];
    let document = w
        .http
        .get(format!("{}/api/me/bills/{first}/document", w.engine.http))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(document.headers()["content-type"], "application/pdf");
    assert_eq!(document.bytes().await.unwrap().as_ref(), PDF);

    // Pay: a redirect to the gateway's link, signed over the bill, amount and currency.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let paid = no_redirects
        .post(format!("{}/api/me/bills/{first}/pay", w.engine.http))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status().as_u16(), 303);
    let location = paid.headers()["location"].to_str().unwrap().to_string();
    let expected = format!(
        "https://pay.example/checkout?bill={first}&amount=45.50&currency=USD&sig={}",
        sign(&w, &format!("{first}|45.50|USD"))
    );
    assert_eq!(location, expected);

    // The gateway's notice: forged, wrong amount, then right; the same notice again is no change.
    let mut body = json!({ "bill": first, "amount": "45.50", "currency": "USD", "reference": "PAY-778899" });
    body["signature"] = json!(sign(&w, "nope"));
    let (status, refused) = notice(&w, body.clone()).await;
    assert_eq!((status, code(&refused)), (403, "bad-signature"), "{refused}");
    let mut short = body.clone();
    short["amount"] = json!("4.55");
    short["signature"] = json!(sign(&w, &format!("{first}|4.55|USD|PAY-778899")));
    let (status, refused) = notice(&w, short).await;
    assert_eq!(status, 422, "{refused}");
    body["signature"] = json!(sign(&w, &format!("{first}|45.50|USD|PAY-778899")));
    let (status, answer) = notice(&w, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["status"].as_str(), answer["changed"].as_bool()),
        (Some("balanced"), Some(true))
    );
    let (status, answer) = notice(&w, body).await;
    assert_eq!(
        (status, answer["changed"].as_bool()),
        (200, Some(false)),
        "{answer}"
    );
    let mut other = json!({ "bill": first, "amount": "45.50", "currency": "USD", "reference": "PAY-000001" });
    other["signature"] = json!(sign(&w, &format!("{first}|45.50|USD|PAY-000001")));
    let (status, refused) = notice(&w, other).await;
    assert_eq!((status, code(&refused)), (409, "already-paid"), "{refused}");

    let (_, listed) = as_member(&w, "GET", "/api/me/bills", &session).await;
    assert_eq!(listed["bills"][1]["paid"], true, "{listed}");
    let again = no_redirects
        .post(format!("{}/api/me/bills/{first}/pay", w.engine.http))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let (_, audit) = w.get(&format!("/api/audit?target=bill/{first}"), "config").await;
    assert_eq!(audit["records"][0]["action"], "bill.paid", "{audit}");

    // Sam, her proxy, sees and can pay her bills; she cannot see his.
    let sam = w.active_member(1, "SMITH", "sam", 2).await;
    w.relate(&jane, &sam, ("expires_at", "2099-01-01T00:00:00Z"))
        .await;
    let sam_session = session_of(&w, "sam").await;
    let (status, hers) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/bills"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200, "{hers}");
    assert_eq!(hers["bills"].as_array().unwrap().len(), 2);
    let second = &ids[1];
    let proxy_pay = no_redirects
        .post(format!(
            "{}/api/me/principals/{jane}/bills/{second}/pay",
            w.engine.http
        ))
        .bearer_auth(&sam_session)
        .send()
        .await
        .unwrap();
    assert_eq!(proxy_pay.status().as_u16(), 303);
    let (status, refused) = as_member(&w, "GET", &format!("/api/me/principals/{sam}/bills"), &session).await;
    assert_eq!((status, code(&refused)), (403, "no-proxy-access"), "{refused}");
    let (status, _) = as_member(
        &w,
        "GET",
        &format!("/api/me/bills/{second}/document"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 404, "Jane's bill is not Sam's own");
}
