//! Patient tasks: an external system (TrakCare, a CRM) asks a patient to read documents and
//! fill in questionnaires. A task is a FHIR Task (`for` and `owner` = the Patient, status
//! `requested`), each item a resource it names in `Task.input` (a DocumentReference holding the
//! attached file or the link; a Questionnaire, or the canonical URL of one held elsewhere), the
//! first item also its `focus`. All are stored through `resources::put`, so the FHIR endpoint
//! serves them (`/fhir/Task/{id}` ...). The member is told by their preference.
//!
//! A completed questionnaire is posted as a QuestionnaireResponse: stored (subject the
//! Patient, named in `Task.output`) and pushed to `engagement.questionnaire_destination`
//! (TrakCare) as FHIR JSON, in the same commit.
//!
//! Status changes follow [`allowed`]: requested -> ready | in-progress | cancelled; ready ->
//! in-progress | cancelled; in-progress -> on-hold | completed | cancelled; on-hold ->
//! in-progress | cancelled; completed and cancelled are final.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::deliveries::queue::{Outgoing, enqueue};
use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit;
use crate::domain::accounts::members;
use crate::domain::accounts::notify::{self, Channels, Sent};
use crate::domain::mpi::patients;
use crate::domain::op::Op;
use crate::domain::refusal::{Kind, Refusal};
use crate::domain::resources::{self, Current};
use crate::fhir::validate;

/// The notification workflow that tells a member of a new task.
pub const WORKFLOW: &str = "task-assigned";

pub const STATUSES: [&str; 6] = [
    "requested",
    "ready",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
];

/// Whether a task may go from `from` to `to`.
pub fn allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("requested", "ready" | "in-progress" | "cancelled")
            | ("ready", "in-progress" | "cancelled")
            | ("in-progress", "on-hold" | "completed" | "cancelled")
            | ("on-hold", "in-progress" | "cancelled")
    )
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    #[serde(default)]
    pub system: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub content_type: String,
    /// The file, base64.
    pub data: String,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// `document` or `questionnaire`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: Option<String>,
    /// A document: a link to it ...
    #[serde(default)]
    pub url: Option<String>,
    /// ... or the file itself.
    #[serde(default)]
    pub attachment: Option<Attachment>,
    /// A questionnaire: a FHIR Questionnaire to store ...
    #[serde(default)]
    pub questionnaire: Option<Value>,
    /// ... or the canonical URL of one held elsewhere.
    #[serde(default)]
    pub questionnaire_url: Option<String>,
}

/// `POST /api/tasks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    #[serde(default)]
    pub patient_id: Option<String>,
    /// Instead of `patient_id`: an identifier of the patient (the MRN).
    #[serde(default)]
    pub patient_identifier: Option<Identifier>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The task's id in the system that created it.
    #[serde(default)]
    pub identifier: Option<Identifier>,
    /// `YYYY-MM-DD`: when it should be done.
    #[serde(default)]
    pub due: Option<String>,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub struct Created {
    pub task: Value,
    pub items: Vec<Value>,
    pub notification: Option<Sent>,
}

pub(crate) fn invalid_resource(what: &str, resource: &Value) -> Result<(), Refusal> {
    let issues = validate::validate(resource);
    if validate::has_errors(&issues) {
        let list: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        return Err(Refusal::new(
            Kind::Invalid,
            "invalid-resource",
            format!("{what} is not a valid FHIR resource: {}", list.join("; ")),
        ));
    }
    Ok(())
}

fn is_base64(data: &str) -> bool {
    let data = data.trim();
    !data.is_empty()
        && data.len().is_multiple_of(4)
        && data
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && data.len() - data.trim_end_matches('=').len() <= 2
}

fn url_ok(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2048
        && !url.contains(char::is_whitespace)
}

fn identifier_json(identifier: &Identifier) -> Value {
    let mut out = json!({ "value": identifier.value.trim() });
    if let Some(system) = identifier.system.as_deref().filter(|s| !s.trim().is_empty()) {
        out["system"] = json!(system.trim());
    }
    out
}

