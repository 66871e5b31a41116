//! One delivery: what goes to which destination, why, and how its tries went; and its key.
//!
//! A delivery's key is `destination \0 cause (8 bytes BE) n (4 bytes BE)`, where `cause` is the
//! journal sequence of the change that queued it and `n` numbers the deliveries one change
//! queued for one destination. Keys therefore sort a destination's deliveries in the order their
//! causes were committed, which is the order they go out. The id, `destination-cause-n`, is the
//! same key in text: stable across retries and restarts, so a receiver can recognise a resend.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub destination: String,
    /// The patient it is about (deliveries for one patient keep their order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The resource whose current state it carries (`Patient/<id>`, `Task/<id>`): a newer
    /// delivery of the same resource to the same destination makes this one stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Journal sequence of the change that queued it.
    pub cause: u64,
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    pub payload: String,
    /// The secrets of a notification, sealed ([`super::seal`]): the payload and headers hold
    /// placeholders instead. Dropped once it is delivered or dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// Its sealed secrets were dropped when it died: it cannot be sent again as it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secrets_dropped: bool,
    pub created_at: String,
    pub state: State,
    /// Tries so far.
    pub attempts: u32,
    /// Not to be tried before this time (milliseconds since the Unix epoch).
    #[serde(default)]
    pub not_before_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    /// When it was delivered, dead-lettered or discarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The start of the peer's answer (an ACK, a response body), for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// When it was put back from the dead letters by hand (it is then checked for staleness
    /// again just before it goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_at: Option<String>,
    /// The newer delivery of the same resource that had already gone out when this dead letter
    /// was retried (its state is then `superseded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Pending,
    Delivered,
    DeadLetter,
    Discarded,
    /// A retried dead letter not sent because a newer delivery of the same resource to the
    /// same destination had already gone out: sending it would overwrite newer data.
    Superseded,
}

impl Delivery {
    pub fn key(&self) -> Vec<u8> {
        key(&self.destination, self.cause, self.n())
    }

    /// Its number among the deliveries its cause queued for its destination.
    pub fn n(&self) -> u32 {
        parse_id(&self.id).map(|(_, _, n)| n).unwrap_or(0)
    }

    /// Notifications (e-mail, text) may carry secrets, such as an activation token: their
    /// content is never shown by the API and is not kept once delivered.
    pub fn is_notification(&self) -> bool {
        !(self.content_type.contains("hl7") || self.content_type.contains("fhir"))
    }

    /// The delivery as the API shows it: a notification's content and reply left out.
    pub fn redacted(&self) -> Delivery {
        let mut shown = self.clone();
        if self.is_notification() {
            shown.payload = "[not shown: a notification may carry secrets]".into();
            shown.reply = None;
        }
        shown.sealed = None;
        shown
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a delivery always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Delivery> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The key of delivery `n` queued by change `cause` for `destination`.
pub fn key(destination: &str, cause: u64, n: u32) -> Vec<u8> {
    let mut key = prefix(destination);
    key.extend_from_slice(&cause.to_be_bytes());
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// The prefix of every key of one destination.
pub fn prefix(destination: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(destination.len() + 13);
    key.extend_from_slice(destination.as_bytes());
    key.push(0);
    key
}

pub fn id(destination: &str, cause: u64, n: u32) -> String {
    format!("{destination}-{cause}-{n}")
}

/// `destination-cause-n` back into its parts (destination names may hold `-`).
pub fn parse_id(id: &str) -> Option<(&str, u64, u32)> {
    let mut parts = id.rsplitn(3, '-');
    let n = parts.next()?.parse().ok()?;
    let cause = parts.next()?.parse().ok()?;
    let destination = parts.next().filter(|d| !d.is_empty())?;
    Some((destination, cause, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_round_trip_and_sort_by_cause() {
        let id = id("pix-a31", 42, 3);
        assert_eq!(parse_id(&id), Some(("pix-a31", 42, 3)));
        assert!(key("pix", 9, 0) < key("pix", 10, 0));
        assert!(key("pix", 10, 0) < key("pix", 10, 1));
        assert_eq!(parse_id("nothing"), None);
        assert_eq!(parse_id("-1-2"), None);
    }
}
