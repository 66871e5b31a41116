//! The group committer: the one writer of the store.
//!
//! Connections parse and map in parallel, then hand their job here; API commands (FHIR writes,
//! enrollments, ...) come the same way. One thread takes everything waiting, applies it in
//! arrival order (so changes to one patient apply in the order they came), journals each, queues
//! the deliveries each causes, commits them as one atomic write set, makes it durable with one
//! sync, and only then releases every reply: ACK after commit, one fsync for many messages.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::domain::patients::{self, ApplyError, PatientChange};
use crate::engine::dedupe::{self, Seen};
use crate::engine::journal::{JournalEntry, Status};
use crate::engine::replies::AckPolicy;
use crate::hl7::{Acks, ErrLocation, ErrorCode, Message, Outcome, ParseError, reject_unparsed};
use crate::outbox::queue::{Outgoing, enqueue};
use crate::outbox::{Fanout, PatientWrite};
use crate::store::{Keyspace, Overlay, Reader, Store};

/// One inbound message on its way to the store.
pub struct Job {
    pub channel: Arc<str>,
    pub peer: String,
    pub received_at: String,
    pub input: JobInput,
    /// Some(n) when no channel took the message (unreadable, unroutable, a sender no channel
    /// allows): if it is rejected, the journal keeps only its first n bytes.
    pub journal_head: Option<usize>,
    /// How the channel answers (original or enhanced mode, where application ACKs go).
    pub acks: Arc<AckPolicy>,
    /// Where the replies go once the job is durable.
    pub reply: oneshot::Sender<Vec<String>>,
}

pub enum JobInput {
    /// A readable message and what its mapping made of it.
    Hl7 {
        message: Message,
        change: Result<PatientChange, Outcome>,
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

/// The way in to the committer; cheap to clone.
#[derive(Clone)]
pub struct CommitterHandle {
    jobs: mpsc::Sender<Work>,
}

/// What the committer is given: an inbound message, or a command from the API.
// Messages are the hot path: boxing them to shrink the rare command would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Work {
    Message(Job),
    Command(Command),
}

/// Work for the store that is not an inbound message: a FHIR write, an enrollment, a profile
/// update. It runs on the committer thread, in arrival order with the messages, so it sees and
/// is seen by them as one sequence of changes; its writes commit with its journal entry and the
/// deliveries it queues.
struct Command {
    kind: String,
    peer: String,
    run: Box<dyn FnOnce(&mut CommandContext<'_, '_>) -> CommandOutcome + Send>,
}

/// What a command may use while it runs.
pub struct CommandContext<'a, 'o> {
    /// Its own writes, kept only if it is applied.
    pub tx: &'a mut Overlay<'o>,
    /// The commit time (RFC 3339, UTC, milliseconds).
    pub now: &'a str,
    /// Its journal sequence number (the cause of the deliveries it queues).
    pub seq: u64,
    fanout: &'a Fanout,
    deliveries: Vec<String>,
    next_delivery: u32,
}

impl CommandContext<'_, '_> {
    /// Queues what the destinations are sent about patients this command wrote.
    pub fn patients_changed(&mut self, writes: &[PatientWrite]) {
        let queued =
            self.fanout
                .patients_changed(self.tx, None, writes, self.seq, &mut self.next_delivery, self.now);
        self.deliveries.extend(queued);
    }

    /// Queues a delivery in this command's write set; the journal entry lists its id.
    pub fn enqueue(&mut self, outgoing: crate::outbox::queue::Outgoing) -> crate::outbox::Delivery {
        let n = self.next_delivery_number();
        let delivery = crate::outbox::queue::enqueue(self.tx, outgoing, self.seq, n, self.now);
        self.deliveries.push(delivery.id.clone());
        delivery
    }

    /// As `patients_changed`, and also to the destinations named in `also` (by their rendering,
    /// and only when it changed, as for every other destination). Returns the ids queued.
    pub fn patients_changed_also_to(&mut self, also: &[String], writes: &[PatientWrite]) -> Vec<String> {
        let queued = self.fanout.patients_changed_also_to(
            self.tx,
            also,
            writes,
            self.seq,
            &mut self.next_delivery,
            self.now,
        );
        self.deliveries.extend(queued.iter().cloned());
        queued
    }

    /// Numbers a delivery this command queues itself (each number once per command).
    pub fn next_delivery_number(&mut self) -> u32 {
        self.next_delivery += 1;
        self.next_delivery - 1
    }
}

/// How a command went, what the journal keeps of it, and the answer for its caller. `Applied`
/// keeps its writes; any other status drops them (the journal entry stays).
pub struct Finished<T> {
    pub status: Status,
    pub error: Option<String>,
    pub patients: Vec<String>,
    /// What the journal keeps as the request (never a secret).
    pub message: String,
    pub answer: T,
}

impl<T> Finished<T> {
    /// Applied: the writes are kept.
    pub fn applied(message: String, patients: Vec<String>, answer: T) -> Self {
        Finished {
            status: Status::Applied,
            error: None,
            patients,
            message,
            answer,
        }
    }

