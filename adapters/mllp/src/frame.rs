//! MLLP framing: the incremental decoder that turns arbitrary reads into whole messages, and the
//! encoder that wraps a message for the wire.
//!
//! A frame is `0x0B` + message + `0x1C 0x0D` (HL7 v2.5.1 Appendix C). TCP gives no message
//! boundaries, so one read may hold a fraction of a frame or several frames; the decoder keeps
//! what it needs between reads and nothing more. It is pure (no I/O), so the server, the client
//! and the tests share it and it can be tested byte by byte.

use std::collections::VecDeque;

use bytes::Bytes;

/// Start block: the byte that opens a frame.
pub const START: u8 = 0x0B;
/// End block: file separator then carriage return close a frame.
pub const END: [u8; 2] = [0x1C, 0x0D];

/// How much of an oversized frame is kept: enough for the message header (MSH-10 in particular)
/// so the engine can answer with a reject that names the message, never the whole thing.
pub const OVERSIZED_HEAD: usize = 4 * 1024;

const FILE_SEPARATOR: u8 = END[0];
const CARRIAGE_RETURN: u8 = END[1];

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message, without the framing bytes.
    Message(Bytes),
    /// A message longer than the cap: only its first bytes were kept (up to [`OVERSIZED_HEAD`],
    /// and never more than the cap); `size` is its full length.
    Oversized { head: Bytes, size: usize },
}

/// Incremental MLLP frame decoder. Feed it whatever a read returned; take frames out.
///
/// Rules, in the order they apply to each byte:
/// - Outside a frame, every byte up to the next `0x0B` is garbage: skipped and counted.
/// - Inside a frame, `0x1C 0x0D` ends it. A `0x1C` followed by anything else is message data
///   (the standard forbids it in content, but dropping bytes would be worse than keeping them).
/// - A `0x0B` inside a frame means the sender gave up on that frame and started another: the
///   abandoned bytes are counted as skipped.
/// - Past `max_frame` bytes the decoder keeps only the head and discards the rest up to the end
///   marker, so memory stays at `max_frame` plus whatever one `feed` brought, whatever the peer does.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame: usize,
    /// Bytes kept for the frame being read: all of it, or only its head once it is oversized.
    current: Vec<u8>,
    /// Full length of the frame being read so far, including bytes not kept.
    current_size: usize,
    in_frame: bool,
    /// The last byte fed was a `0x1C` inside a frame; the next byte decides whether it ends it.
    pending_separator: bool,
    ready: VecDeque<Frame>,
    skipped: usize,
}

