//! What one member-account command works with: its write set, its commit time, its journal
//! sequence and who asked; and the numbering of the deliveries and audit records it makes, so
//! each has a stable id (`seq` + number) that no other command can take.
//!
//! On the committer thread an `Op` is made from the command's context; tests and the benchmark
//! make one over an overlay of their own.

use crate::engine::committer::CommandContext;
use crate::store::Overlay;

pub struct Op<'a, 'o> {
    pub tx: &'a mut Overlay<'o>,
    pub now: String,
    pub seq: u64,
    /// Who asked (`client:<name>`), for the audit trail.
    pub actor: String,
    next_delivery: u32,
    next_audit: u32,
    /// Delivery ids queued so far (they are told to the caller).
    pub deliveries: Vec<String>,
}

impl<'a, 'o> Op<'a, 'o> {
    pub fn new(tx: &'a mut Overlay<'o>, now: &str, seq: u64, actor: &str) -> Self {
        Op {
            tx,
            now: now.to_string(),
            seq,
            actor: actor.to_string(),
            next_delivery: 0,
            next_audit: 0,
            deliveries: vec![],
        }
    }

    /// From a committer command. The command must not also queue deliveries through `ctx`.
    pub fn from_ctx(ctx: &'a mut CommandContext<'_, 'o>, actor: &str) -> Self {
        let now = ctx.now.to_string();
        let seq = ctx.seq;
        Op::new(&mut *ctx.tx, &now, seq, actor)
    }

    pub fn next_delivery_number(&mut self) -> u32 {
        self.next_delivery += 1;
        self.next_delivery - 1
    }

    /// Numbers this op's deliveries from `n` on, past those the command already queued through
    /// its context (a profile update's fan-out), so no two deliveries share an id.
    pub fn start_deliveries_at(&mut self, n: u32) {
        self.next_delivery = self.next_delivery.max(n);
    }

    pub fn next_audit_number(&mut self) -> u32 {
        self.next_audit += 1;
        self.next_audit - 1
    }
}
