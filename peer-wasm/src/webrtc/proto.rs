//! The two wire messages of libp2p WebRTC, hand-encoded (each has two optional fields, which
//! does not justify a protobuf code generator):
//!
//! - the signalling message of `/webrtc-signaling/0.0.1` (proto3): `type` (field 1: offer,
//!   answer, ICE candidate) and `data` (field 2: the SDP, or a candidate as JSON);
//! - the frame every data-channel message carries (proto2): `flag` (field 1: FIN,
//!   STOP_SENDING, RESET, FIN_ACK) and `message` (field 2: stream bytes).
//!
//! Both travel with an unsigned-varint length prefix, and neither may exceed [`MAX_MESSAGE`]
//! bytes, prefix included. Decoding skips unknown fields, as protobuf readers must, and refuses
//! anything truncated or oversized with an error that says what was wrong.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest message, length prefix included (the spec's 16 KiB).
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Most stream bytes one frame carries: [`MAX_MESSAGE`] less the prefix (2), the field key (1),
/// the length (2) and room for a flag (2). Equal to js-libp2p's figure.
pub const MAX_FRAME_DATA: usize = MAX_MESSAGE - 7;

const FIELD_1_VARINT: u8 = 1 << 3;
const FIELD_2_BYTES: u8 = (2 << 3) | 2;

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn put_varint(out: &mut Vec<u8>, value: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(value, &mut buf));
}

/// Reads one varint from the front of `bytes`, returning it and the rest.
fn take_varint(bytes: &[u8]) -> io::Result<(u64, &[u8])> {
    unsigned_varint::decode::u64(bytes).map_err(|e| invalid(format!("bad varint: {e}")))
}

/// The fields of a two-field message: field 1 as a varint, field 2 as bytes. Unknown fields
/// are skipped; a repeated field keeps its last value, as protobuf says.
fn decode_fields(mut bytes: &[u8]) -> io::Result<(Option<u64>, Option<&[u8]>)> {
    let (mut one, mut two) = (None, None);
    while !bytes.is_empty() {
        let (key, rest) = take_varint(bytes)?;
        bytes = rest;
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                let (value, rest) = take_varint(bytes)?;
                bytes = rest;
                if field == 1 {
                    one = Some(value);
                }
            }
            2 => {
                let (len, rest) = take_varint(bytes)?;
                let len = usize::try_from(len).map_err(|_| invalid("field too long"))?;
                if rest.len() < len {
                    return Err(invalid("truncated field"));
                }
                if field == 2 {
                    two = Some(&rest[..len]);
                }
                bytes = &rest[len..];
            }
            1 | 5 => {
                let len = if wire_type == 1 { 8 } else { 4 };
                bytes = bytes.get(len..).ok_or_else(|| invalid("truncated field"))?;
            }
            other => return Err(invalid(format!("unsupported wire type {other}"))),
        }
    }
    Ok((one, two))
}

fn encode_fields(one: Option<u64>, two: Option<&[u8]>) -> Vec<u8> {
    let mut message = Vec::with_capacity(two.map_or(0, <[u8]>::len) + 16);
    encode_fields_into(&mut message, one, two);
    message
}

/// [`encode_fields`] appended to `out`, the bytes copied once (a data frame's 64 KiB were
/// copied three times on their way out before).
fn encode_fields_into(out: &mut Vec<u8>, one: Option<u64>, two: Option<&[u8]>) {
    let varint_len = |value: u64| unsigned_varint::encode::u64(value, &mut [0; 10]).len();
    let body_len = one.map_or(0, |v| 1 + varint_len(v))
        + two.map_or(0, |b| 1 + varint_len(b.len() as u64) + b.len());
    out.reserve(body_len + 3);
    put_varint(out, body_len as u64);
    if let Some(value) = one {
        out.push(FIELD_1_VARINT);
        put_varint(out, value);
    }
    if let Some(bytes) = two {
        out.push(FIELD_2_BYTES);
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

/// What a signalling message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// The initiator's SDP offer.
    Offer,
    /// The responder's SDP answer.
    Answer,
    /// One ICE candidate, as the JSON of `RTCIceCandidate.toJSON()`.
    Candidate,
}

/// One message of `/webrtc-signaling/0.0.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// What it is.
    pub kind: SignalKind,
    /// The SDP or the candidate's JSON; `None` when absent on the wire.
    pub data: Option<String>,
}

