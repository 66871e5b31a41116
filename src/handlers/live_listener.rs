//! A listener's inbound side as the config has it now: what its MLLP server calls for every
//! frame. A reloaded config that keeps the listener (same address, same listener settings) puts
//! a new inbound side here (its channels, routes, ACK settings) while the listener and its
//! connections stay open; each frame is handled whole by the side in force when it arrived.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tributary_adapter_core::{Inbound, InboundHandler};

use super::inbound::ListenerInbound;

pub struct LiveListener {
    current: RwLock<Arc<ListenerInbound>>,
}

impl LiveListener {
    pub fn new(inbound: ListenerInbound) -> LiveListener {
        LiveListener {
            current: RwLock::new(Arc::new(inbound)),
        }
    }

    /// The inbound side in force.
    pub fn current(&self) -> Arc<ListenerInbound> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `inbound` in force for the frames that arrive from now on.
    pub fn replace(&self, inbound: ListenerInbound) {
        let inbound = Arc::new(inbound);
        match self.current.write() {
            Ok(mut current) => *current = inbound,
            Err(poisoned) => *poisoned.into_inner() = inbound,
        }
    }
}

impl InboundHandler for LiveListener {
    fn handle<'a>(&'a self, inbound: Inbound) -> Pin<Box<dyn Future<Output = Vec<Bytes>> + Send + 'a>> {
        let current = self.current();
        Box::pin(async move { current.handle(inbound).await })
    }
}
