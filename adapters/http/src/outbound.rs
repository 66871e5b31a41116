//! [`HttpOutbound`]: the outbound adapter, an envelope sent as one HTTP request.

use bytes::Bytes;
use tributary_adapter_core::{BoxFuture, DeliveryError, Envelope, Outbound};

use crate::client::{HttpClient, Request};

/// Delivers each envelope as one request: the payload as the body, `content_type` as
/// `Content-Type`, the envelope's headers as HTTP headers and its id as `X-Delivery-Id`.
/// Returns the answer's body.
#[derive(Debug)]
pub struct HttpOutbound {
    client: HttpClient,
}

impl HttpOutbound {
    /// An adapter sending through `client`.
    pub fn new(client: HttpClient) -> Self {
        HttpOutbound { client }
    }

    /// The destination, for logs (the configured URL without its query).
    pub fn target(&self) -> &str {
        self.client.target()
    }
}

impl Outbound for HttpOutbound {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn deliver<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Bytes, DeliveryError>> {
        Box::pin(self.client.send(Request {
            body: envelope.payload.clone(),
            content_type: &envelope.content_type,
            delivery_id: &envelope.id,
            headers: &envelope.headers,
        }))
    }
}