impl Signal {
    /// The bytes on the wire, length prefix included. The type is always written, even when
    /// it is 0 (an offer): js-libp2p expects it.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        let kind = match self.kind {
            SignalKind::Offer => 0,
            SignalKind::Answer => 1,
            SignalKind::Candidate => 2,
        };
        let message = encode_fields(Some(kind), self.data.as_deref().map(str::as_bytes));
        if message.len() > MAX_MESSAGE {
            return Err(invalid(format!(
                "a signalling message of {} bytes is over the {MAX_MESSAGE}-byte limit",
                message.len()
            )));
        }
        Ok(message)
    }

    /// Parses a message body (without its length prefix).
    pub fn decode(body: &[u8]) -> io::Result<Self> {
        let (kind, data) = decode_fields(body)?;
        let kind = match kind.unwrap_or(0) {
            0 => SignalKind::Offer,
            1 => SignalKind::Answer,
            2 => SignalKind::Candidate,
            other => return Err(invalid(format!("unknown signalling message type {other}"))),
        };
        let data = data
            .map(|d| String::from_utf8(d.to_vec()).map_err(|_| invalid("data is not UTF-8")))
            .transpose()?;
        Ok(Self { kind, data })
    }
}

/// Writes one signalling message and flushes it.
pub async fn write_signal(io: &mut (impl AsyncWrite + Unpin), signal: &Signal) -> io::Result<()> {
    io.write_all(&signal.encode()?).await?;
    io.flush().await
}

/// Reads one signalling message, refusing any over [`MAX_MESSAGE`] before reading its body.
pub async fn read_signal(io: &mut (impl AsyncRead + Unpin)) -> io::Result<Signal> {
    let mut prefix = Vec::with_capacity(3);
    let len = loop {
        let mut byte = [0u8];
        io.read_exact(&mut byte).await?;
        prefix.push(byte[0]);
        if byte[0] & 0x80 == 0 {
            break take_varint(&prefix)?.0;
        }
        if prefix.len() >= 3 {
            return Err(invalid("signalling message length prefix too long"));
        }
    };
    let len = usize::try_from(len).map_err(|_| invalid("length overflow"))?;
    if len + prefix.len() > MAX_MESSAGE {
        return Err(invalid(format!(
            "a signalling message of {len} bytes is over the {MAX_MESSAGE}-byte limit"
        )));
    }
    let mut body = vec![0; len];
    io.read_exact(&mut body).await?;
    Signal::decode(&body)
}

/// A frame's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// The sender will write no more.
    Fin,
    /// The sender will read no more.
    StopSending,
    /// The stream is aborted both ways.
    Reset,
    /// The answer to [`Flag::Fin`]: the receiver saw the end.
    FinAck,
    /// Not in the spec (value 4): on a data channel marked for reuse, the side that did not
    /// open it is done with its stream and keeps the channel for the next one
    /// ([`super::reuse`]). Sent only to Jellyfish peers that marked the channel.
    Ready,
}

impl Flag {
    /// The flag's number on the wire.
    fn wire_value(self) -> u64 {
        match self {
            Flag::Fin => 0,
            Flag::StopSending => 1,
            Flag::Reset => 2,
            Flag::FinAck => 3,
            Flag::Ready => 4,
        }
    }
}

/// One data-channel message: a flag, stream bytes, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The flag, if any.
    pub flag: Option<Flag>,
    /// Stream bytes (empty when none).
    pub data: Vec<u8>,
}

