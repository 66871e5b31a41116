//! Telling a member of a new record: a new result (a report), document or booked appointment
//! of an active member's patient queues a notification by their preference (email and/or text,
//! in their language), in the commit that stores the record, when the site's switch for that
//! kind of record is on (`notify_results`, `notify_documents`, `notify_appointments`) and the
//! site shows that part of the Records tab. A new message a provider sends the patient (a
//! Communication naming them as a recipient) is always told of. Only a record the store did not hold before counts:
//! a correction, a status change or the same message sent again tells no one. The notice says
//! that something is there, never what: results and documents stay behind the sign-in.

use std::sync::Arc;

use chrono::DateTime;
use serde_json::Value;

use crate::config::RecordSwitches;
use crate::core::{Context, Projection};
use crate::domain::accounts::Accounts;
use crate::domain::accounts::members::{self, Status};
use crate::domain::accounts::notify::{self, Channels};
use crate::domain::op::Op;
use crate::domain::records::site;
use crate::domain::resources::{self, Current};
use crate::store::{Changed, Reader, StoreError};

/// The projection that queues the notices; see the module doc.
pub struct RecordNotices {
    accounts: Arc<Accounts>,
    /// `[records.site]`, in force until a Configuration Manager saves other switches.
    configured: RecordSwitches,
}

impl RecordNotices {
    pub fn new(accounts: Arc<Accounts>, configured: RecordSwitches) -> RecordNotices {
        RecordNotices { accounts, configured }
    }
}

/// What a notice is about.
struct Notice {
    patient_id: String,
    workflow: &'static str,
    /// Where in the portal the member finds it.
    path: &'static str,
    /// An appointment's start, as the member reads it.
    date: Option<String>,
}

impl Projection for RecordNotices {
    fn follows(&self, kind: &str) -> bool {
        matches!(
            kind,
            "DiagnosticReport" | "DocumentReference" | "Appointment" | "Communication"
        )
    }

    fn project(&self, ctx: &mut Context<'_, '_>, changed: &[Changed]) -> Result<(), StoreError> {
        let mut notices = vec![];
        for change in changed {
            let was_there = matches!(
                resources::read(ctx.tx.below(), &change.kind, &change.id)?,
                Some(Current::Live(_))
            );
            if was_there {
                continue;
            }
            let Some(Current::Live(record)) = resources::read(&*ctx.tx, &change.kind, &change.id)? else {
                continue;
            };
            if let Some(notice) = notice_of(&change.kind, &record) {
                notices.push(notice);
            }
        }
        if notices.is_empty() {
            return Ok(());
        }
        let switches = site::switches(&*ctx.tx, &self.configured)?;
        for notice in notices {
            let wanted = match notice.workflow {
                "record-result" => switches.records && switches.results && switches.notify_results,
                "record-document" => switches.records && switches.documents && switches.notify_documents,
                "record-appointment" => switches.records && switches.notify_appointments,
                // A provider's message is always told of (its text never is).
                _ => true,
            };
            if wanted {
                self.send(ctx, &notice)?;
            }
        }
        Ok(())
    }
}

impl RecordNotices {
    fn send(&self, ctx: &mut Context<'_, '_>, notice: &Notice) -> Result<(), StoreError> {
        let Some(member) = active_member(&*ctx.tx, &notice.patient_id)? else {
            return Ok(());
        };
        let portal = self.accounts.config.portal_url.trim_end_matches('/');
        let link = format!("{portal}{}", notice.path);
        let greeting = member.greeting();
        let mut vars = vec![("name", greeting.as_str()), ("link", link.as_str())];
        if let Some(date) = &notice.date {
            vars.push(("date", date.as_str()));
        }
        let mut op = Op::from_ctx(ctx, "system:records");
        notify::send(
            &mut op,
            &self.accounts,
            Some(&notice.patient_id),
            &member.contact,
            Channels::Preferred,
            notice.workflow,
            &vars,
        );
        Ok(())
    }
}

fn active_member(reader: &dyn Reader, patient_id: &str) -> Result<Option<members::Member>, StoreError> {
    Ok(members::load(reader, patient_id)?.filter(|m| m.status == Status::Active))
}

/// The notice a new record calls for, if any: a report that is not cancelled, a current
/// document, a booked appointment; each of a patient.
fn notice_of(kind: &str, record: &Value) -> Option<Notice> {
    let patient_of = |reference: &Value| {
        reference["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
            .map(str::to_string)
    };
    let status = record["status"].as_str().unwrap_or("");
    match kind {
        "DiagnosticReport" if !matches!(status, "cancelled" | "entered-in-error") => Some(Notice {
            patient_id: patient_of(&record["subject"])?,
            workflow: "record-result",
            path: "/records/results",
            date: None,
        }),
        "DocumentReference" if status == "current" => Some(Notice {
            patient_id: patient_of(&record["subject"])?,
            workflow: "record-document",
            path: "/records/documents",
            date: None,
        }),
        "Appointment" if status == "booked" => Some(Notice {
            patient_id: record["participant"]
                .as_array()?
                .iter()
                .find_map(|p| patient_of(&p["actor"]))?,
            workflow: "record-appointment",
            path: "/appointments",
            date: record["start"].as_str().map(readable_start),
        }),
        // A message a provider sends the patient (not one the patient sent).
        "Communication"
            if !matches!(status, "entered-in-error" | "not-done")
                && !record["sender"]["reference"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("Patient/")) =>
        {
            Some(Notice {
                patient_id: record["recipient"].as_array()?.iter().find_map(patient_of)?,
                workflow: "message-received",
                path: "/messages",
                date: None,
            })
        }
        _ => None,
    }
}

/// `2025-04-01T09:30:00-04:00` as `2025-04-01 09:30` (the appointment's own clock).
fn readable_start(start: &str) -> String {
    DateTime::parse_from_rfc3339(start)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| start.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_notice_is_for_new_reports_current_documents_and_booked_appointments_of_a_patient() {
        let report = json!({ "status": "final", "subject": { "reference": "Patient/p1" } });
        assert_eq!(notice_of("DiagnosticReport", &report).unwrap().patient_id, "p1");
        let cancelled = json!({ "status": "cancelled", "subject": { "reference": "Patient/p1" } });
        assert!(notice_of("DiagnosticReport", &cancelled).is_none());
        let superseded = json!({ "status": "superseded", "subject": { "reference": "Patient/p1" } });
        assert!(notice_of("DocumentReference", &superseded).is_none());
        let appointment = json!({
            "status": "booked", "start": "2025-04-01T09:30:00-04:00",
            "participant": [{ "actor": { "reference": "Location/l1" } }, { "actor": { "reference": "Patient/p2" } }]
        });
        let notice = notice_of("Appointment", &appointment).unwrap();
        assert_eq!(
            (notice.patient_id.as_str(), notice.date.as_deref()),
            ("p2", Some("2025-04-01 09:30"))
        );
        let unnamed = json!({ "status": "final", "subject": { "display": "Someone" } });
        assert!(notice_of("DiagnosticReport", &unnamed).is_none());
    }
}
