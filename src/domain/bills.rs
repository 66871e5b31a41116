//! A member's bills (release notes 6.5): finalized bills arrive as FHIR Invoices (posted to
//! `/fhir` by the billing system), the bill's document (a PDF) carried as the extension
//! `urn:tributary:bill-document` (an Attachment). The member lists them and downloads each one.
//!
//! Paying happens at the site's payment gateway: a member's pay action is answered with the
//! gateway's link for that bill, signed (HMAC-SHA256 under the key the engine and the gateway
//! share) so the gateway can check the bill and the amount were not changed on the way. The
//! gateway's payment notice comes back signed the same way; it marks the bill paid (`balanced`),
//! once: the same notice again changes nothing, another payment of a paid bill is refused.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::accounts::audit;
use crate::domain::identity::secrets::{TokenKey, same};
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current};
use crate::store::{Reader, Store};

/// The extension that carries a bill's document.
pub const DOCUMENT_EXTENSION: &str = "urn:tributary:bill-document";
/// The extension a paid bill keeps the gateway's payment reference in.
const PAYMENT_EXTENSION: &str = "urn:tributary:payment-reference";

/// The patient's finalized bills (issued or paid), newest first.
pub fn of_patient(store: &dyn Store, patient_id: &str) -> Result<Vec<Value>, SearchError> {
    let filters = vec![("patient".to_string(), patient_id.to_string())];
    let mut bills = search::search(store, "Invoice", &filters, Sort::default())?;
    bills.retain(|b| matches!(b["status"].as_str(), Some("issued" | "balanced")));
    bills.sort_by(|a, b| {
        b["date"]
            .as_str()
            .unwrap_or("")
            .cmp(a["date"].as_str().unwrap_or(""))
    });
    Ok(bills.iter().map(view).collect())
}

fn view(bill: &Value) -> Value {
    let total = total_of(bill);
    json!({
        "id": bill["id"],
        "number": bill["identifier"][0]["value"],
        "date": bill["date"],
        "description": bill["type"]["text"].as_str().or(bill["type"]["coding"][0]["display"].as_str()),
        "issuer": bill["issuer"]["display"],
        "total": total.map(|(value, currency)| json!({ "value": value, "currency": currency })),
        "paid": bill["status"] == "balanced",
        "document": document_attachment(bill).is_some(),
    })
}

/// The bill's amount due and currency: its gross total, else its net total.
fn total_of(bill: &Value) -> Option<(Value, String)> {
    let total = if bill["totalGross"]["value"].is_number() {
        &bill["totalGross"]
    } else {
        &bill["totalNet"]
    };
    total["value"].is_number().then(|| {
        (
            total["value"].clone(),
            total["currency"].as_str().unwrap_or("USD").to_string(),
        )
    })
}

