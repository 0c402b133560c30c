//! The streaming message reader: stream bytes in, whole messages and control
//! frames out, enforcing RFC 6455 framing, UTF-8 and the size limits as bytes
//! arrive. It never does IO, never panics, and never buffers past its limits.
//! With permessage-deflate negotiated (RSV1 allowed), a message whose first
//! frame has RSV1 set comes out whole and still compressed, for the caller to
//! inflate and validate (RFC 7692 section 6).

use std::ops::ControlFlow;

use super::close::{parse_close_payload, CloseFrame};
use super::error::ProtocolError;
use super::frame::{decode_header, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1};
use super::mask::apply_mask;
use super::utf8::{as_text, Utf8Validator};

/// How far ahead of the bytes received a growing message buffer reserves,
/// when the frame header promises more.
const READ_AHEAD: usize = 64 * 1024;

/// What a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Largest message, in payload bytes summed over its fragments.
    pub max_message_size: usize,
    /// Most frames one data message may span (0 rejects every data message).
    pub max_fragments: usize,
    /// Reject unmasked frames (`UnmaskedFrame`): true for servers. When false,
    /// frames are accepted masked or not.
    pub require_mask: bool,
    /// RSV bits an extension negotiated (`0b0000_0xyz`); other bits set in a
    /// frame are `ReservedBits`. [`RSV1`] means permessage-deflate: allowed on
    /// the first frame of a data message only, which is then delivered as
    /// [`Event::Compressed`].
    pub allowed_rsv: u8,
}

impl Default for ReaderLimits {
    /// 16 MiB, 4096 fragments, masks required, no RSV bits.
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            max_fragments: 4096,
            require_mask: true,
            allowed_rsv: 0,
        }
    }
}

/// A complete message or control frame. Payloads borrow from the input passed
/// to [`MessageReader::feed`] or from the reader's own buffer, so they live
/// only for the duration of the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole text message, validated UTF-8.
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// A ping; the caller answers with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame; the reader stops right after it.
    Close(CloseFrame<'a>),
    /// A whole message sent compressed (RSV1), its fragments joined: still
    /// deflated, so a text message's UTF-8 is not checked yet. The compressed
    /// bytes were held to the size limit plus deflate's worst-case growth;
    /// the inflated size is the caller's to bound.
    Compressed { text: bool, payload: &'a [u8] },
}

/// An [`Event`] copied out of the receive buffer, for keeping or comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedEvent {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Compressed(bool, Vec<u8>),
}

impl From<Event<'_>> for OwnedEvent {
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Text(s) => Self::Text(s.to_owned()),
            Event::Binary(b) => Self::Binary(b.to_vec()),
            Event::Ping(b) => Self::Ping(b.to_vec()),
            Event::Pong(b) => Self::Pong(b.to_vec()),
            Event::Close(c) => Self::Close(c.code, c.reason.to_owned()),
            Event::Compressed { text, payload } => Self::Compressed(text, payload.to_vec()),
        }
    }
}

/// A frame whose header has been read and whose payload is still arriving.
#[derive(Debug, Clone, Copy)]
struct PartialFrame {
    /// Text or Binary for data frames (a continuation takes its message's
    /// kind), else the control opcode.
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes already processed, mod 4: the mask key's phase.
    phase: u8,
    /// Payload bytes still to come.
    remaining: usize,
}

#[derive(Debug)]
enum Stage {
    /// Between frames, holding the first bytes of a header that arrived
    /// incomplete.
    Header { buf: [u8; MAX_HEADER_LEN], len: u8 },
    /// Inside a frame's payload.
    Payload(PartialFrame),
}

const BETWEEN_FRAMES: Stage = Stage::Header {
    buf: [0; MAX_HEADER_LEN],
    len: 0,
};

/// The payload of a control frame that arrived in pieces.
#[derive(Debug)]
struct ControlBuf {
    len: u8,
    data: [u8; MAX_CONTROL_PAYLOAD],
}

impl ControlBuf {
    fn new() -> Box<Self> {
        Box::new(Self {
            len: 0,
            data: [0; MAX_CONTROL_PAYLOAD],
        })
    }

    /// Appends payload bytes; the header check keeps the total within 125.
    fn push(&mut self, bytes: &[u8]) {
        let start = usize::from(self.len);
        let end = start + bytes.len();
        self.data[start..end].copy_from_slice(bytes);
        self.len = end as u8;
    }

