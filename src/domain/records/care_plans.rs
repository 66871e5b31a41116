//! A member's care plans, as Care Community sends them (FHIR CarePlans posted to `/fhir`, with
//! the Questionnaires their activities name): active ones, completed ones, and the To Do list
//! of active plans with a questionnaire the member has still to fill in.
//!
//! An activity asks for a questionnaire by naming its canonical URL
//! (`activity.detail.instantiatesCanonical`). The member answers it with a
//! QuestionnaireResponse: stored (subject the patient, `basedOn` the plan), the activity marked
//! completed, and the plan completed once every questionnaire it asks for is answered. Both
//! go back to Care Community in the same commit, through the outbox (each destination in
//! `records.care_plan_destinations`, rendered as FHIR JSON unless it has a mapping).

use serde_json::{Value, json};

use crate::core::Context;
use crate::domain::accounts::audit;
use crate::domain::engagement::tasks::invalid_resource;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current, write};
use crate::store::{Reader, Store};

/// The patient's care plans: `todo` (active, a questionnaire still to answer), `active` and
/// `completed`, newest first. Draft, revoked and entered-in-error plans are not shown.
pub fn of_patient(store: &dyn Store, patient_id: &str) -> Result<Value, SearchError> {
    let filters = vec![("patient".to_string(), patient_id.to_string())];
    let mut plans = search::search(store, "CarePlan", &filters, Sort::default())?;
    plans.sort_by(|a, b| started(b).cmp(started(a)));
    let (mut todo, mut active, mut completed) = (vec![], vec![], vec![]);
    for plan in &plans {
        let shown = view(store, plan)?;
        match plan["status"].as_str() {
            Some("active" | "on-hold") => {
                if shown["todo"] == true {
                    todo.push(shown.clone());
                }
                active.push(shown);
            }
            Some("completed") => completed.push(shown),
            _ => {}
        }
    }
    Ok(json!({ "todo": todo, "active": active, "completed": completed }))
}

fn started(plan: &Value) -> &str {
    plan["period"]["start"]
        .as_str()
        .or(plan["created"].as_str())
        .unwrap_or("")
}

