//! What a message gets back, by its channel's ACK settings: the one reply frame for the
//! connection, and the application ACK (enhanced mode) queued for the channel's return
//! destination. Owns the warnings a sender's choices deserve (a message asking for no reply,
//! application ACKs asked for with nowhere to send them), each logged once per channel so a busy
//! feed does not flood the log.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::hl7::{AckSettings, Acks, Message, Outcome, acks_for};

/// A channel's (or a listener's, for messages no channel took) way of answering.
#[derive(Debug, Default)]
pub struct AckPolicy {
    /// Where the journal and the log name it.
    pub channel: String,
    pub settings: AckSettings,
    /// The outbox destination application ACKs go to.
    pub application_ack_destination: Option<String>,
    warned_no_reply: AtomicBool,
    warned_no_destination: AtomicBool,
}

impl AckPolicy {
    pub fn new(
        channel: String,
        settings: AckSettings,
        application_ack_destination: Option<String>,
    ) -> AckPolicy {
        AckPolicy {
            channel,
            settings,
            application_ack_destination,
            ..AckPolicy::default()
        }
    }

    /// The ACKs for `message`, each with a fresh control id from `control_ids`. An application
    /// ACK with no destination to go to is dropped (with a warning).
    pub fn acks(
        &self,
        message: &Message,
        outcome: &Outcome,
        control_ids: &mut dyn FnMut() -> String,
    ) -> Acks {
        let mut acks = acks_for(message, outcome, &self.settings, control_ids);
        if acks.reply_unasked && !self.warned_no_reply.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                channel = %self.channel,
                control_id = %message.control_id(),
                answered = acks.reply.is_some(),
                "a sender asked for no reply (MSH-15 NE, ER or SU); it is {} (answer_ne_ne); logged once per channel",
                if acks.reply.is_some() { "answered anyway" } else { "not answered, and may wait for its timeout" }
            );
        }
        if acks.application.is_some() && self.application_ack_destination.is_none() {
            acks.application = None;
            if !self.warned_no_destination.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    channel = %self.channel,
                    control_id = %message.control_id(),
                    "a sender asked for an application ACK (MSH-16) but the channel has no application_ack_destination: only the accept ACK is sent; logged once per channel"
                );
            }
        }
        acks
    }
}
