//! [`SmsOutbound`]: the outbound adapter, one gateway request per text message.

use bytes::Bytes;
use tributary_adapter_core::{BoxFuture, DeliveryError, Envelope, Outbound};
use tributary_adapter_http::{HttpClient, HttpConfig, Request};

use crate::config::{BodyFormat, SmsConfig};
use crate::template::{Template, Values};

/// Sends each envelope as one request to the gateway: the body template filled in with the
/// envelope's `To` header, its payload as text and its id. Returns the gateway's answer body;
/// failures are classified as by the HTTP adapter (5xx, 429, timeouts Transient; 4xx Permanent).
#[derive(Debug)]
pub struct SmsOutbound {
    client: HttpClient,
    template: Template,
    content_type: String,
}

impl SmsOutbound {
    /// Checks `config` and builds the adapter; the error names the setting that is wrong.
    pub fn from_config(config: &SmsConfig) -> Result<SmsOutbound, String> {
        let template = Template::parse(&config.body, config.format)?;
        let content_type = config
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| match config.format {
                BodyFormat::Json => "application/json".into(),
                BodyFormat::Form => "application/x-www-form-urlencoded".into(),
            });
        let client = HttpClient::from_config(&HttpConfig {
            url: config.url.clone(),
            method: config.method.clone(),
            headers: config.headers.clone(),
            auth: config.auth.clone(),
            timeout_secs: config.timeout_secs,
            max_response_bytes: config.max_response_bytes,
            tls: None,
        })?;
        Ok(SmsOutbound {
            client,
            template,
            content_type,
        })
    }

    /// The gateway, for logs (the configured URL without its query).
    pub fn target(&self) -> &str {
        self.client.target()
    }

    /// The request body for `envelope`; what is wrong here is wrong in the envelope: Permanent.
    pub fn render(&self, envelope: &Envelope) -> Result<String, DeliveryError> {
        let to = envelope
            .header("To")
            .map(str::trim)
            .filter(|to| !to.is_empty())
            .ok_or_else(|| DeliveryError::Permanent("the envelope has no `To` header".into()))?;
        let body = std::str::from_utf8(&envelope.payload)
            .map_err(|_| DeliveryError::Permanent("the payload is not UTF-8 text".into()))?;
        Ok(self.template.render(Values {
            to,
            body,
            id: &envelope.id,
        }))
    }

    async fn send(&self, envelope: &Envelope) -> Result<Bytes, DeliveryError> {
        let body = self.render(envelope)?;
        self.client
            .send(Request {
                body: Bytes::from(body),
                content_type: &self.content_type,
                delivery_id: &envelope.id,
                headers: &[],
            })
            .await
    }
}

impl Outbound for SmsOutbound {
    fn kind(&self) -> &'static str {
        "sms"
    }

    fn deliver<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Bytes, DeliveryError>> {
        Box::pin(self.send(envelope))
    }
}
