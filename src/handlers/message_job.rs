//! An inbound HL7 v2 message as a committer job: what every handler's message goes through
//! once it is read, routed and mapped.
//!
//! The job checks the message's control id ([`crate::core::idempotency`]: a resend gets its
//! first replies again, a different message reusing the id gets AR 205), applies its resource
//! changes as one stage (with every projection, fan-out included) or not at all, builds its
//! ACKs by its channel's policy, queues the application ACK, remembers the message, and writes
//! its journal entry. Its replies are released once the batch is durable; if the commit fails,
//! the sender gets AE and sends again.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::core::idempotency::{self, Seen, Verdict};
use crate::core::journal::{JournalEntry, Status};
use crate::core::{CommitterHandle, Context, Done, Job, Prepared, Release, commit_time};
use crate::deliveries::queue::{Outgoing, enqueue};
use crate::domain::resources::change::{self, ApplyError, ResourceChange};
use crate::hl7::{Acks, ErrLocation, ErrorCode, Message, Outcome, ParseError};
use crate::store::{Overlay, Reader};

use super::replies::AckPolicy;
use super::unreadable;

/// What the committer is given for one message.
pub(crate) enum JobInput {
    /// A readable message and the resource changes its mapping made of it (or why none).
    Hl7 {
        message: Message,
        changes: Result<Vec<ResourceChange>, Outcome>,
    },
    /// Bytes that could not be read as a message (answered AR).
    Unreadable { text: String, error: ParseError },
    /// A query, already answered (it changes nothing; it is journaled).
    Answered { message: Message, replies: Vec<String> },
    /// A message no channel's filter takes (answered AA unless `answer` is false: an inbound
    /// ACK is not answered), or an inbound acknowledgment; journaled as `filtered` with `reason`.
    Filtered {
        message: Message,
        reason: String,
        answer: bool,
    },
}

/// One inbound message on its way to the store.
pub(crate) struct MessageJob {
    pub channel: Arc<str>,
    pub peer: String,
    pub received_at: String,
    pub input: JobInput,
    /// Some(n) when no channel took the message (unreadable, unroutable, a sender no channel
    /// allows): if it is rejected, the journal keeps only its first n bytes.
    pub journal_head: Option<usize>,
    /// How the channel answers (original or enhanced mode, where application ACKs go).
    pub acks: Arc<AckPolicy>,
    /// Its resource changes worked out already, off the committer (see `prepare_changes`).
    pub prepared: Option<Prepared<Vec<String>>>,
}

impl MessageJob {
    /// Works out the message's resource changes against the store as it is, on the caller's
    /// task, so the committer only checks them (`CommitterHandle::prepare`); nothing when there
    /// are none, or the committer is idle.
    pub(crate) fn prepare_changes(&mut self, committer: &CommitterHandle, store: &dyn Reader) {
        if let JobInput::Hl7 {
            changes: Ok(changes), ..
        } = &self.input
        {
            let now = commit_time();
            self.prepared = committer.prepare(store, |tx| apply_changes(tx, changes, &now));
        }
    }

    /// The committer job; `reply` gets the replies once it is durable.
    pub(crate) fn into_job(mut self, reply: oneshot::Sender<Vec<String>>) -> Job {
        let origin = self.journal_head.is_none().then(|| self.channel.clone());
        Job::new(origin, move |ctx| {
            let prepared = self.prepared.take();
            let entry = process(ctx, &self, prepared);
            let replies = entry.replies.clone();
            let seq = ctx.seq;
            let (message_type, status) = (entry.message_type.clone(), entry.status);
            let release: Release = Box::new(move |durable| {
                let replies = match durable {
                    Ok(()) => {
                        crate::metrics::message(&self.channel, &message_type, status.name());
                        replies
                    }
                    Err(reason) => {
                        crate::metrics::message(&self.channel, &message_type, "unstored");
                        failure_replies(&self, reason, seq)
                    }
                };
                let _ = reply.send(replies);
            });
            Done {
                entry: Some(entry),
                release,
            }
        })
    }
}

