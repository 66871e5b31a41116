//! Delivery errors: the one distinction the outbox needs from an adapter, retry or give up.

/// Why a delivery failed: transient ones are retried, permanent ones go to the dead-letter list.
///
/// An adapter says `Transient` when the same envelope could succeed later (peer down, timeout,
/// connection reset) and `Permanent` when it never can (the payload cannot be sent as is, the
/// peer rejected it for good), so a bad message does not block its queue through endless retries.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

impl DeliveryError {
    /// True when the outbox should try again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_which_kind() {
        assert_eq!(
            DeliveryError::Transient("refused".into()).to_string(),
            "transient: refused"
        );
        assert_eq!(
            DeliveryError::Permanent("bad".into()).to_string(),
            "permanent: bad"
        );
        assert!(DeliveryError::Transient(String::new()).is_transient());
        assert!(!DeliveryError::Permanent(String::new()).is_transient());
    }
}