    /// Refused (bad input, a rule broken): nothing is written, the journal says why.
    pub fn refused(message: String, error: String, answer: T) -> Self {
        Finished {
            status: Status::Rejected,
            error: Some(error),
            patients: vec![],
            message,
            answer,
        }
    }
}

/// A finished command with its answer boxed into the release that sends it.
struct CommandOutcome {
    status: Status,
    error: Option<String>,
    patients: Vec<String>,
    message: String,
    release: Release,
}

/// Answers whoever waits on a job once its fate is known: `Ok` when durable, `Err` with the
/// reason when the commit failed.
type Release = Box<dyn FnOnce(Result<(), &str>) + Send>;

impl CommitterHandle {
    /// Queues a job and waits for its replies, which come once it is durable.
    pub async fn submit(
        &self,
        make: impl FnOnce(oneshot::Sender<Vec<String>>) -> Job,
    ) -> Option<Vec<String>> {
        let (reply, replied) = oneshot::channel();
        self.jobs.send(Work::Message(make(reply))).await.ok()?;
        replied.await.ok()
    }

    /// Runs a command on the committer thread and returns its answer once it is durable:
    /// `Err` with the reason when it could not be made durable, `None` when the committer is
    /// gone (shutting down).
    pub async fn run<T: Send + 'static>(
        &self,
        kind: impl Into<String>,
        peer: impl Into<String>,
        run: impl FnOnce(&mut CommandContext<'_, '_>) -> Finished<T> + Send + 'static,
    ) -> Option<Result<T, String>> {
        let (reply, replied) = oneshot::channel::<Result<T, String>>();
        let command = Command {
            kind: kind.into(),
            peer: peer.into(),
            run: Box::new(move |ctx| {
                let finished = run(ctx);
                let answer = finished.answer;
                CommandOutcome {
                    status: finished.status,
                    error: finished.error,
                    patients: finished.patients,
                    message: finished.message,
                    release: Box::new(move |durable| {
                        let _ = reply.send(durable.map(|()| answer).map_err(str::to_string));
                    }),
                }
            }),
        };
        self.jobs.send(Work::Command(command)).await.ok()?;
        replied.await.ok()
    }
}

/// Starts the committer thread (and the sync thread it feeds). It ends when every handle is
/// dropped and the queue is drained. `on_durable` is told the last journal sequence each sync
/// made durable: the outbox delivers nothing before its cause is on disk.
pub fn start(
    store: Arc<dyn Store>,
    max_batch: usize,
    fanout: Arc<Fanout>,
    on_durable: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<(CommitterHandle, std::thread::JoinHandle<()>), crate::store::StoreError> {
    let next_seq = store.journal_last_seq() + 1;
    let (jobs, queue) = mpsc::channel(16 * 1024);
    let thread = std::thread::Builder::new()
        .name("committer".into())
        .spawn(move || run(store, queue, max_batch.max(1), next_seq, &fanout, on_durable))
        .expect("the committer thread starts");
    Ok((CommitterHandle { jobs }, thread))
}

/// A batch written to the store, waiting for the sync that makes it durable.
struct Committed {
    releases: Vec<Release>,
    last_seq: u64,
}

/// Applies batches in arrival order and writes each to the store. While the sync thread makes
/// one batch durable, this thread already applies the next, so one sync serves every message
/// that arrived meanwhile.
fn run(
    store: Arc<dyn Store>,
    mut queue: mpsc::Receiver<Work>,
    max_batch: usize,
    mut next_seq: u64,
    fanout: &Fanout,
    on_durable: Arc<dyn Fn(u64) + Send + Sync>,
) {
    let (to_sync, committed) = std::sync::mpsc::channel::<Committed>();
    let sync_store = store.clone();
    let syncer = std::thread::Builder::new()
        .name("syncer".into())
        .spawn(move || sync_loop(sync_store, committed, on_durable))
        .expect("the sync thread starts");
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        let first_seq = next_seq;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut overlay = Overlay::new(store.as_ref());
        let mut releases = Vec::with_capacity(batch.len());
        let mut journal = Vec::with_capacity(batch.len());
        for work in batch.drain(..) {
            let (entry, release) = match work {
                Work::Message(job) => process_message(&mut overlay, job, fanout, next_seq, &now),
                Work::Command(command) => process_command(&mut overlay, command, fanout, next_seq, &now),
            };
            journal.push((next_seq, entry.to_bytes()));
            releases.push(release);
            next_seq += 1;
        }
        let mut writes = overlay.into_writes();
        writes.journal = journal;
        match store.commit(writes) {
            Ok(()) => {
                let _ = to_sync.send(Committed {
                    releases,
                    last_seq: next_seq - 1,
                });
            }
            Err(e) => {
                next_seq = first_seq;
                answer_failure(releases, &e.to_string());
            }
        }
    }
    drop(to_sync);
    let _ = syncer.join();
}