/// Checks the shape of a new task before it goes to the committer.
pub fn check(task: &NewTask) -> Result<(), Refusal> {
    if task.patient_id.is_none() && task.patient_identifier.is_none() {
        return Err(Refusal::invalid("give patient_id or patient_identifier"));
    }
    if task.title.trim().is_empty() || task.title.chars().count() > 500 {
        return Err(Refusal::invalid("title is required (at most 500 characters)"));
    }
    if let Some(due) = &task.due
        && chrono::NaiveDate::parse_from_str(due, "%Y-%m-%d").is_err()
    {
        return Err(Refusal::invalid(format!("due `{due}` is not YYYY-MM-DD")));
    }
    if task.items.is_empty() || task.items.len() > 50 {
        return Err(Refusal::invalid("a task has 1 to 50 items"));
    }
    for (i, item) in task.items.iter().enumerate() {
        let at = format!("items[{i}]");
        match item.kind.as_str() {
            "document" => match (&item.url, &item.attachment) {
                (Some(url), None) if url_ok(url) => {}
                (Some(url), None) => {
                    return Err(Refusal::invalid(format!(
                        "{at}.url `{url}` is not an http(s) URL"
                    )));
                }
                (None, Some(file)) => {
                    if file.content_type.trim().is_empty() || !file.content_type.contains('/') {
                        return Err(Refusal::invalid(format!(
                            "{at}.attachment.content_type must be a media type like application/pdf"
                        )));
                    }
                    if !is_base64(&file.data) {
                        return Err(Refusal::invalid(format!("{at}.attachment.data is not base64")));
                    }
                }
                _ => {
                    return Err(Refusal::invalid(format!(
                        "{at}: a document has either a url or an attachment"
                    )));
                }
            },
            "questionnaire" => match (&item.questionnaire, &item.questionnaire_url) {
                (Some(q), None) => {
                    if q["resourceType"] != "Questionnaire" {
                        return Err(Refusal::invalid(format!(
                            "{at}.questionnaire must be a FHIR Questionnaire"
                        )));
                    }
                    let mut q = q.clone();
                    if q.get("status").is_none() {
                        q["status"] = json!("active");
                    }
                    invalid_resource(&format!("{at}.questionnaire"), &q)?;
                }
                (None, Some(url)) if url_ok(url) => {}
                _ => {
                    return Err(Refusal::invalid(format!(
                        "{at}: a questionnaire has either a questionnaire (FHIR) or a questionnaire_url"
                    )));
                }
            },
            other => {
                return Err(Refusal::invalid(format!(
                    "{at}.type `{other}` is not `document` or `questionnaire`"
                )));
            }
        }
    }
    Ok(())
}

fn new_id(op: &Op<'_, '_>, n: &mut u32) -> String {
    *n += 1;
    format!("{}-{}", op.seq, *n - 1)
}