impl Frame {
    /// A frame of stream bytes; at most [`MAX_FRAME_DATA`] of them.
    pub fn data(data: Vec<u8>) -> Self {
        Self { flag: None, data }
    }

    /// A frame with only a flag.
    pub fn flag(flag: Flag) -> Self {
        Self {
            flag: Some(flag),
            data: Vec::new(),
        }
    }

    /// The bytes of one data-channel message, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let data = (!self.data.is_empty()).then_some(self.data.as_slice());
        encode_fields(self.flag.map(Flag::wire_value), data)
    }

    /// Appends a frame of `flag` and `data` to `out` without building the [`Frame`] first (a
    /// write's bytes go from the caller's buffer to the message in one copy).
    pub fn encode_data_into(out: &mut Vec<u8>, flag: Option<Flag>, data: &[u8]) {
        let data = (!data.is_empty()).then_some(data);
        encode_fields_into(out, flag.map(Flag::wire_value), data);
    }

    fn decode(body: &[u8]) -> io::Result<Self> {
        let (flag, data) = decode_fields(body)?;
        let flag = match flag {
            None => None,
            Some(0) => Some(Flag::Fin),
            Some(1) => Some(Flag::StopSending),
            Some(2) => Some(Flag::Reset),
            Some(3) => Some(Flag::FinAck),
            Some(4) => Some(Flag::Ready),
            Some(other) => return Err(invalid(format!("unknown frame flag {other}"))),
        };
        Ok(Self {
            flag,
            data: data.map(<[u8]>::to_vec).unwrap_or_default(),
        })
    }
}

/// Turns data-channel messages back into frames. Senders put one frame in each message, but
/// the input is treated as a byte stream, so a frame split across messages (or several in one)
/// decodes all the same.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
}

impl FrameDecoder {
    /// Most bytes a frame may announce. Generous beyond the spec's 16 KiB, because nothing is
    /// gained by refusing a peer that sends bigger frames, but bounded.
    pub const MAX_FRAME: usize = 256 * 1024;