    fn bytes(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

/// Turns the bytes of one direction of a WebSocket connection into
/// [`Event`]s. Complete frames lying in the input are delivered without a copy;
/// only frames split across reads and fragmented messages are buffered.
#[derive(Debug)]
pub struct MessageReader {
    max_message_size: usize,
    /// `ReaderLimits::max_fragments`, saturated: no message has 4 billion frames.
    max_fragments: u32,
    require_mask: bool,
    allowed_rsv: u8,
    stage: Stage,
    /// Kind (Text or Binary) of the fragmented message awaiting continuations.
    open: Option<OpCode>,
    /// The data message being read (fragmented or not) is compressed: RSV1
    /// on its first frame. Kept here rather than in every frame so a frame
    /// in progress stays 16 bytes.
    compressed: bool,
    /// Frames of the current data message so far.
    fragments: u32,
    /// Payload of the data message being buffered; unallocated otherwise.
    message: Vec<u8>,
    /// Checks text as it is unmasked, across frame and fragment boundaries.
    utf8: Utf8Validator,
    /// A control frame arriving in pieces, kept apart from `message`.
    control: Option<Box<ControlBuf>>,
}

impl MessageReader {
    /// A reader at the start of a stream.
    pub fn new(limits: ReaderLimits) -> Self {
        Self {
            max_message_size: limits.max_message_size,
            max_fragments: u32::try_from(limits.max_fragments).unwrap_or(u32::MAX),
            require_mask: limits.require_mask,
            allowed_rsv: limits.allowed_rsv,
            stage: BETWEEN_FRAMES,
            open: None,
            compressed: false,
            fragments: 0,
            message: Vec::new(),
            utf8: Utf8Validator::new(),
            control: None,
        }
    }

    /// Feeds the next bytes of the stream. `input` is unmasked in place (it is
    /// the caller's receive buffer), up to the returned count.
    ///
    /// Calls `on_event` for every complete message and control frame, in
    /// stream order. Returns `Ok(consumed)`: all of `input`, except that it
    /// stops right after a `Close` event (`consumed` then ends with the close
    /// frame) or right after an event for which `on_event` returned
    /// `ControlFlow::Break(())`; the caller feeds the rest later.
    ///
    /// Returns `Err` on the first protocol violation, failing as early as the
    /// bytes allow (a size limit on the header, invalid UTF-8 on the byte).
    /// After an `Err` or a `Close` the stream is over and the reader must not
    /// be fed again; an `Err` also releases its buffers.
    pub fn feed<F>(&mut self, input: &mut [u8], on_event: &mut F) -> Result<usize, ProtocolError>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let result = self.feed_frames(input, on_event);
        if result.is_err() {
            *self = Self::new(self.limits());
        }
        result
    }

    /// True when no partial frame or message is buffered: the reader then
    /// holds no heap memory.
    pub fn is_idle(&self) -> bool {
        matches!(self.stage, Stage::Header { len: 0, .. }) && self.open.is_none()
    }

    /// Heap bytes currently held for partial frames and messages.
    pub fn buffered_bytes(&self) -> usize {
        let control = self
            .control
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<ControlBuf>());
        self.message.capacity() + control
    }

    /// The largest message this reader accepts (for compressed messages, the
    /// bound their inflated size must keep too).
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    fn limits(&self) -> ReaderLimits {
        ReaderLimits {
            max_message_size: self.max_message_size,
            max_fragments: self.max_fragments as usize,
            require_mask: self.require_mask,
            allowed_rsv: self.allowed_rsv,
        }
    }

