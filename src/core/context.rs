//! What a job runs with on the committer thread: the pending writes of its batch, its commit
//! time and journal sequence, where it came from, and the deliveries it queued; and
//! [`Context::stage`], the one way a change is applied together with its projections, or not at
//! all.

use std::sync::Arc;

use crate::store::{Changed, Overlay, Staged, StoreError};

use super::Projections;
use super::prepared::{Prepared, Written};

pub struct Context<'a, 'o> {
    /// The pending writes this job reads and adds to.
    pub tx: &'a mut Overlay<'o>,
    /// The commit time (RFC 3339, UTC, milliseconds).
    pub now: &'a str,
    /// The job's journal sequence number (the cause of the deliveries it queues).
    pub seq: u64,
    job: &'a mut JobState,
    /// Which batch last wrote each key, to check prepared changes by.
    written: &'a Written,
    /// Inside [`Context::stage`]: `tx` is the stage's overlay, not the batch's.
    in_stage: bool,
}

/// What a job accumulates while it runs, shared by its stages.
pub(super) struct JobState {
    origin: Option<Arc<str>>,
    also_notify: Vec<String>,
    deliveries: Deliveries,
    projections: Projections,
    /// The records its stages changed, for its journal entry.
    changes: Vec<Changed>,
}

/// The deliveries one job queues: numbered in the job (a delivery's id is its destination, the
/// job's sequence and this number, so each number is taken once), and listed for its journal
/// entry.
#[derive(Debug, Default)]
pub struct Deliveries {
    next: u32,
    ids: Vec<String>,
}

impl Deliveries {
    /// The next delivery number of this job.
    pub fn next_number(&mut self) -> u32 {
        self.next += 1;
        self.next - 1
    }

    /// Records a delivery id this job queued.
    pub fn queued(&mut self, id: String) {
        self.ids.push(id);
    }

    /// The ids queued so far, in order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
}

impl JobState {
    pub(super) fn new(origin: Option<Arc<str>>, projections: Projections) -> JobState {
        JobState {
            origin,
            also_notify: vec![],
            deliveries: Deliveries::default(),
            projections,
            changes: vec![],
        }
    }

    /// The deliveries it queued and the records it changed (`Type/id`, with `/_history/n` for
    /// a versioned record), for its journal entry.
    pub(super) fn into_outcome(self) -> (Vec<String>, Vec<String>) {
        let changes = self
            .changes
            .into_iter()
            .map(|c| match c.version {
                Some(version) => format!("{}/{}/_history/{version}", c.kind, c.id),
                None => format!("{}/{}", c.kind, c.id),
            })
            .collect();
        (self.deliveries.ids, changes)
    }
}

impl<'a, 'o> Context<'a, 'o> {
    pub(super) fn new(
        tx: &'a mut Overlay<'o>,
        now: &'a str,
        seq: u64,
        job: &'a mut JobState,
        written: &'a Written,
    ) -> Self {
        Context {
            tx,
            now,
            seq,
            job,
            written,
            in_stage: false,
        }
    }

    /// The writes and result of a change prepared off the committer
    /// ([`CommitterHandle::prepare`](super::CommitterHandle::prepare)), when
    /// nothing it read has been written since it began; None when the job must compute it
    /// again. Checked against the batch's writes so far, so it is taken before staging (inside
    /// a stage it is always None): pass what it gives to `apply_prepared` inside the stage.
    pub fn take_prepared<T>(&self, prepared: Prepared<T>) -> Option<(Staged, T)> {
        if self.in_stage {
            return None;
        }
        prepared.check(self.written, self.tx)
    }

    /// A change's result: its prepared writes (as `take_prepared` gave them) taken into this
    /// job's, or, with none, the change worked out here by `apply`.
    pub fn apply_prepared<T, E>(
        &mut self,
        prepared: Option<(Staged, T)>,
        apply: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        match prepared {
            Some((writes, value)) => {
                self.tx.absorb_staged(writes);
                Ok(value)
            }
            None => apply(self),
        }
    }

    /// The channel the job came by, if any: fan-out also tells that channel's destinations.
    pub fn origin(&self) -> Option<&str> {
        self.job.origin.as_deref()
    }

