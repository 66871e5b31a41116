//! Reprocessing a journaled message: its text goes through its listener again, as if its
//! sender had sent it once more (the handler of its type, routing, today's mapping, the
//! committer), and is journaled as a new entry whose peer names the entry it reprocesses. A
//! message that was applied gets its first answer again and changes nothing (the sender's
//! control id is the idempotency key); one that was refused (a result for a patient the store
//! did not know yet, a mapping that failed) is applied if it now can be.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tributary_adapter_core::{Inbound, InboundHandler};

use crate::core::journal::JournalEntry;
use crate::hl7::{Charset, Message, encode};

use super::inbound::ListenerInbound;
use super::live_listener::LiveListener;

/// Every MLLP listener's inbound side, by the channels it serves (replaced whole when the
/// config is reloaded).
#[derive(Default)]
pub struct Listeners {
    by_channels: RwLock<Vec<(Vec<String>, Arc<LiveListener>)>>,
}

/// Why a journal entry cannot be reprocessed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReprocessError {
    #[error("journal entry {seq} kept only the first {kept} of the message's {size} bytes")]
    OnlyHeadKept { seq: u64, kept: usize, size: usize },
    #[error("no listener serves channel `{0}` now")]
    NoListener(String),
    #[error("the engine is stopping; nothing was reprocessed")]
    Stopping,
}

impl Listeners {
    /// Puts these listeners, by the channels each serves, in the place of those known so far.
    pub fn replace(&self, listeners: Vec<(Vec<String>, Arc<LiveListener>)>) {
        match self.by_channels.write() {
            Ok(mut current) => *current = listeners,
            Err(poisoned) => *poisoned.into_inner() = listeners,
        }
    }

    /// The listener of a journaled channel (`a|b` names the channels of a listener for a
    /// message none of them took).
    fn serving(&self, channel: &str) -> Option<Arc<ListenerInbound>> {
        let by_channels = match self.by_channels.read() {
            Ok(by_channels) => by_channels,
            Err(poisoned) => poisoned.into_inner(),
        };
        by_channels
            .iter()
            .find(|(names, _)| channel.split('|').any(|c| names.iter().any(|n| n == c)))
            .map(|(_, live)| live.current())
    }

    /// Sends entry `seq`'s message through its listener again; returns the replies it got.
    pub async fn reprocess(
        &self,
        seq: u64,
        entry: &JournalEntry,
        by: &str,
    ) -> Result<Vec<String>, ReprocessError> {
        if let Some(size) = entry.message_bytes {
            return Err(ReprocessError::OnlyHeadKept {
                seq,
                kept: entry.message.len(),
                size,
            });
        }
        let inbound = self
            .serving(&entry.channel)
            .ok_or_else(|| ReprocessError::NoListener(entry.channel.clone()))?;
        // The journal keeps the text decoded; it goes in again in the character set it names.
        let charset = Message::parse(entry.message.as_bytes())
            .map(|m| m.charset())
            .unwrap_or(Charset::Utf8);
        let frame = Inbound {
            payload: Bytes::from(encode(&entry.message, charset)),
            peer: format!("reprocess of journal {seq} by {by}"),
            oversized: None,
        };
        let replies = inbound.handle(frame).await;
        if replies.is_empty() {
            return Err(ReprocessError::Stopping);
        }
        Ok(replies
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(message_bytes: Option<usize>) -> JournalEntry {
        JournalEntry::from_bytes(
            serde_json::json!({
                "seq": 7, "channel": "ucr-oru", "received_at": "2026-01-01T00:00:00.000Z",
                "peer": "127.0.0.1:1", "sender": "UCR|UCRHIE", "control_id": "X1",
                "message_type": "ORU^R01", "status": "rejected", "patients": [], "replies": [],
                "message": "MSH|^~\\&|UCR", "message_bytes": message_bytes,
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_message_kept_by_its_head_only_or_of_no_channel_now_is_not_reprocessed() {
        let listeners = Listeners::default();
        let head_only = listeners
            .reprocess(7, &entry(Some(200_000)), "client:analyst")
            .await;
        assert_eq!(
            head_only,
            Err(ReprocessError::OnlyHeadKept {
                seq: 7,
                kept: 12,
                size: 200_000
            })
        );
        let gone = listeners.reprocess(7, &entry(None), "client:analyst").await;
        assert_eq!(gone, Err(ReprocessError::NoListener("ucr-oru".into())));
    }
}