/// Runs one message; returns its journal entry, replies included.
fn process(
    ctx: &mut Context<'_, '_>,
    job: &MessageJob,
    prepared: Option<Prepared<Vec<String>>>,
) -> JournalEntry {
    let seq = ctx.seq;
    let mut entry = JournalEntry {
        seq,
        channel: job.channel.to_string(),
        received_at: job.received_at.clone(),
        peer: job.peer.clone(),
        sender: String::new(),
        control_id: String::new(),
        message_type: String::new(),
        status: Status::Rejected,
        error: None,
        duplicate_of: None,
        patients: vec![],
        identifiers: vec![],
        changes: vec![],
        deliveries: vec![],
        replies: vec![],
        message: String::new(),
        message_bytes: None,
    };
    match &job.input {
        JobInput::Unreadable { text, error } => {
            entry.error = Some(error.text.clone());
            entry.replies = vec![unreadable::answer(text, error, seq, &job.acks)];
            entry.message = text.clone();
        }
        JobInput::Filtered {
            message,
            reason,
            answer,
        } => {
            describe(&mut entry, message);
            entry.status = Status::Filtered;
            entry.error = Some(reason.clone());
            if *answer {
                entry.replies = replies_for(message, &Outcome::Accepted, seq, &job.acks)
                    .reply
                    .into_iter()
                    .collect();
            }
        }
        JobInput::Answered { message, replies } => {
            describe(&mut entry, message);
            entry.status = Status::Applied;
            entry.replies = replies.clone();
        }
        JobInput::Hl7 { message, changes } => {
            describe(&mut entry, message);
            apply_message(ctx, job, message, changes, prepared, &mut entry);
        }
    }
    if let Some(head) = job.journal_head
        && matches!(entry.status, Status::Rejected | Status::Filtered)
        && entry.message.len() > head
    {
        entry.message_bytes = Some(entry.message.len());
        let mut end = head;
        while !entry.message.is_char_boundary(end) {
            end -= 1;
        }
        entry.message.truncate(end);
    }
    entry
}

/// A message's sender, control id, type and text in its journal entry.
fn describe(entry: &mut JournalEntry, message: &Message) {
    entry.sender = format!("{}|{}", message.sending_application(), message.sending_facility());
    entry.control_id = message.control_id();
    entry.message_type = format!("{}^{}", message.message_type(), message.trigger_event());
    entry.message = message.text().to_string();
    entry.identifiers = patient_identifiers(message);
}

/// The patient identifiers a message carries (PID-3 and MRG-1, each repetition's ID), which
/// the console's browser finds it by.
fn patient_identifiers(message: &Message) -> Vec<String> {
    let mut found: Vec<String> = vec![];
    let fields = message
        .segments_named("PID")
        .map(|pid| pid.field(3))
        .chain(message.segments_named("MRG").map(|mrg| mrg.field(1)));
    for field in fields {
        for repetition in field.repetitions() {
            let id = repetition.component(1).text();
            if !id.is_empty() && !found.contains(&id) {
                found.push(id);
            }
        }
    }
    found
}

/// A message that changes the store: once per control id, its changes staged, its ACKs.
fn apply_message(
    ctx: &mut Context<'_, '_>,
    job: &MessageJob,
    message: &Message,
    changes: &Result<Vec<ResourceChange>, Outcome>,
    prepared: Option<Prepared<Vec<String>>>,
    entry: &mut JournalEntry,
) {
    let seq = ctx.seq;
    let fingerprint = fingerprint(message.text());
    let verdict = if entry.control_id.is_empty() {
        Ok(Verdict::New)
    } else {
        idempotency::check(&*ctx.tx, &entry.sender, &entry.control_id, &fingerprint)
    };
    let verdict = match verdict {
        Ok(verdict) => verdict,
        Err(e) => {
            // Not knowing whether it was applied before, it is not applied now: AE, and the
            // sender sends it again (on a shared store a read can fail while the commit would not).
            tracing::error!(error = %e, seq, "idempotency lookup failed");
            let error = ParseError {
                code: ErrorCode::InternalError,
                location: None,
                text: format!("the message's control id could not be checked: {e}"),
            };
            entry.status = Status::Error;
            entry.error = Some(error.text.clone());
            entry.replies = replies_for(message, &Outcome::Error(error), seq, &job.acks)
                .reply
                .into_iter()
                .collect();
            return;
        }
    };
    match verdict {
        Verdict::Repeat(earlier) => {
            entry.status = Status::Duplicate;
            entry.duplicate_of = Some(earlier.seq);
            entry.patients = earlier.patients;
            entry.replies = earlier.replies;
            return;
        }
        Verdict::Conflict(earlier) => {
            let error = ParseError {
                code: ErrorCode::DuplicateKey,
                location: Some(at("MSH", 10)),
                text: format!(
                    "control id `{}` from {} was already used by a different message (journal {})",
                    entry.control_id, entry.sender, earlier.seq
                ),
            };
            entry.status = Status::Rejected;
            entry.error = Some(error.text.clone());
            entry.duplicate_of = Some(earlier.seq);
            entry.replies = replies_for(message, &Outcome::Rejected(error), seq, &job.acks)
                .reply
                .into_iter()
                .collect();
            return;
        }
        Verdict::New => {}
    }
    let outcome = match changes {
        Err(refused) => refused.clone(),
        Ok(changes) => {
            let prepared = prepared.and_then(|prepared| ctx.take_prepared(prepared));
            // A projection's store failure comes back as ApplyError::Store, as the change's would.
            let staged =
                ctx.stage(|ctx| ctx.apply_prepared(prepared, |ctx| apply_changes(ctx.tx, changes, ctx.now)));
            match staged {
                Ok(written) => {
                    entry.patients = written;
                    Outcome::Accepted
                }
                Err(e) => Outcome::Error(apply_error(&e)),
            }
        }
    };
    entry.status = match &outcome {
        Outcome::Accepted => Status::Applied,
        Outcome::Error(e) => {
            entry.error = Some(e.text.clone());
            Status::Error
        }
        Outcome::Rejected(e) => {
            entry.error = Some(e.text.clone());
            Status::Rejected
        }
    };
    let acks = replies_for(message, &outcome, seq, &job.acks);
    entry.replies = acks.reply.into_iter().collect();
    if let (Some(ack), Some(destination)) = (acks.application, &job.acks.application_ack_destination) {
        let outgoing = Outgoing {
            destination: destination.clone(),
            patient: None,
            resource: None,
            content_type: "x-application/hl7-v2+er7".into(),
            headers: vec![],
            payload: ack,
            sealed: None,
        };
        // A message's one application ACK: a number no fan-out reaches, so its delivery id
        // stays apart from theirs.
        let delivery = enqueue(ctx.tx, outgoing, seq, APPLICATION_ACK_DELIVERY, ctx.now);
        ctx.queued(delivery.id);
    }
    if entry.status == Status::Applied && !entry.control_id.is_empty() {
        let seen = Seen {
            seq,
            fingerprint,
            patients: entry.patients.clone(),
            replies: entry.replies.clone(),
        };
        idempotency::remember(ctx.tx, &entry.sender, &entry.control_id, &seen);
    }
}

