//! Choosing a channel for a message. The channels sharing a listener are tried in config order;
//! the first whose filter (message types, sender, condition) accepts the message takes it. For a
//! message no channel takes, `route` names what no channel accepts; the listener answers it AA
//! and journals it as filtered, or rejects it (AR) when its channels say `on_filtered = "reject"`.

use std::sync::Arc;

use super::replies::AckPolicy;
use crate::config::{ChannelConfig, FilterConfig};
use crate::hl7::{ErrLocation, ErrorCode, Message, Outcome, ParseError};
use crate::mapping::Condition;

/// One channel as its listener sees it.
pub struct Route {
    pub channel: Arc<str>,
    /// Name of the mapping that turns its messages into store changes.
    pub mapping: String,
    filter: Filter,
    /// (MSH-3, MSH-4 or None for any facility) this channel accepts messages from; empty: anyone.
    allowed_senders: Vec<(String, Option<String>)>,
    /// How the channel answers its messages.
    pub acks: Arc<AckPolicy>,
}

struct Filter {
    /// (type, event); event None matches any event of the type.
    message_types: Vec<(String, Option<String>)>,
    sending_applications: Vec<String>,
    sending_facilities: Vec<String>,
    condition: Option<Condition>,
}

impl Route {
    pub fn new(channel: &ChannelConfig) -> Route {
        Route {
            channel: channel.name.get_ref().as_str().into(),
            mapping: channel.mapping.get_ref().clone(),
            filter: Filter::new(&channel.filter),
            allowed_senders: channel
                .allowed_senders
                .iter()
                .map(|s| match s.get_ref().split_once('^') {
                    Some((application, facility)) => (application.to_string(), Some(facility.to_string())),
                    None => (s.get_ref().clone(), None),
                })
                .collect(),
            acks: Arc::new(AckPolicy::new(
                channel.name.get_ref().clone(),
                channel.ack_settings(),
                channel
                    .application_ack_destination
                    .as_ref()
                    .map(|d| d.get_ref().clone()),
            )),
        }
    }

    /// Refuses a message from a sender this channel does not allow: it is not authenticated as
    /// one of the systems the channel serves (an A40 from anyone must not merge patients).
    pub fn check_sender(&self, message: &Message) -> Result<(), Outcome> {
        let application = message.get("MSH-3.1").unwrap_or_default();
        let facility = message.get("MSH-4.1").unwrap_or_default();
        let allowed = self.allowed_senders.is_empty()
            || self
                .allowed_senders
                .iter()
                .any(|(a, f)| *a == application && f.as_deref().is_none_or(|f| f == facility));
        if allowed {
            return Ok(());
        }
        Err(Outcome::Rejected(ParseError {
            code: ErrorCode::InternalError,
            location: Some(ErrLocation {
                segment: "MSH".into(),
                sequence: 1,
                field: Some(3),
                repetition: None,
                component: None,
                subcomponent: None,
            }),
            text: format!(
                "sender `{application}^{facility}` is not allowed on channel `{}`",
                self.channel
            ),
        }))
    }
}

impl Filter {
    fn new(config: &FilterConfig) -> Filter {
        let message_types = config
            .message_types
            .iter()
            .map(|t| match t.get_ref().split_once('^') {
                Some((kind, "*")) => (kind.to_string(), None),
                Some((kind, event)) => (kind.to_string(), Some(event.to_string())),
                None => (t.get_ref().clone(), None),
            })
            .collect();
        Filter {
            message_types,
            sending_applications: config.sending_applications.clone(),
            sending_facilities: config.sending_facilities.clone(),
            condition: config
                .condition
                .as_ref()
                .map(|c| Condition::parse(c.get_ref()).expect("validated at load")),
        }
    }

    fn takes_type(&self, kind: &str) -> bool {
        self.message_types.is_empty() || self.message_types.iter().any(|(k, _)| k == kind)
    }

    fn takes_event(&self, kind: &str, event: &str) -> bool {
        self.message_types.is_empty()
            || self
                .message_types
                .iter()
                .any(|(k, e)| k == kind && e.as_deref().is_none_or(|e| e == event))
    }

    fn condition_holds(&self, message: &Message) -> bool {
        self.condition.as_ref().is_none_or(|c| c.holds(message))
    }

    fn takes_sender(&self, application: &str, facility: &str) -> bool {
        let one_of = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        one_of(&self.sending_applications, application) && one_of(&self.sending_facilities, facility)
    }
}

/// The first route that takes `message`, or the AR that says why none does.
pub fn route<'r>(routes: &'r [Route], message: &Message) -> Result<&'r Route, Outcome> {
    let kind = message.message_type();
    let event = message.trigger_event();
    let application = message.get("MSH-3.1").unwrap_or_default();
    let facility = message.get("MSH-4.1").unwrap_or_default();
    if let Some(route) = routes.iter().find(|r| {
        r.filter.takes_event(&kind, &event)
            && r.filter.takes_sender(&application, &facility)
            && r.filter.condition_holds(message)
    }) {
        return Ok(route);
    }
    let at = |component| {
        Some(ErrLocation {
            segment: "MSH".into(),
            sequence: 1,
            field: Some(9),
            repetition: Some(1),
            component: Some(component),
            subcomponent: None,
        })
    };
    let from_sender: Vec<&Route> = routes
        .iter()
        .filter(|r| r.filter.takes_sender(&application, &facility))
        .collect();
    let error = if from_sender.is_empty() {
        ParseError {
            code: ErrorCode::UnsupportedMessageType,
            location: at(1),
            text: format!("no channel here takes messages from {application}|{facility}"),
        }
    } else if !from_sender.iter().any(|r| r.filter.takes_type(&kind)) {
        ParseError {
            code: ErrorCode::UnsupportedMessageType,
            location: at(1),
            text: format!("no channel here takes `{kind}` messages from {application}|{facility}"),
        }
    } else if !from_sender.iter().any(|r| r.filter.takes_event(&kind, &event)) {
        ParseError {
            code: ErrorCode::UnsupportedEvent,
            location: at(2),
            text: format!("no channel here takes `{kind}^{event}` from {application}|{facility}"),
        }
    } else {
        ParseError {
            code: ErrorCode::UnsupportedMessageType,
            location: at(1),
            text: format!("no channel's filter condition here holds for this `{kind}^{event}`"),
        }
    };
    Err(Outcome::Rejected(error))
}
