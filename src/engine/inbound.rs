//! A channel's inbound side: each received frame is read, mapped and handed to the committer,
//! and the replies it gets back (after the commit) go to the sender.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tributary_adapter_core::{Inbound, InboundHandler};

use crate::engine::committer::{CommitterHandle, Job, JobInput};
use crate::hl7::{Charset, ErrLocation, ErrorCode, Message, ParseError, encode};
use crate::mapping::adt_patient;

pub struct ChannelInbound {
    pub channel: Arc<str>,
    pub max_frame_bytes: usize,
    pub committer: CommitterHandle,
}

impl ChannelInbound {
    /// What the committer is given for one frame: the message and its mapped change, or why it
    /// could not be read.
    fn read(&self, inbound: &Inbound) -> JobInput {
        if let Some(size) = inbound.oversized {
            return JobInput::Unreadable {
                text: String::from_utf8_lossy(&inbound.payload).into_owned(),
                error: ParseError {
                    code: ErrorCode::InternalError,
                    location: Some(ErrLocation {
                        segment: "MSH".into(),
                        sequence: 1,
                        field: None,
                        repetition: None,
                        component: None,
                        subcomponent: None,
                    }),
                    text: format!(
                        "the message is {size} bytes, over this channel's limit of {} bytes",
                        self.max_frame_bytes
                    ),
                },
            };
        }
        match Message::parse(&inbound.payload) {
            Ok(message) => {
                let change = adt_patient::map(&message);
                JobInput::Hl7 { message, change }
            }
            Err(error) => JobInput::Unreadable {
                text: String::from_utf8_lossy(&inbound.payload).into_owned(),
                error,
            },
        }
    }
}

impl InboundHandler for ChannelInbound {
    fn handle<'a>(&'a self, inbound: Inbound) -> Pin<Box<dyn Future<Output = Vec<Bytes>> + Send + 'a>> {
        Box::pin(async move {
            let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let input = self.read(&inbound);
            // Replies go out in the character set the message came in (an ACK echoes MSH-18).
            let charset = match &input {
                JobInput::Hl7 { message, .. } => message.charset(),
                JobInput::Unreadable { error, .. } => {
                    tracing::warn!(channel = %self.channel, peer = %inbound.peer, error = %error.text, "unreadable message");
                    Charset::Utf8
                }
            };
            let replies = self
                .committer
                .submit(|reply| Job {
                    channel: self.channel.clone(),
                    peer: inbound.peer.clone(),
                    received_at,
                    input,
                    reply,
                })
                .await;
            match replies {
                Some(replies) => replies.iter().map(|r| Bytes::from(encode(r, charset))).collect(),
                // The committer is gone (shutting down): no ACK, so the sender keeps the message.
                None => vec![],
            }
        })
    }
}