/// A message's fingerprint: its segments after MSH, whatever their line ends (a resend may
/// carry a new MSH-7).
pub(crate) fn fingerprint(message_text: &str) -> String {
    idempotency::fingerprint(message_text.split(['\r', '\n']).filter(|s| !s.is_empty()).skip(1))
}

/// Applies a message's resource changes in order; returns the records they wrote.
fn apply_changes(
    tx: &mut Overlay<'_>,
    changes: &[ResourceChange],
    now: &str,
) -> Result<Vec<String>, ApplyError> {
    let mut written = vec![];
    for change in changes {
        written.extend(change::apply(tx, change, now)?);
    }
    Ok(written)
}

/// The delivery number of a message's application ACK (see `enqueue`).
const APPLICATION_ACK_DELIVERY: u32 = u32::MAX;

/// The ACKs for a message, each with a fresh control id.
fn replies_for(message: &Message, outcome: &Outcome, seq: u64, policy: &AckPolicy) -> Acks {
    let mut n = 0;
    policy.acks(message, outcome, &mut || {
        n += 1;
        ack_id(seq, n)
    })
}

/// A fresh ACK control id (MSH-10): the journal sequence, plus which reply it is.
pub(crate) fn ack_id(seq: u64, n: usize) -> String {
    if n <= 1 {
        format!("TRB{seq}")
    } else {
        format!("TRB{seq}-{n}")
    }
}

fn at(segment: &str, field: u32) -> ErrLocation {
    ErrLocation {
        segment: segment.into(),
        sequence: 1,
        field: Some(field),
        repetition: None,
        component: None,
        subcomponent: None,
    }
}

fn apply_error(e: &ApplyError) -> ParseError {
    let (code, segment, field) = match e {
        ApplyError::UnknownKey(_) => (ErrorCode::UnknownKey, "MRG", 1),
        ApplyError::UnknownPatient { .. } => (ErrorCode::UnknownKey, "PID", 3),
        ApplyError::DuplicateKey(..) => (ErrorCode::DuplicateKey, "PID", 3),
        ApplyError::NoKey(_) => (ErrorCode::RequiredFieldMissing, "MSH", 9),
        ApplyError::PatientsOnly { .. } | ApplyError::PatientNotDeleted => {
            (ErrorCode::InternalError, "MSH", 9)
        }
        ApplyError::Store(_) => (ErrorCode::InternalError, "MSH", 10),
    };
    ParseError {
        code,
        location: Some(at(segment, field)),
        text: e.to_string(),
    }
}

/// Replies when the batch could not be made durable: AE, so the sender sends again.
fn failure_replies(job: &MessageJob, reason: &str, seq: u64) -> Vec<String> {
    let error = ParseError {
        code: ErrorCode::InternalError,
        location: None,
        text: format!("the message could not be stored: {reason}"),
    };
    match &job.input {
        JobInput::Filtered { answer: false, .. } => vec![],
        JobInput::Hl7 { message, .. }
        | JobInput::Answered { message, .. }
        | JobInput::Filtered { message, .. } => replies_for(message, &Outcome::Error(error), seq, &job.acks)
            .reply
            .into_iter()
            .collect(),
        JobInput::Unreadable { text, .. } => vec![unreadable::answer(text, &error, seq, &job.acks)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_msh_and_line_ends_but_not_content() {
        let a = fingerprint("MSH|^~\\&|A|B|||20260101||ADT^A08|1|P|2.5\rPID|1||42\r");
        let b = fingerprint("MSH|^~\\&|A|B|||20270101||ADT^A08|1|P|2.5\r\nPID|1||42\r\n");
        let c = fingerprint("MSH|^~\\&|A|B|||20260101||ADT^A08|1|P|2.5\rPID|1||43\r");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