    /// Destinations told of this job's changes besides the usual ones (a member's profile
    /// update goes to the UCR, which is not told of every change).
    pub fn also_notify(&self) -> &[String] {
        &self.job.also_notify
    }

    /// Names destinations to tell of the changes staged from now on (see `also_notify`).
    pub fn notify_also(&mut self, destinations: &[String]) {
        self.job.also_notify = destinations.to_vec();
    }

    /// Numbers a delivery this job queues (each number once per job).
    pub fn next_delivery_number(&mut self) -> u32 {
        self.job.deliveries.next_number()
    }

    /// Records a delivery id this job queued: its journal entry lists it.
    pub fn queued(&mut self, delivery_id: String) {
        self.job.deliveries.queued(delivery_id);
    }

    /// The deliveries queued so far.
    pub fn deliveries(&self) -> &[String] {
        self.job.deliveries.ids()
    }

    /// The job's writes and its deliveries at once, for a domain operation that queues
    /// deliveries of its own (`domain::op::Op`).
    pub fn parts(&mut self) -> (&mut Overlay<'o>, &mut Deliveries) {
        (&mut *self.tx, &mut self.job.deliveries)
    }

    /// Applies a change: `change` writes into an overlay of its own; if it succeeds, every
    /// projection following the records it changed runs over them, and the whole is kept; if
    /// either fails, nothing it wrote or queued is kept. Records are projected once, by the
    /// stage that wrote them.
    pub fn stage<T, E: From<StoreError>>(
        &mut self,
        change: impl FnOnce(&mut Context<'_, '_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mark = (
            self.job.deliveries.next,
            self.job.deliveries.ids.len(),
            self.job.changes.len(),
        );
        let mut staged = Overlay::new(&*self.tx);
        let result = {
            let mut inner = Context {
                tx: &mut staged,
                now: self.now,
                seq: self.seq,
                job: &mut *self.job,
                written: self.written,
                in_stage: true,
            };
            change(&mut inner).and_then(|value| {
                project(&mut inner)?;
                Ok(value)
            })
        };
        match result {
            Ok(value) => {
                // Each stage notes only what it wrote itself (a nested stage's writes reach this
                // one without their notes), so the job's list holds each change once.
                for changed in staged.changed() {
                    match self
                        .job
                        .changes
                        .iter_mut()
                        .find(|c| c.kind == changed.kind && c.id == changed.id)
                    {
                        Some(known) => known.version = changed.version.or(known.version),
                        None => self.job.changes.push(changed.clone()),
                    }
                }
                let writes = staged.into_writes();
                self.tx.absorb(writes);
                Ok(value)
            }
            Err(e) => {
                self.job.deliveries.next = mark.0;
                self.job.deliveries.ids.truncate(mark.1);
                self.job.changes.truncate(mark.2);
                Err(e)
            }
        }
    }
}

/// Runs every projection, in order, over the records of its kinds changed so far.
fn project(ctx: &mut Context<'_, '_>) -> Result<(), StoreError> {
    let projections = ctx.job.projections.clone();
    for projection in projections.iter() {
        let changed: Vec<_> = ctx
            .tx
            .changed()
            .iter()
            .filter(|c| projection.follows(&c.kind))
            .cloned()
            .collect();
        if !changed.is_empty() {
            projection.project(ctx, &changed)?;
        }
    }
    Ok(())
}

/// Runs `change` as one job straight on `store`, on the calling thread: staged, followed by
/// `projections`, and committed (not synced) if it succeeds. For what needs the core's staging
/// and projections without its thread and journal: the property tests of the domain.
#[cfg(test)]
pub fn run_direct<T, E: From<StoreError>>(
    store: &dyn crate::store::Store,
    projections: &Projections,
    now: &str,
    seq: u64,
    change: impl FnOnce(&mut Context<'_, '_>) -> Result<T, E>,
) -> Result<T, E> {
    let mut overlay = Overlay::new(store);
    let mut job = JobState::new(None, projections.clone());
    let written = Written::new(Default::default());
    let value = Context::new(&mut overlay, now, seq, &mut job, &written).stage(change)?;
    store.commit(overlay.into_writes())?;
    Ok(value)
}
