//! A member's consents (release notes 6.2): consent documents an external system makes, kept as
//! FHIR Consents (posted to `/fhir`). Each question of a document is a nested provision
//! (`provision.provision[]`, its text in `code[0].text`), its answer the provision's `type`
//! (`permit` or `deny`). The member sees them and, where the site allows it, changes their
//! answers; the changed Consent goes back to the external system through the outbox in the same
//! commit, and the change is audited. What members and proxies may do are three switches
//! (patient view, patient edit, proxy edit), saved at run time over the config's.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ConsentSwitches;
use crate::core::Context;
use crate::domain::accounts::audit;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current};
use crate::domain::saved_settings;
use crate::store::{Reader, Store, StoreError};

const SWITCHES_KEY: &[u8] = b"consents";

/// The switches in force.
pub fn switches(reader: &dyn Reader, configured: &ConsentSwitches) -> Result<ConsentSwitches, StoreError> {
    saved_settings::load(reader, SWITCHES_KEY, configured)
}

/// Saves new switches, audited.
pub fn save_switches(
    op: &mut Op<'_, '_>,
    configured: &ConsentSwitches,
    new: ConsentSwitches,
    reason: &str,
) -> Result<ConsentSwitches, Refusal> {
    saved_settings::save(
        op,
        SWITCHES_KEY,
        configured,
        new,
        "settings.update",
        "settings/consents",
        reason,
    )
}

/// Refuses what the switches do not allow now: 403 with a code saying which.
pub fn require(allowed: bool, code: &'static str, what: &str) -> Result<(), Refusal> {
    if allowed {
        return Ok(());
    }
    Err(Refusal::new(
        Kind::Forbidden,
        code,
        format!("this site does not let {what} now"),
    ))
}

/// The patient's consents (not entered in error), newest first.
pub fn of_patient(store: &dyn Store, patient_id: &str) -> Result<Vec<Value>, SearchError> {
    let filters = vec![("patient".to_string(), patient_id.to_string())];
    let mut consents = search::search(store, "Consent", &filters, Sort::default())?;
    consents.retain(|c| c["status"] != "entered-in-error");
    consents.sort_by(|a, b| {
        b["dateTime"]
            .as_str()
            .unwrap_or("")
            .cmp(a["dateTime"].as_str().unwrap_or(""))
    });
    Ok(consents.iter().map(view).collect())
}

fn view(consent: &Value) -> Value {
    let questions: Vec<Value> = consent["provision"]["provision"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(item, provision)| {
            json!({
                "item": item,
                "question": provision["code"][0]["text"].as_str().or(provision["code"][0]["coding"][0]["display"].as_str()),
                "answer": provision["type"],
            })
        })
        .collect();
    json!({
        "id": consent["id"],
        "title": consent["category"][0]["text"].as_str().or(consent["category"][0]["coding"][0]["display"].as_str()),
        "status": consent["status"],
        "date": consent["dateTime"],
        "organization": consent["organization"][0]["display"],
        "questions": questions,
    })
}

/// One answer a member gives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The question's `item` (its place in the document).
    pub item: usize,
    /// `permit` or `deny`.
    pub answer: String,
}

/// Changes the patient's answers to their consent `id`, sends the changed Consent to
/// `push_to` through the outbox, and audits it. Returns the consent as the member sees it and
/// the deliveries queued.
pub fn answer(
    ctx: &mut Context<'_, '_>,
    actor: &str,
    patient_id: &str,
    id: &str,
    answers: &[Answer],
    push_to: &[String],
) -> Result<(Value, Vec<String>), Refusal> {
    let mut consent = match resources::read(ctx.tx, "Consent", id)? {
        Some(Current::Live(consent))
            if consent["patient"]["reference"].as_str() == Some(&format!("Patient/{patient_id}"))
                && consent["status"] != "entered-in-error" =>
        {
            consent
        }
        _ => return Err(Refusal::not_found(format!("no consent `{id}` of yours"))),
    };
    if answers.is_empty() {
        return Err(Refusal::invalid("no answers given"));
    }
    let count = consent["provision"]["provision"].as_array().map_or(0, Vec::len);
    let mut changes = vec![];
    for answer in answers {
        if answer.item >= count {
            return Err(Refusal::invalid(format!(
                "this consent has no question {}",
                answer.item
            )));
        }
        if !matches!(answer.answer.as_str(), "permit" | "deny") {
            return Err(Refusal::invalid(format!(
                "an answer is `permit` or `deny`, not `{}`",
                answer.answer
            )));
        }
        let provision = &mut consent["provision"]["provision"][answer.item];
        let before = provision["type"].clone();
        provision["type"] = json!(answer.answer);
        changes.push(json!({ "item": answer.item, "before": before, "after": answer.answer }));
    }
    consent["status"] = json!("active");
    consent["dateTime"] = json!(ctx.now);
    let queued_before = ctx.deliveries().len();
    ctx.notify_also(push_to);
    let stored =
        ctx.stage(|ctx| resources::put(ctx.tx, "Consent", id, consent, ctx.now).map_err(Refusal::from));
    ctx.notify_also(&[]);
    let stored = stored?;
    let pushed = ctx.deliveries()[queued_before..].to_vec();
    let mut op = Op::from_ctx(ctx, actor);
    audit::record(
        &mut op,
        "consent.update",
        &format!("consent/{id}"),
        None,
        json!({ "patient": patient_id, "answers": changes, "pushed": pushed }),
    );
    Ok((view(&stored), pushed))
}
