//! [`SmtpOutbound`]: the outbound adapter, one e-mail per envelope through one relay.

use std::time::Duration;

use bytes::Bytes;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tributary_adapter_core::{BoxFuture, DeliveryError, Envelope, Outbound};

use crate::config::{SmtpConfig, TlsMode};
use crate::message::Composer;

/// Sends each envelope as one e-mail: `To` and `Subject` from the envelope's headers, the payload
/// as a UTF-8 `text/plain` (or `text/html`) body, a Message-ID derived from the envelope id.
/// Returns the relay's final answer (e.g. `250 2.0.0 Ok: queued as 4F2B`).
pub struct SmtpOutbound {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    composer: Composer,
    relay: String,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpOutbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpOutbound")
            .field("relay", &self.relay)
            .field("from", &self.composer.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpOutbound {
    /// Checks `config` and builds the adapter; the error names the setting that is wrong.
    pub fn from_config(config: &SmtpConfig) -> Result<SmtpOutbound, String> {
        let host = config.host.trim();
        if host.is_empty() {
            return Err("host: is empty".into());
        }
        let port = config.port.unwrap_or_else(|| config.tls.default_port());
        if port == 0 {
            return Err("port: must not be 0".into());
        }
        if config.timeout_secs == 0 {
            return Err("timeout_secs: must be at least 1".into());
        }
        let from: lettre::message::Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("from: `{}` is not an e-mail address ({e})", config.from))?;
        let message_id_domain = match &config.message_id_domain {
            Some(domain) if valid_domain(domain) => domain.clone(),
            Some(domain) => return Err(format!("message_id_domain: `{domain}` is not a domain name")),
            None => from.email.domain().to_string(),
        };
        let timeout = Duration::from_secs(config.timeout_secs);
        let tls = match config.tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls => Tls::Required(tls_parameters(host)?),
            TlsMode::Tls => Tls::Wrapper(tls_parameters(host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        match (&config.username, &config.password) {
            (Some(username), Some(password)) => {
                builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err("username and password: give both or neither".into()),
        }
        if let Some(name) = &config.hello_name {
            if !valid_domain(name) {
                return Err(format!("hello_name: `{name}` is not a host name"));
            }
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        Ok(SmtpOutbound {
            transport: builder.build(),
            composer: Composer {
                from,
                message_id_domain,
            },
            relay: format!("{host}:{port}"),
            timeout,
        })
    }

    /// The relay this adapter sends through, `host:port`.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    async fn send(&self, envelope: &Envelope) -> Result<Bytes, DeliveryError> {
        let message = self.composer.compose(envelope)?;
        // lettre bounds each read and write; this bounds the whole exchange.
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message))
            .await
            .map_err(|_| {
                DeliveryError::Transient(format!(
                    "SMTP delivery to {} timed out after {} s",
                    self.relay,
                    self.timeout.as_secs()
                ))
            })?;
        match sent {
            Ok(response) => {
                let text = response.message().collect::<Vec<_>>().join(" ");
                Ok(Bytes::from(format!("{} {text}", response.code())))
            }
            Err(error) => Err(classify(&error, &self.relay)),
        }
    }
}

impl Outbound for SmtpOutbound {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    fn deliver<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Bytes, DeliveryError>> {
        Box::pin(self.send(envelope))
    }
}

/// 5xx replies are Permanent; 4xx replies, network, TLS and timeout failures are Transient. The
/// exception: 530, 534, 535 and 538 are about this side's login, not the message, and holding the
/// queue until the credentials are fixed beats dead-lettering every message.
fn classify(error: &lettre::transport::smtp::Error, relay: &str) -> DeliveryError {
    let message = format!("SMTP delivery to {relay} failed: {}", describe(error));
    let login_problem = error
        .status()
        .is_some_and(|code| matches!(code.to_string().as_str(), "530" | "534" | "535" | "538"));
    if error.is_permanent() && !login_problem {
        DeliveryError::Permanent(message)
    } else {
        DeliveryError::Transient(message)
    }
}

/// An error and its sources on one line.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

fn tls_parameters(host: &str) -> Result<TlsParameters, String> {
    TlsParameters::new(host.to_string())
        .map_err(|e| format!("tls: cannot set up TLS for `{host}`: {}", describe(&e)))
}

/// Letters, digits, `-` and `.` in non-empty labels: what EHLO and a Message-ID domain allow.
fn valid_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_checked() {
        assert!(valid_domain("portal.example"));
        assert!(valid_domain("localhost"));
        assert!(!valid_domain("a..b"));
        assert!(!valid_domain("bad name"));
        assert!(!valid_domain(""));
    }
}