    /// Adds a received message and returns every frame now complete.
    pub fn push(&mut self, message: &[u8]) -> io::Result<Vec<Frame>> {
        self.buffer.extend_from_slice(message);
        let mut frames = Vec::new();
        loop {
            if self.buffer.is_empty() {
                break;
            }
            let (len, rest) = match unsigned_varint::decode::u64(&self.buffer) {
                Ok(parsed) => parsed,
                Err(unsigned_varint::decode::Error::Insufficient) => break,
                Err(e) => return Err(invalid(format!("bad frame length: {e}"))),
            };
            let len = usize::try_from(len).map_err(|_| invalid("frame length overflow"))?;
            if len > Self::MAX_FRAME {
                return Err(invalid(format!("a frame of {len} bytes is too large")));
            }
            if rest.len() < len {
                break;
            }
            let prefix = self.buffer.len() - rest.len();
            frames.push(Frame::decode(&rest[..len])?);
            self.buffer.drain(..prefix + len);
        }
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn signals_match_hand_made_bytes() {
        // An offer: type 0 is written explicitly, then the SDP.
        let offer = Signal {
            kind: SignalKind::Offer,
            data: Some("v=0".into()),
        };
        assert_eq!(
            offer.encode().unwrap(),
            [7, 0x08, 0, 0x12, 3, b'v', b'=', b'0']
        );
        // What js-libp2p might send for an end-of-candidates: "null", absent or empty data.
        for (bytes, data) in [
            (
                &[0x08, 2, 0x12, 4, b'n', b'u', b'l', b'l'][..],
                Some("null"),
            ),
            (&[0x08, 2][..], None),
            (&[0x08, 2, 0x12, 0][..], Some("")),
        ] {
            let signal = Signal::decode(bytes).unwrap();
            assert_eq!(signal.kind, SignalKind::Candidate);
            assert_eq!(signal.data.as_deref(), data);
        }
        // A missing type is the proto3 default, 0: an offer.
        assert_eq!(Signal::decode(&[]).unwrap().kind, SignalKind::Offer);
        assert!(Signal::decode(&[0x08, 9]).is_err(), "unknown type");
        assert!(Signal::decode(&[0x12, 5, b'a']).is_err(), "truncated");
        assert!(Signal::decode(&[0x12, 1, 0xff]).is_err(), "not UTF-8");
        // Unknown fields are skipped.
        let with_extra = [0x08, 1, 0x18, 7, 0x22, 1, b'x', 0x12, 1, b'a'];
        let answer = Signal::decode(&with_extra).unwrap();
        assert_eq!(
            (answer.kind, answer.data.as_deref()),
            (SignalKind::Answer, Some("a"))
        );
    }

    #[test]
    fn signals_round_trip_through_a_stream_and_respect_the_cap() {
        futures::executor::block_on(async {
            let big = "a".repeat(MAX_MESSAGE);
            let too_big = Signal {
                kind: SignalKind::Offer,
                data: Some(big),
            };
            assert!(too_big.encode().is_err());

            let sdp = Signal {
                kind: SignalKind::Answer,
                data: Some("x".repeat(MAX_MESSAGE - 8)),
            };
            let mut wire = Vec::new();
            write_signal(&mut wire, &sdp).await.unwrap();
            assert!(wire.len() <= MAX_MESSAGE);
            let mut reader = futures::io::Cursor::new(wire);
            assert_eq!(read_signal(&mut reader).await.unwrap(), sdp);

            // A prefix announcing more than the cap is refused before the body is read.
            let mut liar = futures::io::Cursor::new(vec![0x80, 0x80, 0x02]);
            assert!(read_signal(&mut liar).await.is_err());
        });
    }

    #[test]
    fn frames_round_trip_and_survive_splitting() {
        let frames = [
            Frame::data(vec![1, 2, 3]),
            Frame::flag(Flag::Fin),
            Frame::flag(Flag::FinAck),
            Frame {
                flag: Some(Flag::StopSending),
                data: vec![9; MAX_FRAME_DATA],
            },
            Frame::flag(Flag::Reset),
            Frame::flag(Flag::Ready),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        // Several frames appended to one message: the same bytes as one message each.
        let mut appended = vec![0xAA];
        frames
            .iter()
            .for_each(|f| Frame::encode_data_into(&mut appended, f.flag, &f.data));
        assert_eq!(appended[1..], wire[..]);
        let big = vec![5; 64 * 1024 - 16];
        let mut message = Vec::new();
        Frame::encode_data_into(&mut message, None, &big);
        assert_eq!(message, Frame::data(big).encode());
        assert!(frames.iter().all(|f| f.encode().len() <= MAX_MESSAGE));
        // FIN is flag 0 and must still be written.
        assert_eq!(Frame::flag(Flag::Fin).encode(), [2, 0x08, 0]);
        assert_eq!(Frame::flag(Flag::Ready).encode(), [2, 0x08, 4]);

        for chunk in [1, 2, 7, 100, wire.len()] {
            let mut decoder = FrameDecoder::default();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                got.extend(decoder.push(piece).unwrap());
            }
            assert_eq!(got, frames, "chunks of {chunk}");
        }
    }

    #[test]
    fn bad_frames_are_refused() {
        assert!(
            FrameDecoder::default().push(&[2, 0x08, 7]).is_err(),
            "unknown flag"
        );
        let huge = {
            let mut prefix = Vec::new();
            put_varint(&mut prefix, (FrameDecoder::MAX_FRAME + 1) as u64);
            prefix
        };
        assert!(FrameDecoder::default().push(&huge).is_err(), "oversized");
        assert!(
            FrameDecoder::default().push(&[0xff; 11]).is_err(),
            "bad varint"
        );
    }
}