    fn feed_frames<F>(&mut self, input: &mut [u8], on_event: &mut F) -> Result<usize, ProtocolError>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let mut pos = 0;
        // Every step consumes at least one byte, or stops.
        while pos < input.len() {
            let rest = &mut input[pos..];
            let (used, flow) = match &mut self.stage {
                Stage::Payload(frame) => {
                    let frame = *frame;
                    self.continue_frame(frame, rest, on_event)?
                }
                Stage::Header { buf, len } => match take_header(buf, len, rest)? {
                    None => (rest.len(), ControlFlow::Continue(())),
                    Some((header, header_len)) => {
                        let (used, flow) =
                            self.start_frame(header, &mut rest[header_len..], on_event)?;
                        (header_len + used, flow)
                    }
                },
            };
            pos += used;
            if flow.is_break() {
                break;
            }
        }
        Ok(pos)
    }

    /// Handles a frame whose header was just read; `input` starts at its payload.
    fn start_frame<F>(
        &mut self,
        header: FrameHeader,
        input: &mut [u8],
        on_event: &mut F,
    ) -> Result<(usize, ControlFlow<()>), ProtocolError>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let self_contained = header.fin && header.opcode != OpCode::Continuation;
        let frame = self.check_header(header)?;
        // Fast path: a whole message or control frame in the input is unmasked
        // in place and delivered from there, with no copy.
        if self_contained {
            if let Some(payload) = input.get_mut(..frame.remaining) {
                if let Some(key) = frame.mask {
                    apply_mask(payload, key, 0);
                }
                let flow = deliver(frame.opcode, self.compressed, payload, on_event)?;
                return Ok((frame.remaining, flow));
            }
        }
        self.continue_frame(frame, input, on_event)
    }

    /// Applies the rules that need the reader's state (RSV, masking, message
    /// sequencing, limits) and opens the frame.
    fn check_header(&mut self, header: FrameHeader) -> Result<PartialFrame, ProtocolError> {
        if header.rsv & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        // RFC 7692 section 6.1: RSV1 marks the first frame of a compressed
        // message; on a continuation or a control frame it is an error.
        let rsv1 = header.rsv & RSV1 != 0;
        if rsv1 && (header.opcode.is_control() || header.opcode == OpCode::Continuation) {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        if self.require_mask && header.mask.is_none() {
            return Err(ProtocolError::UnmaskedFrame);
        }
        // decode_header bounds control payloads by 125, and data payloads are
        // bounded by max_message_size below, so this saturation never shows.
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        let opcode = match (header.opcode, self.open) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            (OpCode::Continuation, Some(kind)) => kind,
            (opcode, _) => opcode,
        };
        if !opcode.is_control() {
            let continuing = header.opcode == OpCode::Continuation;
            if !continuing {
                self.compressed = rsv1;
            }
            let frames = if continuing {
                self.fragments.saturating_add(1)
            } else {
                1
            };
            if frames > self.max_fragments {
                return Err(ProtocolError::TooManyFragments {
                    limit: self.max_fragments as usize,
                });
            }
            // Deflate can make incompressible data a little larger: the
            // inflated size gets the exact limit, from the caller.
            let limit = if self.compressed {
                compressed_bound(self.max_message_size)
            } else {
                self.max_message_size
            };
            if len > limit.saturating_sub(self.message.len()) {
                return Err(ProtocolError::MessageTooBig {
                    limit: self.max_message_size,
                });
            }
            self.fragments = frames;
            if !header.fin && !continuing {
                self.open = Some(opcode);
            }
        }
        Ok(PartialFrame {
            opcode,
            fin: header.fin,
            mask: header.mask,
            phase: 0,
            remaining: len,
        })
    }

    /// Takes as much of `frame`'s payload as `input` holds: unmasks it in
    /// place, validates text, buffers it, and delivers the message or control
    /// frame once complete.
    fn continue_frame<F>(
        &mut self,
        mut frame: PartialFrame,
        input: &mut [u8],
        on_event: &mut F,
    ) -> Result<(usize, ControlFlow<()>), ProtocolError>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let n = frame.remaining.min(input.len());
        let chunk = &mut input[..n];
        if let Some(key) = frame.mask {
            apply_mask(chunk, key, usize::from(frame.phase));
        }
        frame.phase = ((usize::from(frame.phase) + n) % 4) as u8;
        frame.remaining -= n;

        if frame.opcode.is_control() {
            if n > 0 {
                self.control.get_or_insert_with(ControlBuf::new).push(chunk);
            }
        } else {
            if frame.opcode == OpCode::Text && !self.compressed {
                self.utf8.feed(chunk)?;
            }
            self.buffer(chunk, frame.remaining, frame.fin);
        }
        if frame.remaining > 0 {
            self.stage = Stage::Payload(frame);
            return Ok((n, ControlFlow::Continue(())));
        }

        self.stage = BETWEEN_FRAMES;
        let flow = if frame.opcode.is_control() {
            let control = self.control.take();
            let payload = control.as_deref().map_or(&[][..], ControlBuf::bytes);
            deliver(frame.opcode, false, payload, on_event)?
        } else if frame.fin {
            if frame.opcode == OpCode::Text && !self.compressed {
                self.utf8.finish()?;
            }
            self.open = None;
            // Taking the buffer releases it once the event has been handled.
            let message = std::mem::take(&mut self.message);
            deliver(frame.opcode, self.compressed, &message, on_event)?
        } else {
            ControlFlow::Continue(())
        };
        Ok((n, flow))
    }

    /// Appends data payload to the message buffer. `frame_rest` more bytes of
    /// this frame are promised; `fin` means they end the message. Growth is
    /// geometric but never past what the headers promise or the size limit.
    fn buffer(&mut self, chunk: &[u8], frame_rest: usize, fin: bool) {
        let needed = self.message.len() + chunk.len();
        if needed > self.message.capacity() {
            // check_header guaranteed needed + frame_rest <= max_message_size.
            let ceiling = if fin {
                needed + frame_rest
            } else {
                self.max_message_size
            };
            let target = self
                .message
                .capacity()
                .saturating_mul(2)
                .max(needed + frame_rest.min(READ_AHEAD))
                .min(ceiling)
                .max(needed);
            self.message.reserve_exact(target - self.message.len());
        }
        self.message.extend_from_slice(chunk);
    }
}

/// The most bytes a message of `size` bytes can take compressed: deflate's
/// worst case (stored blocks) with room to spare, as zlib's `deflateBound`.
fn compressed_bound(size: usize) -> usize {
    size.saturating_add(size >> 10).saturating_add(64)
}

/// Reads the next header from the stashed bytes `buf[..len]` followed by
/// `input`. Returns the header and how many bytes of `input` it took, or
/// `None` once all of `input` has been stashed without completing it.
#[inline]
fn take_header(
    buf: &mut [u8; MAX_HEADER_LEN],
    len: &mut u8,
    input: &[u8],
) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    let have = usize::from(*len);
    if have == 0 {
        if let Some(found) = decode_header(input)? {
            return Ok(Some(found));
        }
    }
    let take = input.len().min(MAX_HEADER_LEN - have);
    buf[have..have + take].copy_from_slice(&input[..take]);
    match decode_header(&buf[..have + take])? {
        // The stashed bytes alone were too short, so the header ends inside `input`.
        Some((header, header_len)) => {
            *len = 0;
            Ok(Some((header, header_len - have)))
        }
        // A header is at most 14 bytes, so all of `input` was taken.
        None => {
            *len = (have + take) as u8;
            Ok(None)
        }
    }
}