/// Stores the task and its items, and tells the member.
pub fn create(
    op: &mut Op<'_, '_>,
    accounts: &Accounts,
    patient_id: &str,
    task: &NewTask,
) -> Result<Created, Refusal> {
    if patients::read(op.tx, patient_id)?.is_none() {
        return Err(Refusal::not_found(format!("no patient `{patient_id}`")));
    }
    let patient_ref = json!({ "reference": format!("Patient/{patient_id}") });
    let mut n = 0;
    let mut inputs = vec![];
    let mut items = vec![];
    for item in &task.items {
        let title = item.title.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let (input, stored) = match item.kind.as_str() {
            "document" => {
                let mut attachment = match (&item.url, &item.attachment) {
                    (Some(url), _) => json!({ "url": url }),
                    (None, Some(file)) => {
                        let mut a =
                            json!({ "contentType": file.content_type.trim(), "data": file.data.trim() });
                        if let Some(t) = file.title.as_deref().filter(|t| !t.trim().is_empty()) {
                            a["title"] = json!(t.trim());
                        }
                        a
                    }
                    (None, None) => unreachable!("checked"),
                };
                if let Some(title) = title
                    && attachment.get("title").is_none()
                {
                    attachment["title"] = json!(title);
                }
                let mut document = json!({
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "subject": patient_ref,
                    "date": op.now,
                    "content": [{ "attachment": attachment }],
                });
                if let Some(title) = title {
                    document["description"] = json!(title);
                }
                invalid_resource("the document", &document)?;
                let id = new_id(op, &mut n);
                let stored = resources::put(op.tx, "DocumentReference", &id, document, &op.now)?;
                let input = json!({
                    "type": { "text": "document" },
                    "valueReference": { "reference": format!("DocumentReference/{id}"), "display": title },
                });
                (input, Some(stored))
            }
            _ => match (&item.questionnaire, &item.questionnaire_url) {
                (Some(q), _) => {
                    let mut q = q.clone();
                    if q.get("status").is_none() {
                        q["status"] = json!("active");
                    }
                    if let Some(title) = title
                        && q.get("title").is_none()
                    {
                        q["title"] = json!(title);
                    }
                    let id = new_id(op, &mut n);
                    let stored = resources::put(op.tx, "Questionnaire", &id, q, &op.now)?;
                    let input = json!({
                        "type": { "text": "questionnaire" },
                        "valueReference": { "reference": format!("Questionnaire/{id}"), "display": title },
                    });
                    (input, Some(stored))
                }
                (None, Some(url)) => (
                    json!({ "type": { "text": "questionnaire" }, "valueCanonical": url }),
                    None,
                ),
                (None, None) => unreachable!("checked"),
            },
        };
        let mut input = input;
        if input["valueReference"]["display"].is_null()
            && let Some(object) = input["valueReference"].as_object_mut()
        {
            object.remove("display");
        }
        inputs.push(input);
        items.extend(stored);
    }
    let mut resource = json!({
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "description": task.title.trim(),
        "for": patient_ref,
        "owner": patient_ref,
        "authoredOn": op.now,
        "lastModified": op.now,
        "requester": { "display": op.actor },
        "input": inputs,
    });
    if let Some(first) = resource["input"][0]["valueReference"].as_object() {
        resource["focus"] = Value::Object(first.clone());
    }
    if let Some(identifier) = &task.identifier {
        resource["identifier"] = json!([identifier_json(identifier)]);
    }
    if let Some(description) = task.description.as_deref().filter(|d| !d.trim().is_empty()) {
        resource["note"] = json!([{ "text": description.trim() }]);
    }
    if let Some(due) = &task.due {
        resource["restriction"] = json!({ "period": { "end": due } });
    }
    invalid_resource("the task", &resource)?;
    let id = new_id(op, &mut n);
    let stored = resources::put(op.tx, "Task", &id, resource, &op.now)?;
    let target = format!("task/{id}");
    let notification = match members::load(op.tx, patient_id)? {
        Some(member) => {
            let greeting = member.greeting();
            let link = format!("{}/tasks/{id}", accounts.config.portal_url.trim_end_matches('/'));
            Some(notify::send(
                op,
                accounts,
                Some(patient_id),
                &member.contact,
                Channels::Preferred,
                WORKFLOW,
                &[
                    ("name", greeting.as_str()),
                    ("title", task.title.trim()),
                    ("link", link.as_str()),
                ],
            ))
        }
        None => None,
    };
    audit::record(
        op,
        "task.create",
        &target,
        None,
        json!({
            "patient": patient_id,
            "items": items.iter().map(|i| format!("{}/{}", i["resourceType"].as_str().unwrap_or(""), i["id"].as_str().unwrap_or(""))).collect::<Vec<_>>(),
            "notified": notification.as_ref().map(|s| s.deliveries.clone()),
        }),
    );
    Ok(Created {
        task: stored,
        items,
        notification,
    })
}

/// The task, or 404 (a deleted one too).
pub fn require(reader: &dyn crate::store::Reader, id: &str) -> Result<Value, Refusal> {
    match resources::read(reader, "Task", id)? {
        Some(Current::Live(task)) => Ok(task),
        _ => Err(Refusal::not_found(format!("no task `{id}`"))),
    }
}

/// Whether the signed-in member `me` may act on task `id` (move it, answer it): the task is
/// theirs, or its patient's proxy relationship with them grants access now.
pub fn member_may_act(
    reader: &dyn crate::store::Reader,
    id: &str,
    me: &str,
    now: &str,
) -> Result<(), Refusal> {
    let task = require(reader, id)?;
    let patient = task["for"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .unwrap_or_default();
    super::profile::may_act_for(reader, me, patient, now)
}

/// Changes a task's status, if the transition is allowed.
pub fn set_status(
    op: &mut Op<'_, '_>,
    id: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<Value, Refusal> {
    if !STATUSES.contains(&status) {
        return Err(Refusal::invalid(format!(
            "status `{status}` is not one of {}",
            STATUSES.join(", ")
        )));
    }
    let mut task = require(op.tx, id)?;
    let from = task["status"].as_str().unwrap_or("").to_string();
    if !allowed(&from, status) {
        return Err(Refusal::conflict(
            "bad-transition",
            format!("a task that is `{from}` cannot become `{status}`"),
        ));
    }
    task["status"] = json!(status);
    task["lastModified"] = json!(op.now);
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) => task["statusReason"] = json!({ "text": reason }),
        None => {
            task.as_object_mut().map(|t| t.remove("statusReason"));
        }
    }
    let stored = resources::put(op.tx, "Task", id, task, &op.now)?;
    audit::record(
        op,
        "task.status",
        &format!("task/{id}"),
        reason,
        json!({ "from": from, "to": status }),
    );
    Ok(stored)
}

