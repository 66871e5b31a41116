//! Closure handlers: an [`InboundHandler`] made from an async function, so tests and small tools
//! need not declare a type and box a future by hand.

use std::future::Future;

use bytes::Bytes;

use crate::{Inbound, InboundHandler};

/// An [`InboundHandler`] that calls a closure; build it with [`handler_fn`].
#[derive(Debug, Clone)]
pub struct HandlerFn<F>(F);

/// Wraps `f` as an [`InboundHandler`]: `handler_fn(|msg| async move { vec![msg.payload] })`.
pub fn handler_fn<F, Fut>(f: F) -> HandlerFn<F>
where
    F: Fn(Inbound) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<Bytes>> + Send + 'static,
{
    HandlerFn(f)
}

impl<F, Fut> InboundHandler for HandlerFn<F>
where
    F: Fn(Inbound) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<Bytes>> + Send + 'static,
{
    fn handle<'a>(
        &'a self,
        payload: Inbound,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Bytes>> + Send + 'a>> {
        Box::pin((self.0)(payload))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A handler made from a closure works behind the trait object the adapters take.
    #[test]
    fn closure_handler_answers_through_the_trait_object() {
        let handler: Arc<dyn InboundHandler> = Arc::new(handler_fn(|msg: Inbound| async move {
            vec![msg.payload.clone(), msg.payload]
        }));
        let answer = block_on(handler.handle(Inbound {
            payload: Bytes::from_static(b"ping"),
            peer: "127.0.0.1:1".into(),
            oversized: None,
        }));
        assert_eq!(answer, vec![Bytes::from_static(b"ping"); 2]);
    }

    /// Just enough executor for a future that never waits (this crate has no runtime dependency).
    fn block_on<T>(future: impl Future<Output = T>) -> T {
        use std::task::{Context, Poll, Waker};
        let mut future = std::pin::pin!(future);
        let mut context = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
                return value;
            }
        }
    }
}
