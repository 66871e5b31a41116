//! The group committer: the one writer of the store.
//!
//! Connections parse and map in parallel, then hand their job here. One thread takes every job
//! waiting, applies them in arrival order (so messages about one patient apply in the order they
//! came), journals each, commits them as one atomic write set, makes it durable with one sync, and
//! only then releases every reply: ACK after commit, one fsync for many messages.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::domain::patients::{self, ApplyError, PatientChange};
use crate::engine::dedupe::{self, Seen};
use crate::engine::journal::{JournalEntry, Status};
use crate::hl7::{ErrLocation, ErrorCode, Message, Outcome, ParseError, acks_for, reject_unparsed};
use crate::store::{Overlay, Store};

/// One inbound message on its way to the store.
pub struct Job {
    pub channel: Arc<str>,
    pub peer: String,
    pub received_at: String,
    pub input: JobInput,
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
}

/// The way in to the committer; cheap to clone.
#[derive(Clone)]
pub struct CommitterHandle {
    jobs: mpsc::Sender<Job>,
}

impl CommitterHandle {
    /// Queues a job and waits for its replies, which come once it is durable.
    pub async fn submit(
        &self,
        make: impl FnOnce(oneshot::Sender<Vec<String>>) -> Job,
    ) -> Option<Vec<String>> {
        let (reply, replied) = oneshot::channel();
        self.jobs.send(make(reply)).await.ok()?;
        replied.await.ok()
    }
}

/// Starts the committer thread (and the sync thread it feeds). It ends when every handle is
/// dropped and the queue is drained.
pub fn start(
    store: Arc<dyn Store>,
    max_batch: usize,
) -> Result<(CommitterHandle, std::thread::JoinHandle<()>), crate::store::StoreError> {
    let next_seq = store.journal_last_seq() + 1;
    let (jobs, queue) = mpsc::channel(16 * 1024);
    let thread = std::thread::Builder::new()
        .name("committer".into())
        .spawn(move || run(store, queue, max_batch.max(1), next_seq))
        .expect("the committer thread starts");
    Ok((CommitterHandle { jobs }, thread))
}

/// A batch written to the store, waiting for the sync that makes it durable.
struct Committed {
    replies: Vec<(Job, Vec<String>)>,
    first_seq: u64,
}

/// Applies batches in arrival order and writes each to the store. While the sync thread makes
/// one batch durable, this thread already applies the next, so one sync serves every message
/// that arrived meanwhile.
fn run(store: Arc<dyn Store>, mut queue: mpsc::Receiver<Job>, max_batch: usize, mut next_seq: u64) {
    let (to_sync, committed) = std::sync::mpsc::channel::<Committed>();
    let sync_store = store.clone();
    let syncer = std::thread::Builder::new()
        .name("syncer".into())
        .spawn(move || sync_loop(sync_store, committed))
        .expect("the sync thread starts");
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let first_seq = next_seq;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut overlay = Overlay::new(store.as_ref());
        let mut replies = Vec::with_capacity(batch.len());
        let mut journal = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            let entry = process(&mut overlay, &job, next_seq, &now);
            journal.push((next_seq, entry.to_bytes()));
            replies.push((job, entry.replies));
            next_seq += 1;
        }
        let mut writes = overlay.into_writes();
        writes.journal = journal;
        match store.commit(writes) {
            Ok(()) => {
                let _ = to_sync.send(Committed { replies, first_seq });
            }
            Err(e) => {
                next_seq = first_seq;
                answer_failure(replies, &e.to_string(), first_seq);
            }
        }
    }
    drop(to_sync);
    let _ = syncer.join();
}

/// Makes committed batches durable, all that are waiting with one sync, then releases their
/// replies: ACK after commit.
fn sync_loop(store: Arc<dyn Store>, committed: std::sync::mpsc::Receiver<Committed>) {
    while let Ok(first) = committed.recv() {
        let mut ready = vec![first];
        ready.extend(committed.try_iter());
        match store.sync() {
            Ok(()) => {
                for (job, replies) in ready.into_iter().flat_map(|batch| batch.replies) {
                    let _ = job.reply.send(replies);
                }
            }
            Err(e) => {
                for batch in ready {
                    answer_failure(batch.replies, &e.to_string(), batch.first_seq);
                }
            }
        }
    }
}

/// When a batch could not be made durable: AE to each, so the senders send again.
fn answer_failure(replies: Vec<(Job, Vec<String>)>, reason: &str, first_seq: u64) {
    tracing::error!(error = %reason, messages = replies.len(), "commit failed; answering AE");
    for (job, _) in replies {
        let replies = failure_replies(&job, reason, first_seq);
        let _ = job.reply.send(replies);
    }
}

/// Applies one job into the batch overlay; returns its journal entry, replies included.
fn process(overlay: &mut Overlay<'_>, job: &Job, seq: u64, now: &str) -> JournalEntry {
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
        replies: vec![],
        message: String::new(),
    };
    match &job.input {
        JobInput::Unreadable { text, error } => {
            entry.error = Some(error.text.clone());
            entry.replies = vec![reject_unparsed(text, error, ack_id(seq, 0))];
            entry.message = text.clone();
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
                    entry.replies = replies_for(message, &Outcome::Rejected(error), seq);
                }
            } else {
                let outcome = match change {
                    Err(refused) => refused.clone(),
                    Ok(change) => {
                        let mut staged = Overlay::new(overlay);
                        match patients::apply(&mut staged, change, now) {
                            Ok(written) => {
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
                entry.replies = replies_for(message, &outcome, seq);
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
    entry
}

/// The ACKs for a message, each with a fresh control id.
fn replies_for(message: &Message, outcome: &Outcome, seq: u64) -> Vec<String> {
    let mut n = 0;
    acks_for(message, outcome, &mut || {
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
        JobInput::Hl7 { message, .. } => replies_for(message, &Outcome::Error(error), seq),
        JobInput::Unreadable { text, .. } => vec![reject_unparsed(text, &error, ack_id(seq, 0))],
    }
}
