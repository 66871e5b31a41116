//! A member's appointments, as the portal's Appointments tab shows them: the next one, the
//! upcoming ones, the past ones and the cancelled ones (Appointments the scheduling feed keeps),
//! an upcoming one as an iCalendar event (RFC 5545) with its place, and the member's
//! cancellation of an upcoming one, sent back to the scheduler through the outbox.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike};
use serde_json::{Value, json};

use crate::core::Context;
use crate::domain::accounts::audit;
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::domain::resources::search::{self, SearchError, Sort};
use crate::domain::resources::{self, Current};
use crate::store::{Reader, Store, StoreError};

/// The patient's appointments at `now`, sorted by start: `next`, `upcoming` (after now, the
/// next among them), `past` and `cancelled` (cancelled or no-show, whenever they were).
///
/// With `prepayment` (the site's switch), an upcoming, booked appointment that carries a payment
/// gateway's link (the scheduling feed's extension) shows it as `pay_link`, with `amount_due`.
pub fn of_patient(
    store: &dyn Store,
    patient_id: &str,
    now: DateTime<Utc>,
    prepayment: bool,
) -> Result<Value, SearchError> {
    let filters = vec![("patient".to_string(), patient_id.to_string())];
    let mut appointments = search::search(store, "Appointment", &filters, Sort::default())?;
    appointments.sort_by_key(start_of);
    let (mut upcoming, mut past, mut cancelled) = (vec![], vec![], vec![]);
    for appointment in &appointments {
        let mut shown = view(appointment, now);
        if matches!(
            appointment["status"].as_str(),
            Some("cancelled" | "noshow" | "entered-in-error")
        ) {
            cancelled.push(shown);
        } else if start_of(appointment).is_some_and(|start| start > now) {
            if prepayment && let Some(link) = extension(appointment, "urn:tributary:payment-link", "valueUrl")
            {
                shown["pay_link"] = json!(link);
                shown["amount_due"] = appointment["extension"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["url"] == "urn:tributary:payment-amount")
                    .map(|e| e["valueMoney"].clone())
                    .unwrap_or(Value::Null);
            }
            upcoming.push(shown);
        } else {
            past.push(shown);
        }
    }
    past.reverse();
    Ok(json!({
        "next": upcoming.first().cloned(),
        "upcoming": upcoming,
        "past": past,
        "cancelled": cancelled,
    }))
}