impl FrameDecoder {
    /// A decoder that accepts messages up to `max_frame` bytes (framing bytes not counted).
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            max_frame,
            current: Vec::new(),
            current_size: 0,
            in_frame: false,
            pending_separator: false,
            ready: VecDeque::new(),
            skipped: 0,
        }
    }

    /// Consumes one read's worth of bytes; completed frames wait in order for [`Self::next_frame`].
    pub fn feed(&mut self, data: &[u8]) {
        let mut rest = data;
        while !rest.is_empty() {
            if !self.in_frame {
                rest = self.skip_to_start(rest);
                continue;
            }
            if self.pending_separator {
                self.pending_separator = false;
                if rest[0] == CARRIAGE_RETURN {
                    self.finish_frame();
                    rest = &rest[1..];
                    continue;
                }
                // A lone 0x1C is data; the byte after it is looked at again as usual.
                self.keep(&[FILE_SEPARATOR]);
            }
            rest = self.read_frame_bytes(rest);
        }
    }

    /// The next complete frame, oldest first.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.ready.pop_front()
    }

    /// Bytes seen outside any frame since the last call (so the caller can log them), then reset.
    pub fn take_skipped(&mut self) -> usize {
        std::mem::take(&mut self.skipped)
    }

    /// True while a frame has started but not ended: a peer closing now loses that message.
    pub fn is_mid_frame(&self) -> bool {
        self.in_frame
    }

    /// Bytes of unfinished frame the decoder holds right now (bounded by the cap).
    pub fn buffered_len(&self) -> usize {
        self.current.len()
    }

    /// The cap this decoder was built with.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn skip_to_start<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        match data.iter().position(|&byte| byte == START) {
            Some(start) => {
                self.skipped += start;
                self.begin_frame();
                &data[start + 1..]
            }
            None => {
                self.skipped += data.len();
                &[]
            }
        }
    }

    /// Reads frame content up to the next byte that matters (`0x0B` or `0x1C`) and acts on it.
    fn read_frame_bytes<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        let Some(marker) = data
            .iter()
            .position(|&byte| byte == START || byte == FILE_SEPARATOR)
        else {
            self.keep(data);
            return &[];
        };
        self.keep(&data[..marker]);
        let after = &data[marker + 1..];
        if data[marker] == START {
            self.skipped += self.current_size;
            self.begin_frame();
            return after;
        }
        match after.first() {
            Some(&CARRIAGE_RETURN) => {
                self.finish_frame();
                &after[1..]
            }
            Some(_) => {
                self.keep(&[FILE_SEPARATOR]);
                after
            }
            None => {
                self.pending_separator = true;
                after
            }
        }
    }

    fn begin_frame(&mut self) {
        self.in_frame = true;
        self.pending_separator = false;
        self.current.clear();
        self.current_size = 0;
    }

    /// Adds frame content, keeping at most `max_frame` bytes, or only the head once past it.
    fn keep(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        let was_oversized = self.current_size > self.max_frame;
        self.current_size += chunk.len();
        if was_oversized {
            return;
        }
        if self.current_size <= self.max_frame {
            self.reserve_within_cap(chunk.len());
            self.current.extend_from_slice(chunk);
            return;
        }
        // This chunk crossed the cap: from now on only the head is worth keeping.
        let head_len = self.head_len();
        if self.current.len() >= head_len {
            self.current.truncate(head_len);
        } else {
            let missing = head_len - self.current.len();
            self.current.extend_from_slice(&chunk[..missing.min(chunk.len())]);
        }
        // Give the memory of a large partial frame back rather than hold it until the next one.
        self.current.shrink_to(head_len);
    }

    /// Grows the buffer geometrically like `Vec` does, but never past the cap, so a frame just
    /// under the cap does not leave twice the cap allocated.
    fn reserve_within_cap(&mut self, additional: usize) {
        let needed = self.current.len() + additional;
        if needed <= self.current.capacity() {
            return;
        }
        let target = (self.current.capacity() * 2).min(self.max_frame).max(needed);
        self.current.reserve_exact(target - self.current.len());
    }

    fn head_len(&self) -> usize {
        OVERSIZED_HEAD.min(self.max_frame)
    }

    fn finish_frame(&mut self) {
        let kept = Bytes::from(std::mem::take(&mut self.current));
        let frame = if self.current_size > self.max_frame {
            Frame::Oversized {
                head: kept,
                size: self.current_size,
            }
        } else {
            Frame::Message(kept)
        };
        self.ready.push_back(frame);
        self.in_frame = false;
        self.pending_separator = false;
        self.current_size = 0;
    }
}

/// Wraps one message for the wire: `0x0B` payload `0x1C 0x0D`.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(payload.len() + 3);
    encode_frame_into(payload, &mut framed);
    framed
}

/// Appends one framed message to `out`, so several replies can go out in one write.
pub fn encode_frame_into(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + 3);
    out.push(START);
    out.extend_from_slice(payload);
    out.extend_from_slice(&END);
}

