//! What one member-account command works with: its write set, its commit time, its journal
//! sequence and who asked; the deliveries it queues (numbered in the job, so each has a stable
//! id that no other delivery of the job can take), and the numbering of its audit records.
//!
//! On the committer thread an `Op` is made from the job's context; tests and the benchmark
//! make one over an overlay of their own.

use crate::core::{Context, Deliveries};
use crate::store::Overlay;

pub struct Op<'a, 'o> {
    pub tx: &'a mut Overlay<'o>,
    pub now: String,
    pub seq: u64,
    /// Who asked (`client:<name>`), for the audit trail.
    pub actor: String,
    deliveries: &'a mut Deliveries,
    next_audit: u32,
}

impl<'a, 'o> Op<'a, 'o> {
    pub fn new(
        tx: &'a mut Overlay<'o>,
        deliveries: &'a mut Deliveries,
        now: &str,
        seq: u64,
        actor: &str,
    ) -> Self {
        Op {
            tx,
            now: now.to_string(),
            seq,
            actor: actor.to_string(),
            deliveries,
            next_audit: 0,
        }
    }

    /// From a committer job's context.
    pub fn from_ctx(ctx: &'a mut Context<'_, 'o>, actor: &str) -> Self {
        let now = ctx.now.to_string();
        let seq = ctx.seq;
        let (tx, deliveries) = ctx.parts();
        Op::new(tx, deliveries, &now, seq, actor)
    }

    pub fn next_delivery_number(&mut self) -> u32 {
        self.deliveries.next_number()
    }

    /// Records a delivery this op queued.
    pub fn queued(&mut self, id: String) {
        self.deliveries.queued(id);
    }

    /// The deliveries the job queued so far.
    pub fn deliveries(&self) -> &[String] {
        self.deliveries.ids()
    }

    pub fn next_audit_number(&mut self) -> u32 {
        self.next_audit += 1;
        self.next_audit - 1
    }
}
