//! HL7 v2: reading messages off the wire and writing replies (the `tributary-hl7` crate; the
//! engine has it as `tributary::hl7`). It knows nothing of the engine, the store or FHIR.
//!
//! - `charset`: bytes to text (BOM, MSH-18, the Latin-1 fallback) and back.
//! - `delimiters`: the delimiters each message declares in MSH-1/MSH-2, checked.
//! - `message`: one parsed message, its MSH conveniences and path lookup.
//! - `segment`: borrowed views over a segment, field, repetition and component.
//! - `path`: the `PID-3[2].4.2` path syntax.
//! - `escape`: escape sequences, decoded and encoded.
//! - `batch`: splitting files and streams into messages (FHS/BHS envelopes, concatenation).
//! - `writer`: building a message from plain values.
//! - `ack`: which acknowledgements a message asks for, and building them.
//! - `error`: why a message could not be read, in ERR segment terms.
//!
//! Structure comes from our own scanner (`message`): one pass over the decoded text records each
//! segment's line and its field ranges, all fields of a message in one vector; repetitions,
//! components and subcomponents are split on demand. It replaced the `hl7-parser` crate, which
//! built nested vectors for every field, repetition, component and subcomponent and took about
//! 95% of the time. On `benches/hl7_parse.rs` (10,000 varied ADT messages of ~620 bytes, one
//! core, best of 9 passes) `Message::parse` went from ~53,000 to ~1,220,000 messages/s, and parse
//! plus the ADT mapping from ~34,000 to ~127,000 messages/s (the target is 100,000; about 20,000
//! of that gain is splitting components with a byte loop in `segment`). Its escape decoder and
//! builder had already been replaced by ours (see DESIGN.md).

pub mod ack;
pub mod batch;
pub mod charset;
pub mod delimiters;
pub mod error;
pub mod escape;
pub mod message;
mod path;
pub mod segment;
pub mod writer;

pub use ack::{
    AckCode, AckSettings, Acks, DEFAULT_VERSION, KNOWN_VERSIONS, Outcome, VersionLayout, acks_for, batch_ack,
    reject_unparsed,
};
pub use batch::{Batch, BatchWarning, read_batch, split_batch};
pub use charset::{Charset, decode, encode};
pub use delimiters::Delimiters;
pub use error::{ErrLocation, ErrorCode, ParseError};
pub use escape::{escape, unescape};
pub use message::{MAX_DELIMITERS, Message};
pub use segment::{Component, Field, Repetition, Segment};
pub use writer::MessageWriter;
