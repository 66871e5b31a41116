//! Property: however a stream of frames and garbage is cut into reads, the decoder yields exactly
//! the frames sent (oversized ones as their head and size) and counts exactly the garbage.

use bytes::Bytes;
use proptest::prelude::*;
use tributary_adapter_mllp::{END, Frame, FrameDecoder, OVERSIZED_HEAD, START, encode_frame_into};

const MAX_FRAME: usize = 48;

/// Message content a conforming sender can produce: no start byte, and no end marker (a lone
/// 0x1C is allowed and must survive as data).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => any::<u8>().prop_filter("no start byte", |b| *b != START),
        1 => Just(END[0]),
        1 => Just(END[1]),
    ];
    prop::collection::vec(byte, 0..120).prop_map(|mut bytes| {
        for i in 1..bytes.len() {
            if bytes[i - 1] == END[0] && bytes[i] == END[1] {
                bytes[i] = b'r';
            }
        }
        bytes
    })
}

/// Bytes outside frames: anything but a start byte, end markers included.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => any::<u8>().prop_filter("no start byte", |b| *b != START),
        1 => Just(END[0]),
        1 => Just(END[1]),
    ];
    prop::collection::vec(byte, 0..10)
}

fn expected_frame(payload: &[u8]) -> Frame {
    if payload.len() <= MAX_FRAME {
        Frame::Message(Bytes::copy_from_slice(payload))
    } else {
        let head = OVERSIZED_HEAD.min(MAX_FRAME);
        Frame::Oversized {
            head: Bytes::copy_from_slice(&payload[..head]),
            size: payload.len(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_split_of_frames_and_garbage_yields_exactly_the_frames(
        parts in prop::collection::vec((garbage(), payload()), 0..8),
        trailing_garbage in garbage(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut wire = Vec::new();
        let mut garbage_total = trailing_garbage.len();
        for (junk, message) in &parts {
            wire.extend_from_slice(junk);
            garbage_total += junk.len();
            encode_frame_into(message, &mut wire);
        }
        wire.extend_from_slice(&trailing_garbage);

        let mut positions: Vec<usize> = cuts.iter().map(|cut| cut.index(wire.len() + 1)).collect();
        positions.push(0);
        positions.push(wire.len());
        positions.sort_unstable();

        let mut decoder = FrameDecoder::new(MAX_FRAME);
        let mut frames = Vec::new();
        let mut skipped = 0;
        for window in positions.windows(2) {
            decoder.feed(&wire[window[0]..window[1]]);
            prop_assert!(decoder.buffered_len() <= MAX_FRAME);
            frames.extend(std::iter::from_fn(|| decoder.next_frame()));
            skipped += decoder.take_skipped();
        }

        let expected: Vec<Frame> = parts.iter().map(|(_, message)| expected_frame(message)).collect();
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(skipped, garbage_total);
        prop_assert!(!decoder.is_mid_frame());
    }
}
