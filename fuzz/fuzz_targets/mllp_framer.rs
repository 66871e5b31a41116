//! Fuzz target: the MLLP frame decoder (`tributary_adapter_mllp::FrameDecoder`) on any bytes,
//! fed in pieces the fuzzer chooses.
//!
//! TCP may cut the stream anywhere, so the decoder must not care where: the frames (and the
//! skipped-byte count, and whether a frame is left open) from one whole feed must equal those
//! from the same bytes fed in pieces. Memory must stay bounded: after every feed the decoder holds
//! at most `max_frame` bytes, a whole frame is never longer than the cap, and an oversized one
//! keeps at most its head and reports a size over the cap. Any payload free of framing bytes that
//! fits the cap comes back unchanged after `encode_frame`.
//!
//! Input layout (so the fuzzer steers the cap and the cuts as well as the bytes):
//! `[cap lo, cap hi, n, n cut offsets as u16 LE..., wire bytes...]`; the cap is at least 1.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_adapter_mllp::{Frame, FrameDecoder, OVERSIZED_HEAD, contains_framing_bytes, encode_frame};

fuzz_target!(|data: &[u8]| {
    let Some((header, rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let max_frame = usize::from(u16::from_le_bytes([header[0], header[1]])).max(1);
    let cut_count = usize::from(header[2] % 16);
    let Some((cut_bytes, wire)) = rest.split_at_checked(cut_count * 2) else {
        return;
    };
    let mut cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (wire.len() + 1))
        .collect();
    cuts.sort_unstable();

    let whole = decode(max_frame, &[wire]);
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for cut in cuts {
        pieces.push(&wire[from..cut]);
        from = cut;
    }
    pieces.push(&wire[from..]);
    let split = decode(max_frame, &pieces);
    assert_eq!(whole, split, "frames must not depend on where reads were cut");

    // Encoding round trip: the wire without framing bytes is a payload that must come back.
    let payload: Vec<u8> = wire.iter().copied().filter(|&b| b != 0x0B && b != 0x1C).collect();
    assert!(!contains_framing_bytes(&payload));
    let (frames, skipped, mid_frame) = decode(max_frame, &[&encode_frame(&payload)]);
    assert_eq!(skipped, 0);
    assert!(!mid_frame);
    let expected = if payload.len() <= max_frame {
        Frame::Message(payload.into())
    } else {
        let head = OVERSIZED_HEAD.min(max_frame);
        Frame::Oversized {
            head: payload[..head].to_vec().into(),
            size: payload.len(),
        }
    };
    assert_eq!(frames, vec![expected]);
});

/// Feeds `pieces` in order, checking the bounds after each; returns the frames, the bytes skipped
/// and whether a frame is still open.
fn decode(max_frame: usize, pieces: &[&[u8]]) -> (Vec<Frame>, usize, bool) {
    let mut decoder = FrameDecoder::new(max_frame);
    assert_eq!(decoder.max_frame(), max_frame);
    let mut frames = Vec::new();
    let mut skipped = 0;
    for piece in pieces {
        decoder.feed(piece);
        assert!(
            decoder.buffered_len() <= max_frame,
            "holds {} bytes, cap {max_frame}",
            decoder.buffered_len()
        );
        skipped += decoder.take_skipped();
        while let Some(frame) = decoder.next_frame() {
            match &frame {
                Frame::Message(message) => assert!(message.len() <= max_frame),
                Frame::Oversized { head, size } => {
                    assert!(*size > max_frame);
                    assert_eq!(head.len(), OVERSIZED_HEAD.min(max_frame));
                }
            }
            frames.push(frame);
        }
    }
    (frames, skipped, decoder.is_mid_frame())
}