/// Why an appointment cannot be downloaded.
#[derive(Debug, thiserror::Error)]
pub enum IcsError {
    #[error("no appointment `{0}` of yours")]
    NotFound(String),
    #[error("appointment `{0}` is not upcoming (past, cancelled or without a start)")]
    NotUpcoming(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The patient's appointment `id` if it is upcoming: it, and its start.
fn upcoming(
    reader: &dyn Reader,
    patient_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(Value, DateTime<Utc>), IcsError> {
    let Some(Current::Live(appointment)) = resources::read(reader, "Appointment", id)? else {
        return Err(IcsError::NotFound(id.to_string()));
    };
    let patient = format!("Patient/{patient_id}");
    let theirs =
        participants(&appointment, "Patient").any(|p| p["actor"]["reference"].as_str() == Some(&patient));
    if !theirs {
        return Err(IcsError::NotFound(id.to_string()));
    }
    let start = start_of(&appointment).filter(|start| *start > now);
    let booked = !matches!(
        appointment["status"].as_str(),
        Some("cancelled" | "noshow" | "entered-in-error")
    );
    match start.filter(|_| booked) {
        Some(start) => Ok((appointment, start)),
        None => Err(IcsError::NotUpcoming(id.to_string())),
    }
}

impl From<IcsError> for Refusal {
    fn from(e: IcsError) -> Refusal {
        match e {
            IcsError::NotFound(_) => Refusal::not_found(e.to_string()),
            IcsError::NotUpcoming(_) => Refusal::conflict("not-upcoming", e.to_string()),
            IcsError::Store(e) => e.into(),
        }
    }
}

/// The member's cancellation of their upcoming appointment `id`: it becomes `cancelled` with
/// the reason, and fan-out sends it to `push_to` (the scheduler that booked it, rendered by
/// that destination's mapping: an SIU^S15) besides every destination subscribed to
/// `Appointment-changed`. Audited with who acted (the member or their proxy). Returns the
/// appointment as it now is and the deliveries queued for it.
pub fn cancel(
    ctx: &mut Context<'_, '_>,
    actor: &str,
    patient_id: &str,
    id: &str,
    reason: &str,
    push_to: &[String],
) -> Result<(Value, Vec<String>), Refusal> {
    let now = DateTime::parse_from_rfc3339(ctx.now)
        .map(|t| t.to_utc())
        .unwrap_or_else(|_| Utc::now());
    let (mut appointment, _) = upcoming(ctx.tx, patient_id, id, now)?;
    appointment["status"] = json!("cancelled");
    appointment["cancelationReason"] = json!({ "text": reason });
    let queued_before = ctx.deliveries().len();
    ctx.notify_also(push_to);
    let stored = ctx
        .stage(|ctx| resources::put(ctx.tx, "Appointment", id, appointment, ctx.now).map_err(Refusal::from));
    ctx.notify_also(&[]);
    let stored = stored?;
    let pushed = ctx.deliveries()[queued_before..].to_vec();
    let mut op = Op::from_ctx(ctx, actor);
    audit::record(
        &mut op,
        "appointment.cancel",
        &format!("member/{patient_id}"),
        Some(reason),
        json!({ "appointment": format!("Appointment/{id}"), "pushed": pushed }),
    );
    Ok((stored, pushed))
}

/// The patient's upcoming appointment `id` as an iCalendar file.
pub fn ics_of(
    reader: &dyn Reader,
    patient_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<String, IcsError> {
    let (appointment, start) = upcoming(reader, patient_id, id, now)?;
    let shown = view(&appointment, now);
    let mut event = Event::new();
    event
        .uid(&format!("{id}@tributary"))
        .summary(shown["title"].as_str().unwrap_or("Appointment"))
        .starts(start);
    if let Some(end) = instant(&appointment["end"]) {
        event.ends(end);
    }
    if let Some(location) = shown["location"].as_str() {
        event.location(location);
    }
    let with: Vec<&str> = shown["with"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut description = vec![];
    if !with.is_empty() {
        description.push(format!("With {}", with.join(", ")));
    }
    if let Some(comment) = shown["comment"].as_str() {
        description.push(comment.to_string());
    }
    // The download carries the meeting link whatever the day: the calendar keeps it.
    if let Some(link) = telehealth_link(&appointment) {
        description.push(format!("Join the video visit: {link}"));
        event.add_property("URL", link);
    }
    if !description.is_empty() {
        event.description(&description.join("\n"));
    }
    let calendar = Calendar::new().push(event.done()).done();
    Ok(calendar.to_string())
}

/// One appointment as the portal shows it at `now`: a telehealth visit's link only on its day
/// (in the appointment's own time zone), as the portal's Start button.
fn view(appointment: &Value, now: DateTime<Utc>) -> Value {
    let title = appointment["appointmentType"]["text"]
        .as_str()
        .or(appointment["description"].as_str());
    let on_its_day = DateTime::parse_from_rfc3339(appointment["start"].as_str().unwrap_or(""))
        .is_ok_and(|start| start.date_naive() == now.with_timezone(start.offset()).date_naive());
    let booked = !matches!(
        appointment["status"].as_str(),
        Some("cancelled" | "noshow" | "entered-in-error")
    );
    let link = telehealth_link(appointment);
    json!({
        "telehealth": link.is_some(),
        "telehealth_link": link.filter(|_| on_its_day && booked),
        "id": appointment["id"],
        "status": appointment["status"],
        "start": appointment["start"],
        "end": appointment["end"],
        "title": title,
        "service": appointment["description"],
        "location": participants(appointment, "Location").find_map(|p| p["actor"]["display"].as_str()),
        "with": participants(appointment, "Practitioner").filter_map(|p| p["actor"]["display"].as_str()).collect::<Vec<_>>(),
        "comment": appointment["comment"],
        "cancellation_reason": appointment["cancelationReason"]["text"],
    })
}

/// The meeting link of a telehealth visit (the extension the scheduling mapping writes).
fn telehealth_link(appointment: &Value) -> Option<&str> {
    extension(appointment, "urn:tributary:telehealth-link", "valueUrl")
}

/// The text value `field` of the appointment's extension `url`, if it has one.
fn extension<'a>(appointment: &'a Value, url: &str, field: &str) -> Option<&'a str> {
    appointment["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == url)?[field]
        .as_str()
}

fn participants<'a>(appointment: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> {
    appointment["participant"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |p| p["actor"]["type"] == kind)
}

fn start_of(appointment: &Value) -> Option<DateTime<Utc>> {
    instant(&appointment["start"])
}

fn instant(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_telehealth_link_shows_on_the_appointments_own_day_only() {
        let mut appointment = json!({
            "id": "a1", "status": "booked",
            "start": "2099-04-01T09:30:00-04:00", "end": "2099-04-01T10:00:00-04:00",
            "extension": [{"url": "urn:tributary:telehealth-link", "valueUrl": "https://meet.example.org/v/1"}],
        });
        let link = |appointment: &Value, now: &str| view(appointment, at(now))["telehealth_link"].clone();
        // 16:00 and 22:00 on 1 April where the appointment is: its day.
        assert_eq!(
            link(&appointment, "2099-04-01T20:00:00Z"),
            "https://meet.example.org/v/1"
        );
        assert_eq!(
            link(&appointment, "2099-04-02T02:00:00Z"),
            "https://meet.example.org/v/1"
        );
        // 01:00 on 2 April, 19:00 on 31 March there: not its day.
        assert_eq!(link(&appointment, "2099-04-02T05:00:00Z"), Value::Null);
        assert_eq!(link(&appointment, "2099-03-31T23:00:00Z"), Value::Null);
        assert_eq!(view(&appointment, at("2099-03-31T23:00:00Z"))["telehealth"], true);
        appointment["status"] = json!("cancelled");
        assert_eq!(
            link(&appointment, "2099-04-01T20:00:00Z"),
            Value::Null,
            "not for a cancelled visit"
        );
    }
}