/// Makes committed batches durable, all that are waiting with one sync, then releases their
/// replies: ACK after commit.
fn sync_loop(
    store: Arc<dyn Store>,
    committed: std::sync::mpsc::Receiver<Committed>,
    on_durable: Arc<dyn Fn(u64) + Send + Sync>,
) {
    while let Ok(first) = committed.recv() {
        let mut ready = vec![first];
        ready.extend(committed.try_iter());
        let last_seq = ready.iter().map(|b| b.last_seq).max().unwrap_or(0);
        match store.sync() {
            Ok(()) => {
                on_durable(last_seq);
                for release in ready.into_iter().flat_map(|batch| batch.releases) {
                    release(Ok(()));
                }
            }
            Err(e) => answer_failure(
                ready.into_iter().flat_map(|b| b.releases).collect(),
                &e.to_string(),
            ),
        }
    }
}

/// When a batch could not be made durable: each job is told, so senders send again.
fn answer_failure(releases: Vec<Release>, reason: &str) {
    tracing::error!(error = %reason, jobs = releases.len(), "commit failed");
    for release in releases {
        release(Err(reason));
    }
}

/// Runs one command in its own overlay over the batch's; keeps its writes if it applied.
fn process_command(
    overlay: &mut Overlay<'_>,
    command: Command,
    fanout: &Fanout,
    seq: u64,
    now: &str,
) -> (JournalEntry, Release) {
    let mut staged = Overlay::new(overlay);
    let mut ctx = CommandContext {
        tx: &mut staged,
        now,
        seq,
        fanout,
        deliveries: vec![],
        next_delivery: 0,
    };
    let outcome = (command.run)(&mut ctx);
    let deliveries = std::mem::take(&mut ctx.deliveries);
    let writes = staged.into_writes();
    let applied = outcome.status == Status::Applied;
    if applied {
        overlay.absorb(writes);
    }
    let entry = JournalEntry {
        seq,
        channel: "api".into(),
        received_at: now.to_string(),
        peer: command.peer,
        sender: String::new(),
        control_id: String::new(),
        message_type: command.kind,
        status: outcome.status,
        error: outcome.error,
        duplicate_of: None,
        patients: outcome.patients,
        deliveries: if applied { deliveries } else { vec![] },
        replies: vec![],
        message: outcome.message,
        message_bytes: None,
    };
    (entry, outcome.release)
}

/// Applies one message into the batch overlay; returns its journal entry (replies included)
/// and what answers the sender once the batch is durable.
fn process_message(
    overlay: &mut Overlay<'_>,
    job: Job,
    fanout: &Fanout,
    seq: u64,
    now: &str,
) -> (JournalEntry, Release) {
    let entry = process(overlay, &job, fanout, seq, now);
    let replies = entry.replies.clone();
    let release: Release = Box::new(move |durable| {
        let replies = match durable {
            Ok(()) => replies,
            Err(reason) => failure_replies(&job, reason, seq),
        };
        let _ = job.reply.send(replies);
    });
    (entry, release)
}

