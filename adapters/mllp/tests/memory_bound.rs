//! A peer that opens a frame and never closes it cannot grow the server's memory past the cap.
//!
//! Its own test binary (one test, so nothing else allocates in the process meanwhile) so that
//! the resident set size says something about the listener alone.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tributary_adapter_core::{Inbound, InboundHandler, handler_fn};
use tributary_adapter_mllp::START;

use support::{connect_raw, read_frames, start};

/// Current and peak resident set size of this process, in bytes.
fn resident_and_peak_bytes() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kib = |field: &str| -> usize {
        let line = status
            .lines()
            .find(|line| line.starts_with(field))
            .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
        let value: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        value * 1024
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// Resets the peak so it measures only what follows (best effort: older kernels lack it, and
/// then the peak since start is used, which only makes the check stricter).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::test]
async fn frame_without_end_marker_does_not_grow_memory_past_the_cap() {
    const MAX_FRAME: usize = 64 * 1024;
    const SENT: usize = 64 * 1024 * 1024;
    let handler: Arc<dyn InboundHandler> = Arc::new(handler_fn(|message: Inbound| async move {
        vec![Bytes::from(format!("oversized={:?}", message.oversized))]
    }));
    let server = start(|config| config.max_frame = MAX_FRAME, handler).await;
    let mut stream = connect_raw(server.addr).await;

    stream.write_all(&[START]).await.unwrap();
    let chunk = vec![b'z'; 256 * 1024];
    // Let the connection settle before measuring, so its fixed buffers are not counted as growth.
    stream.write_all(&chunk).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    reset_peak();
    let (before, _) = resident_and_peak_bytes();
    for _ in 1..SENT / chunk.len() {
        stream.write_all(&chunk).await.unwrap();
    }
    // Closing the frame now proves the server read every byte rather than stalling the sender.
    stream.write_all(&[0x1C, 0x0D]).await.unwrap();
    let replies = read_frames(&mut stream, 1).await;
    let (_, peak) = resident_and_peak_bytes();
    let grown = peak.saturating_sub(before);

    assert_eq!(replies, vec![Bytes::from(format!("oversized=Some({})", SENT))]);
    assert!(
        grown < 8 * 1024 * 1024,
        "peak resident memory grew by {grown} bytes while receiving a {SENT} byte frame"
    );
    server.shutdown().await;
}