fn document_attachment(bill: &Value) -> Option<&Value> {
    bill["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == DOCUMENT_EXTENSION)
        .map(|e| &e["valueAttachment"])
        .filter(|a| a["data"].is_string())
}

/// The patient's finalized bill `id`, or 404.
fn bill_of(reader: &dyn Reader, patient_id: &str, id: &str) -> Result<Value, Refusal> {
    match resources::read(reader, "Invoice", id)? {
        Some(Current::Live(bill))
            if bill["subject"]["reference"].as_str() == Some(&format!("Patient/{patient_id}"))
                && matches!(bill["status"].as_str(), Some("issued" | "balanced")) =>
        {
            Ok(bill)
        }
        _ => Err(Refusal::not_found(format!("no bill `{id}` of yours"))),
    }
}

/// The bill's document: its content type and bytes.
pub fn document_of(reader: &dyn Reader, patient_id: &str, id: &str) -> Result<(String, Vec<u8>), Refusal> {
    let bill = bill_of(reader, patient_id, id)?;
    let attachment = document_attachment(&bill)
        .ok_or_else(|| Refusal::new(Kind::NotFound, "no-document", "this bill has no document"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(attachment["data"].as_str().unwrap_or(""))
        .map_err(|e| {
            Refusal::new(
                Kind::Store,
                "bad-document",
                format!("the stored document is not base64: {e}"),
            )
        })?;
    let content_type = attachment["contentType"]
        .as_str()
        .unwrap_or("application/octet-stream");
    Ok((content_type.to_string(), bytes))
}

/// What the engine and the gateway sign: the bill, the amount as written, the currency, and for
/// a payment notice the gateway's reference.
fn signed_text(parts: &[&str]) -> String {
    parts.join("|")
}

/// The gateway's link for paying the patient's unpaid bill `id`, made from `template`.
pub fn payment_link(
    reader: &dyn Reader,
    patient_id: &str,
    id: &str,
    template: &str,
    key: &TokenKey,
) -> Result<String, Refusal> {
    let bill = bill_of(reader, patient_id, id)?;
    if bill["status"] == "balanced" {
        return Err(Refusal::conflict("already-paid", format!("bill `{id}` is paid")));
    }
    let (amount, currency) = total_of(&bill)
        .ok_or_else(|| Refusal::conflict("no-amount", format!("bill `{id}` has no total to pay")))?;
    let amount = amount.to_string();
    let signature = key.hash(&signed_text(&[id, &amount, &currency]));
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    Ok(template
        .replace("{bill}", &encode(id))
        .replace("{amount}", &encode(&amount))
        .replace("{currency}", &encode(&currency))
        .replace("{signature}", &signature))
}

/// A payment notice from the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentNotice {
    pub bill: String,
    /// The amount paid, as the pay link gave it.
    pub amount: String,
    pub currency: String,
    /// The gateway's own id of the payment.
    pub reference: String,
    /// HMAC-SHA256 (hex) of `bill|amount|currency|reference` under the shared key.
    pub signature: String,
}

/// Marks the bill of a signed payment notice paid. Returns the bill and whether this notice
/// changed it (false for the same notice again).
pub fn record_payment(
    op: &mut Op<'_, '_>,
    key: &TokenKey,
    notice: &PaymentNotice,
) -> Result<(Value, bool), Refusal> {
    let expected = key.hash(&signed_text(&[
        &notice.bill,
        &notice.amount,
        &notice.currency,
        &notice.reference,
    ]));
    if !same(&expected, &notice.signature.to_ascii_lowercase()) {
        return Err(Refusal::new(
            Kind::Forbidden,
            "bad-signature",
            "the payment notice's signature does not match",
        ));
    }
    let mut bill = match resources::read(op.tx, "Invoice", &notice.bill)? {
        Some(Current::Live(bill)) => bill,
        _ => return Err(Refusal::not_found(format!("no bill `{}`", notice.bill))),
    };
    let (amount, currency) =
        total_of(&bill).ok_or_else(|| Refusal::conflict("no-amount", "the bill has no total"))?;
    let paid: Option<f64> = notice.amount.parse().ok();
    let due = amount.as_f64();
    let matches = paid.zip(due).is_some_and(|(p, d)| (p - d).abs() < 0.005)
        && currency.eq_ignore_ascii_case(&notice.currency);
    if !matches {
        return Err(Refusal::invalid(format!(
            "the notice pays {} {}, the bill is for {amount} {currency}",
            notice.amount, notice.currency
        )));
    }
    let recorded = bill["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["url"] == PAYMENT_EXTENSION)
        .and_then(|e| e["valueString"].as_str())
        .map(str::to_string);
    match (bill["status"].as_str(), recorded) {
        (Some("balanced"), Some(reference)) if reference == notice.reference => return Ok((bill, false)),
        (Some("balanced"), _) => {
            return Err(Refusal::conflict(
                "already-paid",
                format!("bill `{}` is paid", notice.bill),
            ));
        }
        (Some("issued"), _) => {}
        (status, _) => {
            return Err(Refusal::conflict(
                "not-payable",
                format!("bill `{}` is {}", notice.bill, status.unwrap_or("not issued")),
            ));
        }
    }
    bill["status"] = json!("balanced");
    let mut extensions = bill["extension"].as_array().cloned().unwrap_or_default();
    extensions.push(json!({ "url": PAYMENT_EXTENSION, "valueString": notice.reference }));
    bill["extension"] = Value::Array(extensions);
    let mut notes = bill["note"].as_array().cloned().unwrap_or_default();
    notes.push(json!({
        "time": op.now,
        "text": format!("Paid {} {} at the payment gateway (reference {})", notice.amount, notice.currency, notice.reference),
    }));
    bill["note"] = Value::Array(notes);
    let stored = resources::put(op.tx, "Invoice", &notice.bill, bill, &op.now)?;
    audit::record(
        op,
        "bill.paid",
        &format!("bill/{}", notice.bill),
        None,
        json!({ "amount": notice.amount, "currency": notice.currency, "reference": notice.reference }),
    );
    Ok((stored, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bill_shows_its_total_and_whether_it_is_paid_and_has_a_document() {
        let bill = json!({
            "id": "b1", "status": "issued", "date": "2025-10-01",
            "identifier": [{ "value": "INV-1001" }],
            "totalNet": { "value": 40, "currency": "USD" },
            "totalGross": { "value": 45.5, "currency": "USD" },
            "extension": [{ "url": DOCUMENT_EXTENSION, "valueAttachment": { "contentType": "application/pdf", "data": "JVBERi0=" } }]
        });
        let shown = view(&bill);
        assert_eq!(shown["total"], json!({ "value": 45.5, "currency": "USD" }));
        assert_eq!(shown["paid"], false);
        assert_eq!(shown["document"], true);
        assert_eq!(shown["number"], "INV-1001");
    }
}