/// Applies one job into the batch overlay; returns its journal entry, replies included.
fn process(overlay: &mut Overlay<'_>, job: &Job, fanout: &Fanout, seq: u64, now: &str) -> JournalEntry {
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
        deliveries: vec![],
        replies: vec![],
        message: String::new(),
        message_bytes: None,
    };
    match &job.input {
        JobInput::Unreadable { text, error } => {
            entry.error = Some(error.text.clone());
            let version = &job.acks.settings.default_version;
            entry.replies = vec![reject_unparsed(text, error, ack_id(seq, 0), version)];
            entry.message = text.clone();
        }
        JobInput::Filtered {
            message,
            reason,
            answer,
        } => {
            entry.sender = format!("{}|{}", message.sending_application(), message.sending_facility());
            entry.control_id = message.control_id();
            entry.message_type = format!("{}^{}", message.message_type(), message.trigger_event());
            entry.message = message.text().to_string();
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
            entry.sender = format!("{}|{}", message.sending_application(), message.sending_facility());
            entry.control_id = message.control_id();
            entry.message_type = format!("{}^{}", message.message_type(), message.trigger_event());
            entry.message = message.text().to_string();
            entry.status = Status::Applied;
            entry.replies = replies.clone();
        }
        JobInput::Hl7 { message, change } => {
            entry.sender = format!("{}|{}", message.sending_application(), message.sending_facility());
            entry.control_id = message.control_id();
            entry.message_type = format!("{}^{}", message.message_type(), message.trigger_event());
            entry.message = message.text().to_string();
            let fingerprint = dedupe::fingerprint(message.text());
            let earlier = match dedupe::seen(overlay, &entry.sender, &entry.control_id) {
                Ok(earlier) => earlier.filter(|_| !entry.control_id.is_empty()),
                Err(e) => {
                    tracing::error!(error = %e, seq, "dedupe lookup failed");
                    None
                }
            };
            if let Some(earlier) = earlier {
                if earlier.fingerprint == fingerprint {
                    entry.status = Status::Duplicate;
                    entry.duplicate_of = Some(earlier.seq);
                    entry.patients = earlier.patients;
                    entry.replies = earlier.replies;
                } else {
                    // Same sender and control id, different content: not a resend. Applying it
                    // could be a second effect of one message, dropping it would lose it; so it
                    // is refused and kept in the journal.
                    let error = ParseError {
                        code: ErrorCode::DuplicateKey,
                        location: Some(ErrLocation {
                            segment: "MSH".into(),
                            sequence: 1,
                            field: Some(10),
                            repetition: None,
                            component: None,
                            subcomponent: None,
                        }),
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
                }
            } else {
                let outcome = match change {
                    Err(refused) => refused.clone(),
                    Ok(change) => {
                        let mut staged = Overlay::new(overlay);
                        match patients::apply(&mut staged, change, now) {
                            Ok(written) => {
                                let writes = patient_writes(overlay, &staged, &written);
                                let mut n = 0;
                                entry.deliveries = fanout.patients_changed(
                                    &mut staged,
                                    Some(&job.channel),
                                    &writes,
                                    seq,
                                    &mut n,
                                    now,
                                );
                                let writes = staged.into_writes();
                                overlay.absorb(writes);
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
                if let (Some(ack), Some(destination)) =
                    (acks.application, &job.acks.application_ack_destination)
                {
                    let outgoing = Outgoing {
                        destination: destination.clone(),
                        patient: None,
                        resource: None,
                        content_type: "x-application/hl7-v2+er7".into(),
                        headers: vec![],
                        payload: ack,
                        sealed: None,
                    };
                    // A message's one application ACK: a number no patient fan-out reaches, so
                    // its delivery id stays apart from theirs.
                    let delivery = enqueue(overlay, outgoing, seq, APPLICATION_ACK_DELIVERY, now);
                    entry.deliveries.push(delivery.id);
                }
                if entry.status == Status::Applied && !entry.control_id.is_empty() {
                    let seen = Seen {
                        seq,
                        fingerprint,
                        patients: entry.patients.clone(),
                        replies: entry.replies.clone(),
                    };
                    dedupe::remember(overlay, &entry.sender, &entry.control_id, &seen);
                }
            }
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

/// The patients a change wrote, as they were in `before` and are in `after`.
fn patient_writes(before: &dyn Reader, after: &dyn Reader, ids: &[String]) -> Vec<PatientWrite> {
    let load = |reader: &dyn Reader, id: &str| {
        reader
            .get(Keyspace::Patient, id.as_bytes())
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    };
    ids.iter()
        .filter_map(|id| {
            Some(PatientWrite {
                id: id.clone(),
                before: load(before, id),
                after: load(after, id)?,
            })
        })
        .collect()
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
fn ack_id(seq: u64, n: usize) -> String {
    if n <= 1 {
        format!("TRB{seq}")
    } else {
        format!("TRB{seq}-{n}")
    }
}

fn apply_error(e: &ApplyError) -> ParseError {
    let (code, segment, field) = match e {
        ApplyError::UnknownKey(_) => (ErrorCode::UnknownKey, "MRG", 1),
        ApplyError::DuplicateKey(..) => (ErrorCode::DuplicateKey, "PID", 3),
        ApplyError::Store(_) => (ErrorCode::InternalError, "MSH", 10),
    };
    ParseError {
        code,
        location: Some(ErrLocation {
            segment: segment.into(),
            sequence: 1,
            field: Some(field),
            repetition: None,
            component: None,
            subcomponent: None,
        }),
        text: e.to_string(),
    }
}

/// Replies when the batch could not be made durable: AE, so the sender sends again.
fn failure_replies(job: &Job, reason: &str, seq: u64) -> Vec<String> {
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
        JobInput::Unreadable { text, .. } => {
            let version = &job.acks.settings.default_version;
            vec![reject_unparsed(text, &error, ack_id(seq, 0), version)]
        }
    }
}