/// Hands one complete message or control frame to `on_event`; stops after a
/// close.
fn deliver<F>(
    opcode: OpCode,
    compressed: bool,
    payload: &[u8],
    on_event: &mut F,
) -> Result<ControlFlow<()>, ProtocolError>
where
    F: FnMut(Event<'_>) -> ControlFlow<()>,
{
    let event = match opcode {
        OpCode::Text | OpCode::Binary if compressed => Event::Compressed {
            text: opcode == OpCode::Text,
            payload,
        },
        OpCode::Text => Event::Text(as_text(payload)?),
        // Continuations were resolved to their message's kind in check_header.
        OpCode::Binary | OpCode::Continuation => Event::Binary(payload),
        OpCode::Ping => Event::Ping(payload),
        OpCode::Pong => Event::Pong(payload),
        OpCode::Close => Event::Close(parse_close_payload(payload)?),
    };
    let flow = on_event(event);
    Ok(if opcode == OpCode::Close {
        ControlFlow::Break(())
    } else {
        flow
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::encode_header;
    use crate::protocol::writer::{encode_client_frame, encode_frame};

    /// Events delivered, then how the run ended: bytes consumed, or the error.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        events: Vec<OwnedEvent>,
        end: Result<usize, ProtocolError>,
    }

    /// Feeds `stream` in pieces cut at the ascending offsets `cuts`, stopping
    /// at a close or an error, as a connection would.
    fn run_cut(limits: ReaderLimits, stream: &[u8], cuts: &[usize]) -> Outcome {
        let mut reader = MessageReader::new(limits);
        let mut events = Vec::new();
        let mut consumed = 0;
        let mut start = 0;
        for end in cuts.iter().copied().chain([stream.len()]) {
            let mut piece = stream[start..end].to_vec();
            start = end;
            let result = reader.feed(&mut piece, &mut |event| {
                events.push(OwnedEvent::from(event));
                ControlFlow::Continue(())
            });
            match result {
                Err(e) => {
                    assert!(reader.is_idle() && reader.buffered_bytes() == 0, "reset");
                    return Outcome {
                        events,
                        end: Err(e),
                    };
                }
                Ok(n) => {
                    consumed += n;
                    if matches!(events.last(), Some(OwnedEvent::Close(..))) {
                        break;
                    }
                    assert_eq!(n, piece.len(), "consumes everything before a close");
                }
            }
        }
        Outcome {
            events,
            end: Ok(consumed),
        }
    }

    fn run(limits: ReaderLimits, stream: &[u8]) -> Outcome {
        run_cut(limits, stream, &[])
    }

    fn run_bytewise(limits: ReaderLimits, stream: &[u8]) -> Outcome {
        run_cut(limits, stream, &(1..stream.len()).collect::<Vec<_>>())
    }

    /// Appends a masked client frame, with a key that varies along the stream.
    fn frame(out: &mut Vec<u8>, fin: bool, opcode: OpCode, payload: &[u8]) {
        let n = out.len() as u8;
        encode_client_frame(out, fin, opcode, payload, [0x5A ^ n, 0xC3, n, 0x0F]);
    }

    /// Appends a masked frame with an arbitrary header.
    fn raw_frame(out: &mut Vec<u8>, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) {
        let mut header = [0; MAX_HEADER_LEN];
        let key = [1, 2, 3, 4];
        let n = encode_header(
            &mut header,
            fin,
            rsv,
            opcode,
            payload.len() as u64,
            Some(key),
        );
        out.extend_from_slice(&header[..n]);
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key, 0);
    }

    fn close_payload(code: u16, reason: &str) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        payload
    }

    fn big_binary() -> Vec<u8> {
        (0..70_000u32).map(|i| (i % 251) as u8).collect()
    }

    /// Small text, fragmented text with an interleaved ping and a code point
    /// cut between fragments, a 70 KB binary, empty frames, then a close.
    fn mixed_stream() -> (Vec<u8>, Vec<OwnedEvent>) {
        let mut s = Vec::new();
        frame(&mut s, true, OpCode::Text, b"hello");
        frame(&mut s, false, OpCode::Text, "héllo ".as_bytes());
        frame(&mut s, true, OpCode::Ping, b"are you there");
        frame(&mut s, false, OpCode::Continuation, b"w\xC3");
        frame(&mut s, true, OpCode::Continuation, b"\xB6rld");
        frame(&mut s, true, OpCode::Binary, &big_binary());
        frame(&mut s, true, OpCode::Pong, b"");
        frame(&mut s, true, OpCode::Binary, b"");
        frame(&mut s, true, OpCode::Close, &close_payload(1000, "bye"));
        let events = vec![
            OwnedEvent::Text("hello".into()),
            OwnedEvent::Ping(b"are you there".to_vec()),
            OwnedEvent::Text("héllo wörld".into()),
            OwnedEvent::Binary(big_binary()),
            OwnedEvent::Pong(vec![]),
            OwnedEvent::Binary(vec![]),
            OwnedEvent::Close(Some(1000), "bye".into()),
        ];
        (s, events)
    }

    #[test]
    fn reader_stays_small() {
        let size = std::mem::size_of::<MessageReader>();
        println!("size_of::<MessageReader>() = {size}");
        assert!(size < 96, "{size}");
    }

    #[test]
    fn every_event_type() {
        let mut s = Vec::new();
        frame(&mut s, true, OpCode::Text, "κόσμε".as_bytes());
        frame(&mut s, true, OpCode::Binary, &[0, 255, 7]);
        frame(&mut s, true, OpCode::Ping, b"p");
        frame(&mut s, true, OpCode::Pong, b"q");
        frame(&mut s, true, OpCode::Close, &close_payload(4000, "done ✓"));
        let expected = vec![
            OwnedEvent::Text("κόσμε".into()),
            OwnedEvent::Binary(vec![0, 255, 7]),
            OwnedEvent::Ping(b"p".to_vec()),
            OwnedEvent::Pong(b"q".to_vec()),
            OwnedEvent::Close(Some(4000), "done ✓".into()),
        ];
        let limits = ReaderLimits::default();
        assert_eq!(run(limits, &s).events, expected);
        assert_eq!(run(limits, &s).end, Ok(s.len()));
        assert_eq!(run_bytewise(limits, &s), run(limits, &s));

        let mut empty_close = Vec::new();
        frame(&mut empty_close, true, OpCode::Close, b"");
        assert_eq!(
            run(limits, &empty_close).events,
            [OwnedEvent::Close(None, String::new())]
        );
    }

    #[test]
    fn length_encodings() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut s = Vec::new();
            frame(&mut s, true, OpCode::Binary, &payload);
            let expected = Outcome {
                events: vec![OwnedEvent::Binary(payload)],
                end: Ok(s.len()),
            };
            assert_eq!(run(ReaderLimits::default(), &s), expected, "{len}");
            assert_eq!(run_bytewise(ReaderLimits::default(), &s), expected, "{len}");
        }
    }

    #[test]
    fn fragmentation_with_interleaved_control_frames() {
        let mut s = Vec::new();
        frame(&mut s, false, OpCode::Binary, b"ab");
        frame(&mut s, true, OpCode::Ping, b"1");
        frame(&mut s, false, OpCode::Continuation, b"");
        frame(&mut s, true, OpCode::Pong, b"2");
        frame(&mut s, true, OpCode::Ping, b"3");
        frame(&mut s, true, OpCode::Continuation, b"cd");
        frame(&mut s, true, OpCode::Text, b"next");
        let expected = vec![
            OwnedEvent::Ping(b"1".to_vec()),
            OwnedEvent::Pong(b"2".to_vec()),
            OwnedEvent::Ping(b"3".to_vec()),
            OwnedEvent::Binary(b"abcd".to_vec()),
            OwnedEvent::Text("next".into()),
        ];
        let limits = ReaderLimits::default();
        assert_eq!(run(limits, &s).events, expected);
        assert_eq!(run_bytewise(limits, &s).events, expected);
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let (s, expected) = mixed_stream();
        let limits = ReaderLimits::default();
        let whole = run(limits, &s);
        assert_eq!(whole.events, expected);
        assert_eq!(whole.end, Ok(s.len()));
        assert_eq!(run_bytewise(limits, &s), whole, "byte by byte");
        for cut in 0..=s.len() {
            assert_eq!(run_cut(limits, &s, &[cut]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn random_splits_of_random_streams_agree() {
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |bound: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % bound as u64) as usize
        };
        let limits = ReaderLimits {
            max_message_size: 300,
            max_fragments: 4,
            ..ReaderLimits::default()
        };
        let alphabet: [&[u8]; 4] = [b"a", "é".as_bytes(), "€".as_bytes(), "😀".as_bytes()];
        let broken: [&[u8]; 3] = [b"\xC3", b"\xED\xA0", b"\xFF"];
        // Rounds that ended cleanly, with a close, with an error; events seen.
        let (mut clean, mut closed, mut failed, mut events) = (0, 0, 0, 0);
        for round in 0..2000 {
            let mut s = Vec::new();
            let mut open = false;
            for _ in 0..next(8) {
                let mut payload = Vec::new();
                for _ in 0..next(40) {
                    payload.extend_from_slice(alphabet[next(alphabet.len())]);
                }
                if next(8) == 0 {
                    let at = next(payload.len() + 1);
                    payload.splice(at..at, broken[next(broken.len())].iter().copied());
                }
                // Mostly a valid sequence of frames, sometimes any opcode.
                let opcode = match next(10) {
                    0 => OpCode::Ping,
                    1 => OpCode::Pong,
                    2 => [OpCode::Continuation, OpCode::Text, OpCode::Binary][next(3)],
                    _ if open => OpCode::Continuation,
                    _ => [OpCode::Text, OpCode::Binary][next(2)],
                };
                let fin = opcode.is_control() || next(3) != 0;
                if !opcode.is_control() {
                    open = !fin;
                }
                frame(&mut s, fin, opcode, &payload);
            }
            let closes: [&[u8]; 5] = [b"", b"\x03", b"\x03\xE8bye", b"\x03\xEDx", b"\x0F\xA0\xFF"];
            if next(2) == 0 {
                frame(&mut s, true, OpCode::Close, closes[next(closes.len())]);
            }
            // Corrupt some streams: a flipped bit, a trailing unmasked frame.
            if !s.is_empty() && next(5) == 0 {
                let at = next(s.len());
                s[at] ^= 1 << next(8);
            }
            if next(10) == 0 {
                encode_frame(&mut s, OpCode::Text, b"unmasked");
            }
            let whole = run(limits, &s);
            assert_eq!(run_bytewise(limits, &s), whole, "round {round}");
            let mut cuts: Vec<usize> = (0..next(6)).map(|_| next(s.len() + 1)).collect();
            cuts.sort_unstable();
            assert_eq!(run_cut(limits, &s, &cuts), whole, "round {round} {cuts:?}");
            events += whole.events.len();
            match (&whole.end, whole.events.last()) {
                (Err(_), _) => failed += 1,
                (Ok(_), Some(OwnedEvent::Close(..))) => closed += 1,
                (Ok(_), _) => clean += 1,
            }
        }
        println!("{clean} clean, {closed} closed, {failed} failed, {events} events");
        assert!(clean > 200 && closed > 200 && failed > 200 && events > 2000);
    }

    #[test]
    fn errors_and_their_close_codes() {
        use ProtocolError::*;
        let limits = ReaderLimits {
            max_message_size: 10,
            max_fragments: 3,
            ..ReaderLimits::default()
        };
        let stream = |build: &dyn Fn(&mut Vec<u8>)| {
            let mut s = Vec::new();
            build(&mut s);
            s
        };
        let cases: Vec<(Vec<u8>, ProtocolError, u16)> = vec![
            (
                stream(&|s| encode_frame(s, OpCode::Text, b"hi")),
                UnmaskedFrame,
                1002,
            ),
            (
                stream(&|s| raw_frame(s, true, 0b100, OpCode::Text, b"hi")),
                ReservedBits(0b100),
                1002,
            ),
            (
                stream(&|s| raw_frame(s, true, 0b011, OpCode::Ping, b"")),
                ReservedBits(0b011),
                1002,
            ),
            (vec![0x83, 0x80, 0, 0, 0, 0], ReservedOpcode(3), 1002),
            (vec![0x8F, 0x80, 0, 0, 0, 0], ReservedOpcode(15), 1002),
            (
                stream(&|s| frame(s, false, OpCode::Ping, b"")),
                FragmentedControl,
                1002,
            ),
            (
                stream(&|s| frame(s, true, OpCode::Ping, &[0; 126])),
                ControlTooLong(126),
                1002,
            ),
            (
                stream(&|s| frame(s, true, OpCode::Continuation, b"x")),
                UnexpectedContinuation,
                1002,
            ),
            (
                stream(&|s| {
                    frame(s, false, OpCode::Text, b"a");
                    frame(s, true, OpCode::Binary, b"b");
                }),
                ExpectedContinuation,
                1002,
            ),
            (
                vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
                LengthOverflow,
                1002,
            ),
            (
                vec![0x82, 0xFE, 0, 5, 1, 2, 3, 4, 0, 0, 0, 0, 0],
                NonMinimalLength,
                1002,
            ),
            (
                stream(&|s| frame(s, true, OpCode::Text, b"\xC0\xAF")),
                InvalidUtf8,
                1007,
            ),
            (
                stream(&|s| {
                    frame(s, false, OpCode::Text, b"ok\xE2\x82");
                    frame(s, true, OpCode::Continuation, b"");
                }),
                InvalidUtf8,
                1007,
            ),
            (
                stream(&|s| frame(s, true, OpCode::Close, &close_payload(1005, ""))),
                InvalidCloseCode(1005),
                1002,
            ),
            (
                stream(&|s| frame(s, true, OpCode::Close, &[3])),
                CloseTooShort,
                1002,
            ),
            (
                stream(&|s| frame(s, true, OpCode::Close, &[3, 0xE8, 0xFF])),
                InvalidUtf8,
                1007,
            ),
            (
                stream(&|s| frame(s, true, OpCode::Binary, &[0; 11])),
                MessageTooBig { limit: 10 },
                1009,
            ),
            (
                stream(&|s| {
                    frame(s, false, OpCode::Binary, &[0; 6]);
                    frame(s, true, OpCode::Continuation, &[0; 5]);
                }),
                MessageTooBig { limit: 10 },
                1009,
            ),
            (
                stream(&|s| {
                    for _ in 0..3 {
                        frame(s, false, OpCode::Continuation, b"");
                    }
                }),
                UnexpectedContinuation,
                1002,
            ),
            (
                stream(&|s| {
                    frame(s, false, OpCode::Text, b"a");
                    for _ in 0..3 {
                        frame(s, false, OpCode::Continuation, b"b");
                    }
                }),
                TooManyFragments { limit: 3 },
                1009,
            ),
        ];
        for (s, err, code) in cases {
            let whole = run(limits, &s);
            assert_eq!(whole.end, Err(err.clone()), "{s:02X?}");
            assert_eq!(err.close_code(), code);
            assert_eq!(run_bytewise(limits, &s), whole, "{err:?} byte by byte");
        }
    }

    #[test]
    fn limits_are_enforced_from_the_header() {
        let limits = ReaderLimits::default();
        let mut header = [0; MAX_HEADER_LEN];
        let n = encode_header(
            &mut header,
            true,
            0,
            OpCode::Binary,
            (16 << 20) + 1,
            Some([1; 4]),
        );
        let mut reader = MessageReader::new(limits);
        let result = reader.feed(&mut header[..n], &mut |_| ControlFlow::Continue(()));
        assert_eq!(
            result,
            Err(ProtocolError::MessageTooBig { limit: 16 << 20 })
        );
        assert_eq!(reader.buffered_bytes(), 0);

        // A header promising the maximum reserves only a bounded read-ahead.
        let mut reader = MessageReader::new(limits);
        let n = encode_header(&mut header, true, 0, OpCode::Binary, 16 << 20, Some([1; 4]));
        let mut input = header[..n].to_vec();
        input.push(0);
        assert_eq!(
            reader.feed(&mut input, &mut |_| ControlFlow::Continue(())),
            Ok(input.len())
        );
        assert!(!reader.is_idle());
        assert!(
            reader.buffered_bytes() <= READ_AHEAD + 1,
            "{}",
            reader.buffered_bytes()
        );
    }

    #[test]
    fn buffers_grow_within_what_headers_promise() {
        let limits = ReaderLimits {
            max_message_size: 1_000_000,
            ..ReaderLimits::default()
        };
        // One large frame in 999-byte reads: never more than its exact size.
        let payload = vec![7u8; 1_000_000];
        let mut s = Vec::new();
        frame(&mut s, true, OpCode::Binary, &payload);
        let mut reader = MessageReader::new(limits);
        let mut delivered = 0;
        for piece in s.chunks(999) {
            let mut piece = piece.to_vec();
            reader
                .feed(&mut piece, &mut |event| {
                    assert_eq!(event, Event::Binary(&payload));
                    delivered += 1;
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert!(reader.buffered_bytes() <= payload.len());
        }
        assert_eq!(delivered, 1);
        assert!(reader.is_idle() && reader.buffered_bytes() == 0);

        // Fragments: never more than the limit.
        let mut s = Vec::new();
        for _ in 0..9 {
            frame(&mut s, false, OpCode::Continuation, &[1; 100_000]);
        }
        s.splice(0..0, {
            let mut first = Vec::new();
            frame(&mut first, false, OpCode::Binary, &[1; 50_000]);
            first
        });
        let mut reader = MessageReader::new(limits);
        for piece in s.chunks(4096) {
            let mut piece = piece.to_vec();
            reader
                .feed(&mut piece, &mut |_| ControlFlow::Continue(()))
                .unwrap();
            assert!(reader.buffered_bytes() <= limits.max_message_size);
        }
        assert_eq!(reader.message.len(), 950_000);
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_ends() {
        let limits = ReaderLimits::default();
        // Autobahn 6.4.1: a code point past U+10FFFF mid-frame; the frame's tail never arrives.
        let mut payload = "κόσμε".as_bytes().to_vec();
        let bad = payload.len() + 1;
        payload.extend_from_slice(b"\xF4\x90\x80\x80edited");
        let mut s = Vec::new();
        frame(&mut s, true, OpCode::Text, &payload);
        let header_len = s.len() - payload.len();
        let mut reader = MessageReader::new(limits);
        for (i, byte) in s.iter().enumerate() {
            let result = reader.feed(&mut [*byte], &mut |_| ControlFlow::Continue(()));
            if i < header_len + bad {
                assert_eq!(result, Ok(1), "byte {i}");
            } else {
                assert_eq!(result, Err(ProtocolError::InvalidUtf8), "byte {i}");
                assert_eq!(i, header_len + bad);
                break;
            }
        }

        // Across fragments: `E2 82` is a fine prefix, `41` after it is not.
        let mut s = Vec::new();
        frame(&mut s, false, OpCode::Text, b"ok\xE2\x82");
        frame(&mut s, true, OpCode::Continuation, b"Atail");
        let bad = s.len() - 5;
        let mut reader = MessageReader::new(limits);
        let mut input = s[..bad].to_vec();
        assert_eq!(
            reader.feed(&mut input, &mut |_| ControlFlow::Continue(())),
            Ok(bad)
        );
        let result = reader.feed(&mut s[bad..bad + 1].to_vec(), &mut |_| {
            ControlFlow::Continue(())
        });
        assert_eq!(result, Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn whole_frames_are_zero_copy() {
        let mut s = Vec::new();
        frame(&mut s, true, OpCode::Text, b"zero");
        frame(&mut s, true, OpCode::Ping, b"copy");
        frame(&mut s, true, OpCode::Binary, &[9; 1000]);
        let range = s.as_ptr_range();
        let mut reader = MessageReader::new(ReaderLimits::default());
        let mut seen = 0;
        let result = reader.feed(&mut s, &mut |event| {
            let payload = match event {
                Event::Text(t) => t.as_bytes(),
                Event::Binary(b) | Event::Ping(b) => b,
                other => panic!("{other:?}"),
            };
            assert!(range.contains(&payload.as_ptr()), "borrows the input");
            seen += 1;
            ControlFlow::Continue(())
        });
        assert_eq!(result, Ok(s.len()));
        assert_eq!(seen, 3);
        assert!(reader.is_idle() && reader.buffered_bytes() == 0);
    }

    #[test]
    fn idle_and_buffered_bytes() {
        let mut reader = MessageReader::new(ReaderLimits::default());
        let mut ignore = |_: Event<'_>| ControlFlow::Continue(());
        assert!(reader.is_idle() && reader.buffered_bytes() == 0);

        let mut s = Vec::new();
        frame(&mut s, false, OpCode::Text, b"part one");
        frame(&mut s, true, OpCode::Ping, b"ping payload");
        frame(&mut s, true, OpCode::Continuation, b", part two");
        let ping = 14..14 + 18;

        // A split header holds no heap.
        reader.feed(&mut s[..3], &mut ignore).unwrap();
        assert!(!reader.is_idle() && reader.buffered_bytes() == 0);
        reader.feed(&mut s[3..ping.start + 9], &mut ignore).unwrap();
        // A fragmented message and a control frame in pieces are buffered apart.
        assert!(!reader.is_idle());
        assert!(reader.control.is_some() && reader.message == b"part one");
        let mut events = Vec::new();
        reader
            .feed(&mut s[ping.start + 9..], &mut |e| {
                events.push(OwnedEvent::from(e));
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(
            events,
            [
                OwnedEvent::Ping(b"ping payload".to_vec()),
                OwnedEvent::Text("part one, part two".into())
            ]
        );
        assert!(reader.is_idle() && reader.buffered_bytes() == 0);
    }

    #[test]
    fn stops_after_close_and_on_break() {
        let mut s = Vec::new();
        frame(&mut s, true, OpCode::Ping, b"a");
        frame(&mut s, true, OpCode::Text, b"b");
        frame(&mut s, true, OpCode::Close, b"");
        let close_end = s.len();
        frame(&mut s, true, OpCode::Text, b"after close");
        let original = s.clone();

        let mut reader = MessageReader::new(ReaderLimits::default());
        let mut events = Vec::new();
        let mut on_event = |e: Event<'_>| {
            let stop = matches!(e, Event::Ping(_));
            events.push(OwnedEvent::from(e));
            if stop {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let first = reader.feed(&mut s, &mut on_event).unwrap();
        assert_eq!(first, 7, "stops right after the ping");
        let rest = reader.feed(&mut s[first..], &mut on_event).unwrap();
        assert_eq!(first + rest, close_end, "stops right after the close");
        assert_eq!(
            s[close_end..],
            original[close_end..],
            "bytes after the close untouched"
        );
        assert_eq!(
            events,
            [
                OwnedEvent::Ping(b"a".to_vec()),
                OwnedEvent::Text("b".into()),
                OwnedEvent::Close(None, String::new())
            ]
        );
    }

    #[test]
    fn optional_masks_and_allowed_rsv() {
        let limits = ReaderLimits {
            require_mask: false,
            allowed_rsv: 0b100,
            ..ReaderLimits::default()
        };
        let mut s = Vec::new();
        encode_frame(&mut s, OpCode::Text, b"server style");
        frame(&mut s, true, OpCode::Binary, b"masked");
        raw_frame(&mut s, true, 0b100, OpCode::Text, b"rsv1");
        raw_frame(&mut s, true, 0b010, OpCode::Text, b"rsv2");
        let outcome = run(limits, &s);
        assert_eq!(
            outcome.events,
            [
                OwnedEvent::Text("server style".into()),
                OwnedEvent::Binary(b"masked".to_vec()),
                OwnedEvent::Compressed(true, b"rsv1".to_vec())
            ]
        );
        assert_eq!(outcome.end, Err(ProtocolError::ReservedBits(0b010)));
        assert_eq!(run_bytewise(limits, &s), outcome);
    }

    /// RFC 7692 section 6.1: RSV1 on a message's first frame only; the
    /// compressed message is joined but neither inflated nor UTF-8 checked.
    #[test]
    fn compressed_messages() {
        let deflate = ReaderLimits {
            allowed_rsv: RSV1,
            max_message_size: 16,
            ..ReaderLimits::default()
        };
        let mut s = Vec::new();
        raw_frame(&mut s, false, RSV1, OpCode::Text, b"\xff\xfe");
        frame(&mut s, true, OpCode::Ping, b"p");
        frame(&mut s, true, OpCode::Continuation, b"\xc0");
        frame(&mut s, true, OpCode::Text, b"plain");
        raw_frame(&mut s, true, RSV1, OpCode::Binary, &[7; 80]);
        let good = s.clone();
        let outcome = run(deflate, &s);
        assert_eq!(
            outcome.events,
            [
                OwnedEvent::Ping(b"p".to_vec()),
                OwnedEvent::Compressed(true, b"\xff\xfe\xc0".to_vec()),
                OwnedEvent::Text("plain".into()),
                OwnedEvent::Compressed(false, vec![7; 80]),
            ]
        );
        assert_eq!(outcome.end, Ok(s.len()));
        assert_eq!(run_bytewise(deflate, &s), outcome);

        let mut bad_continuation = Vec::new();
        frame(&mut bad_continuation, false, OpCode::Text, b"a");
        raw_frame(
            &mut bad_continuation,
            true,
            RSV1,
            OpCode::Continuation,
            b"b",
        );
        let mut bad_control = Vec::new();
        raw_frame(&mut bad_control, true, RSV1, OpCode::Ping, b"");
        let mut too_big = Vec::new();
        raw_frame(&mut too_big, false, RSV1, OpCode::Binary, &[0; 70]);
        frame(&mut too_big, true, OpCode::Continuation, &[0; 11]);
        let cases = [
            (
                deflate,
                &bad_continuation,
                ProtocolError::ReservedBits(RSV1),
            ),
            (deflate, &bad_control, ProtocolError::ReservedBits(RSV1)),
            (
                deflate,
                &too_big,
                ProtocolError::MessageTooBig { limit: 16 },
            ),
            (
                ReaderLimits::default(),
                &good,
                ProtocolError::ReservedBits(RSV1),
            ),
        ];
        for (limits, stream, error) in cases {
            assert_eq!(run(limits, stream).end, Err(error.clone()), "{stream:?}");
            assert_eq!(run_bytewise(limits, stream).end, Err(error));
        }
    }
}
