//! Real peers the engine delivers to in tests: an MLLP listener playing a downstream system
//! (a PIX consumer, the UCR, TrakCare) that records what it receives and answers with the ACK
//! code it is told to.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tributary_adapter_core::{Inbound, handler_fn};
use tributary_adapter_mllp::{ListenerConfig, serve};

// An HTTP receiver (TrakCare's FHIR endpoint) and an SMTP server, in files of their own.
pub use super::http_receiver::Receiver as HttpReceiver;
pub use super::smtp_server::SmtpServer;

/// A loopback address free right now, for a peer that is started later (first "down").
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

pub struct MllpPeer {
    pub addr: String,
    received: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MllpPeer {
    /// Listens on `addr` and answers every message with MSA-1 = `ack_code` (AA, AE, AR ...).
    pub async fn start(addr: &str, ack_code: &'static str) -> MllpPeer {
        let listener = TcpListener::bind(addr).await.unwrap();
        let bound = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let handler = Arc::new(handler_fn(move |message: Inbound| {
            let log = log.clone();
            async move {
                let text = String::from_utf8_lossy(&message.payload).into_owned();
                let control_id = super::segment(&text, "MSH")
                    .and_then(|msh| msh.get(9).cloned())
                    .unwrap_or_default();
                log.lock().unwrap().push(text);
                let ack = format!(
                    "MSH|^~\\&|PEER|PEER|TRIBUTARY|PORTAL|20261125000000||ACK|R{control_id}|P|2.5\rMSA|{ack_code}|{control_id}\r"
                );
                vec![Bytes::from(ack)]
            }
        }));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, ListenerConfig::new(bound), handler, async move {
            let _ = stopped.await;
        }));
        MllpPeer {
            addr: bound.to_string(),
            received,
            stop: Some(stop),
            task,
        }
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages have arrived (panics after 20 s) and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} messages arrived at {}, not {n}: {received:?}",
                received.len(),
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops listening and closes its connections.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}