/// What answering a questionnaire did.
#[derive(Debug, Clone)]
pub struct Answered {
    pub response: Value,
    pub task: Value,
    pub pushed: Option<String>,
}

/// Stores a completed questionnaire of task `id` and pushes it to `destination` (TrakCare).
pub fn answer(
    op: &mut Op<'_, '_>,
    id: &str,
    mut response: Value,
    destination: Option<&str>,
) -> Result<Answered, Refusal> {
    if response["resourceType"] != "QuestionnaireResponse" {
        return Err(Refusal::invalid("the body must be a FHIR QuestionnaireResponse"));
    }
    let mut task = require(op.tx, id)?;
    let status = task["status"].as_str().unwrap_or("").to_string();
    if matches!(status.as_str(), "completed" | "cancelled") {
        return Err(Refusal::conflict(
            "task-closed",
            format!("task `{id}` is {status}: it takes no more answers"),
        ));
    }
    let patient_ref = task["for"].clone();
    // The questionnaires this task asks for, by every name a response may give them.
    let mut asked: Vec<Vec<String>> = vec![];
    for input in task["input"].as_array().into_iter().flatten() {
        if input["type"]["text"] != "questionnaire" {
            continue;
        }
        let mut names = vec![];
        if let Some(canonical) = input["valueCanonical"].as_str() {
            names.push(canonical.to_string());
        }
        if let Some(reference) = input["valueReference"]["reference"].as_str() {
            names.push(reference.to_string());
            let qid = reference.trim_start_matches("Questionnaire/");
            if let Some(Current::Live(q)) = resources::read(op.tx, "Questionnaire", qid)?
                && let Some(url) = q["url"].as_str()
            {
                names.push(url.to_string());
            }
        }
        asked.push(names);
    }
    if asked.is_empty() {
        return Err(Refusal::conflict(
            "no-questionnaire",
            format!("task `{id}` has no questionnaire"),
        ));
    }
    match response["questionnaire"].as_str() {
        Some(named) => {
            let named = named.split('|').next().unwrap_or(named);
            if !asked.iter().any(|names| names.iter().any(|n| n == named)) {
                return Err(Refusal::invalid(format!(
                    "questionnaire `{named}` is not one this task asks for"
                )));
            }
        }
        None if asked.len() == 1 => response["questionnaire"] = json!(asked[0][0]),
        None => {
            return Err(Refusal::invalid(
                "the task has several questionnaires: say which one in `questionnaire`",
            ));
        }
    }
    match response["status"].as_str() {
        None => response["status"] = json!("completed"),
        Some("completed" | "amended") => {}
        Some(other) => {
            return Err(Refusal::invalid(format!(
                "a completed questionnaire has status `completed` (not `{other}`)"
            )));
        }
    }
    response["subject"] = patient_ref.clone();
    if response.get("authored").is_none() {
        response["authored"] = json!(op.now);
    }
    if let Some(object) = response.as_object_mut() {
        object.remove("id");
        object.remove("meta");
    }
    invalid_resource("the QuestionnaireResponse", &response)?;
    let response_id = format!("{}-0", op.seq);
    let stored = resources::put(op.tx, "QuestionnaireResponse", &response_id, response, &op.now)?;
    let mut outputs = task["output"].as_array().cloned().unwrap_or_default();
    outputs.push(json!({
        "type": { "text": "questionnaire-response" },
        "valueReference": { "reference": format!("QuestionnaireResponse/{response_id}") },
    }));
    task["output"] = json!(outputs);
    if matches!(status.as_str(), "requested" | "ready") {
        task["status"] = json!("in-progress");
    }
    task["lastModified"] = json!(op.now);
    let task = resources::put(op.tx, "Task", id, task, &op.now)?;
    let patient_id = patient_ref["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .map(str::to_string);
    let pushed = destination.map(|destination| {
        let n = op.next_delivery_number();
        let delivery = enqueue(
            op.tx,
            Outgoing {
                destination: destination.to_string(),
                patient: patient_id.clone(),
                resource: Some(format!("Task/{id}")),
                content_type: "application/fhir+json".into(),
                headers: vec![],
                payload: stored.to_string(),
                sealed: None,
            },
            op.seq,
            n,
            &op.now,
        );
        op.queued(delivery.id.clone());
        delivery.id
    });
    audit::record(
        op,
        "task.questionnaire-response",
        &format!("task/{id}"),
        None,
        json!({ "response": format!("QuestionnaireResponse/{response_id}"), "pushed": pushed }),
    );
    Ok(Answered {
        response: stored,
        task,
        pushed,
    })
}