/// True when `payload` holds a byte that would break its framing (`0x0B` or `0x1C`): such a
/// message cannot be sent over MLLP as it is.
pub fn contains_framing_bytes(payload: &[u8]) -> bool {
    payload
        .iter()
        .any(|&byte| byte == START || byte == FILE_SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Frame {
        Frame::Message(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn drain(decoder: &mut FrameDecoder) -> Vec<Frame> {
        std::iter::from_fn(|| decoder.next_frame()).collect()
    }

    #[test]
    fn one_frame_in_one_read() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.feed(&encode_frame(b"MSH|^~\\&|A\r"));
        assert_eq!(drain(&mut decoder), vec![message("MSH|^~\\&|A\r")]);
        assert!(!decoder.is_mid_frame());
        assert_eq!(decoder.take_skipped(), 0);
    }

    #[test]
    fn frame_fed_byte_by_byte() {
        let mut decoder = FrameDecoder::new(1024);
        for byte in encode_frame(b"MSH|one\rPID|1\r") {
            assert_eq!(decoder.next_frame(), None);
            decoder.feed(&[byte]);
        }
        assert_eq!(drain(&mut decoder), vec![message("MSH|one\rPID|1\r")]);
    }

    #[test]
    fn several_frames_in_one_read_come_out_in_order() {
        let mut wire = Vec::new();
        for text in ["first", "second", "third"] {
            encode_frame_into(text.as_bytes(), &mut wire);
        }
        let mut decoder = FrameDecoder::new(1024);
        decoder.feed(&wire);
        assert_eq!(
            drain(&mut decoder),
            vec![message("first"), message("second"), message("third")]
        );
    }

    #[test]
    fn garbage_before_and_between_frames_is_skipped_and_counted() {
        let mut wire = b"noise".to_vec();
        encode_frame_into(b"a", &mut wire);
        wire.extend_from_slice(b"\r\n\x1c\r");
        encode_frame_into(b"b", &mut wire);
        wire.extend_from_slice(b"tail");
        let mut decoder = FrameDecoder::new(1024);
        decoder.feed(&wire);
        assert_eq!(drain(&mut decoder), vec![message("a"), message("b")]);
        assert_eq!(decoder.take_skipped(), 5 + 4 + 4);
        assert_eq!(decoder.take_skipped(), 0, "the count resets once taken");
    }

    #[test]
    fn lone_file_separator_is_data_even_across_reads() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.feed(b"\x0bab\x1c");
        decoder.feed(b"cd\x1c");
        decoder.feed(b"\x1c");
        decoder.feed(b"\r");
        assert_eq!(
            drain(&mut decoder),
            vec![Frame::Message(Bytes::from_static(b"ab\x1ccd\x1c"))]
        );
    }

    #[test]
    fn start_byte_inside_a_frame_restarts_it_and_counts_the_abandoned_bytes() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.feed(b"\x0babandoned\x0bkept\x1c\r");
        assert_eq!(drain(&mut decoder), vec![message("kept")]);
        assert_eq!(decoder.take_skipped(), "abandoned".len());
    }

    #[test]
    fn separator_then_start_byte_restarts_the_frame() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.feed(b"\x0bold\x1c");
        decoder.feed(b"\x0bnew\x1c\r");
        assert_eq!(drain(&mut decoder), vec![message("new")]);
        assert_eq!(decoder.take_skipped(), 4, "old plus its lone separator");
    }

    #[test]
    fn empty_message_is_a_frame() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.feed(&encode_frame(b""));
        assert_eq!(drain(&mut decoder), vec![message("")]);
    }

    #[test]
    fn frame_exactly_at_the_cap_is_whole() {
        let payload = vec![b'x'; 100];
        let mut decoder = FrameDecoder::new(100);
        decoder.feed(&encode_frame(&payload));
        assert_eq!(drain(&mut decoder), vec![Frame::Message(payload.into())]);
    }

    #[test]
    fn oversized_frame_keeps_its_head_and_reports_its_size() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut decoder = FrameDecoder::new(10_000);
        for chunk in encode_frame(&payload).chunks(777) {
            decoder.feed(chunk);
            assert!(decoder.buffered_len() <= 10_000);
        }
        decoder.feed(&encode_frame(b"next"));
        assert_eq!(
            drain(&mut decoder),
            vec![
                Frame::Oversized {
                    head: Bytes::copy_from_slice(&payload[..OVERSIZED_HEAD]),
                    size: payload.len(),
                },
                message("next"),
            ]
        );
    }

    #[test]
    fn oversized_head_never_exceeds_a_small_cap() {
        let mut decoder = FrameDecoder::new(10);
        decoder.feed(&encode_frame(b"0123456789ABCDEF"));
        assert_eq!(
            drain(&mut decoder),
            vec![Frame::Oversized {
                head: Bytes::from_static(b"0123456789"),
                size: 16
            }]
        );
    }

    #[test]
    fn endless_frame_without_end_marker_stays_bounded() {
        let cap = 64 * 1024;
        let mut decoder = FrameDecoder::new(cap);
        decoder.feed(&[START]);
        let read = vec![b'z'; 8 * 1024];
        for _ in 0..2_000 {
            decoder.feed(&read);
            assert!(decoder.buffered_len() <= cap);
            assert!(decoder.current.capacity() <= cap);
        }
        assert!(decoder.is_mid_frame());
        assert_eq!(decoder.buffered_len(), OVERSIZED_HEAD);
        assert_eq!(decoder.next_frame(), None);
    }

    #[test]
    fn framing_bytes_are_detected() {
        assert!(!contains_framing_bytes(b"MSH|^~\\&\r"));
        assert!(contains_framing_bytes(b"a\x0bb"));
        assert!(contains_framing_bytes(b"a\x1c"));
    }
}