/// The questionnaire an activity asks for (its canonical URL), if it asks for one.
fn questionnaire_of(activity: &Value) -> Option<&str> {
    activity["detail"]["instantiatesCanonical"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .next()
}

fn answered(activity: &Value) -> bool {
    activity["detail"]["status"] == "completed"
}

/// One plan as the portal shows it: its activities, each questionnaire with its title and id
/// when the store holds it (for the portal to render it).
fn view(reader: &dyn Store, plan: &Value) -> Result<Value, SearchError> {
    let mut activities = vec![];
    let mut todo = false;
    for activity in plan["activity"].as_array().into_iter().flatten() {
        let detail = &activity["detail"];
        let questionnaire = match questionnaire_of(activity) {
            Some(url) => {
                let url_only = url.split('|').next().unwrap_or(url);
                let filters = vec![("url".to_string(), url_only.to_string())];
                let stored = search::search(reader, "Questionnaire", &filters, Sort::default())?
                    .into_iter()
                    .find(|q| q["url"] == url_only);
                todo |= !answered(activity);
                json!({
                    "url": url,
                    "id": stored.as_ref().map(|q| q["id"].clone()),
                    "title": stored.as_ref().and_then(|q| q["title"].as_str().map(str::to_string)),
                })
            }
            None => Value::Null,
        };
        activities.push(json!({
            "description": detail["description"].as_str().or(detail["code"]["text"].as_str()),
            "status": detail["status"],
            "scheduled": detail["scheduledString"].as_str().or(detail["scheduledPeriod"]["start"].as_str()),
            "questionnaire": questionnaire,
        }));
    }
    let active = matches!(plan["status"].as_str(), Some("active" | "on-hold"));
    Ok(json!({
        "id": plan["id"],
        "title": plan["title"],
        "description": plan["description"],
        "status": plan["status"],
        "start": plan["period"]["start"],
        "end": plan["period"]["end"],
        "author": plan["author"]["display"],
        "activities": activities,
        "todo": active && todo,
    }))
}

/// What answering a plan's questionnaire did.
#[derive(Debug)]
pub struct Answered {
    pub response: Value,
    pub plan: Value,
    pub pushed: Vec<String>,
}

/// Stores the patient's answer to a questionnaire of their active plan `plan_id`, marks the
/// activity (and the plan, once every questionnaire is answered) completed, and sends both to
/// `push_to` (Care Community) through the outbox.
pub fn answer(
    ctx: &mut Context<'_, '_>,
    actor: &str,
    patient_id: &str,
    plan_id: &str,
    mut response: Value,
    push_to: &[String],
) -> Result<Answered, Refusal> {
    let mut plan = plan_of(ctx.tx, patient_id, plan_id)?;
    if !matches!(plan["status"].as_str(), Some("active" | "on-hold")) {
        return Err(Refusal::conflict(
            "plan-closed",
            format!(
                "care plan `{plan_id}` is {}: it takes no answers",
                plan["status"].as_str().unwrap_or("not active")
            ),
        ));
    }
    if response["resourceType"] != "QuestionnaireResponse" {
        return Err(Refusal::invalid("the body must be a FHIR QuestionnaireResponse"));
    }
    let pending: Vec<(usize, String)> = plan["activity"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, activity)| !answered(activity))
        .filter_map(|(i, activity)| questionnaire_of(activity).map(|url| (i, url.to_string())))
        .collect();
    let base = |url: &str| url.split('|').next().unwrap_or(url).to_string();
    let chosen = match response["questionnaire"].as_str() {
        Some(named) => pending
            .iter()
            .find(|(_, url)| base(url) == base(named))
            .cloned()
            .ok_or_else(|| {
                Refusal::invalid(format!(
                    "questionnaire `{named}` is not one this plan still asks for"
                ))
            })?,
        None if pending.len() == 1 => pending[0].clone(),
        None if pending.is_empty() => {
            return Err(Refusal::conflict(
                "nothing-to-answer",
                format!("care plan `{plan_id}` asks for no questionnaire now"),
            ));
        }
        None => {
            return Err(Refusal::invalid(
                "the plan asks for several questionnaires: say which one in `questionnaire`",
            ));
        }
    };
    let (index, url) = chosen;
    response["questionnaire"] = json!(url);
    match response["status"].as_str() {
        None => response["status"] = json!("completed"),
        Some("completed" | "amended") => {}
        Some(other) => {
            return Err(Refusal::invalid(format!(
                "a completed questionnaire has status `completed` (not `{other}`)"
            )));
        }
    }
    response["subject"] = json!({ "reference": format!("Patient/{patient_id}") });
    response["basedOn"] = json!([{ "reference": format!("CarePlan/{plan_id}") }]);
    if response.get("authored").is_none() {
        response["authored"] = json!(ctx.now);
    }
    if let Some(object) = response.as_object_mut() {
        object.remove("id");
        object.remove("meta");
    }
    invalid_resource("the QuestionnaireResponse", &response)?;
    plan["activity"][index]["detail"]["status"] = json!("completed");
    let all_answered = plan["activity"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|activity| questionnaire_of(activity).is_none() || answered(activity));
    if all_answered {
        plan["status"] = json!("completed");
    }
    let response_id = write::new_id(ctx.seq, 0);
    let queued_before = ctx.deliveries().len();
    ctx.notify_also(push_to);
    let stored = ctx.stage(|ctx| {
        let response = resources::put(ctx.tx, "QuestionnaireResponse", &response_id, response, ctx.now)?;
        let plan = resources::put(ctx.tx, "CarePlan", plan_id, plan, ctx.now)?;
        Ok::<_, Refusal>((response, plan))
    });
    ctx.notify_also(&[]);
    let (response, plan) = stored?;
    let pushed = ctx.deliveries()[queued_before..].to_vec();
    let mut op = Op::from_ctx(ctx, actor);
    audit::record(
        &mut op,
        "care-plan.questionnaire-response",
        &format!("care-plan/{plan_id}"),
        None,
        json!({
            "response": format!("QuestionnaireResponse/{response_id}"),
            "plan_status": plan["status"],
            "pushed": pushed,
        }),
    );
    Ok(Answered {
        response,
        plan,
        pushed,
    })
}

/// The patient's plan `id`; 404 when there is none or it is someone else's.
fn plan_of(reader: &dyn Reader, patient_id: &str, id: &str) -> Result<Value, Refusal> {
    match resources::read(reader, "CarePlan", id)? {
        Some(Current::Live(plan))
            if plan["subject"]["reference"].as_str() == Some(&format!("Patient/{patient_id}")) =>
        {
            Ok(plan)
        }
        _ => Err(Refusal::new(
            Kind::NotFound,
            "not-found",
            format!("no care plan `{id}` of yours"),
        )),
    }
}
