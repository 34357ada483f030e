//! The state of one libp2p stream over a data channel, as the spec's flags move it: each side
//! may finish writing (FIN, acknowledged by FIN_ACK), ask the other to stop sending
//! (STOP_SENDING), or abort both ways (RESET). Pure, so every transition is tested natively;
//! the browser stream (`browser::channel`) only moves bytes and wakes tasks.

use std::io;

use super::proto::{Flag, Frame};

/// The reading half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadHalf {
    /// Data may still arrive.
    Open,
    /// The remote sent FIN: what is buffered is all there will be.
    Finished,
    /// The stream was reset.
    Reset,
}

/// The writing half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteHalf {
    /// Writes go out.
    Open,
    /// FIN sent; waiting for the remote's FIN_ACK.
    Closing,
    /// FIN acknowledged (or given up waiting for).
    Closed,
    /// The remote sent STOP_SENDING: it reads no more.
    Stopped,
    /// The stream was reset.
    Reset,
}

/// Both halves of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    /// The reading half.
    pub read: ReadHalf,
    /// The writing half.
    pub write: WriteHalf,
}

impl Default for StreamState {
    fn default() -> Self {
        Self {
            read: ReadHalf::Open,
            write: WriteHalf::Open,
        }
    }
}

/// What one received frame means for the reader and the remote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Bytes for the reader (none once the read half is closed).
    pub data: Vec<u8>,
    /// A flag to send back (FIN_ACK for a FIN).
    pub reply: Option<Flag>,
}

/// Most bytes a stream keeps received and not yet read: four times the largest message any
/// Jellyfish protocol sends (a 1 MiB block in its envelope, [`crate::protocol`]). The spec has
/// no receive window, so without a cap a data channel buffers whatever a peer sends while the
/// reader is busy; a stream that goes over is reset.
pub const RECEIVE_LIMIT: usize = 4 * crate::protocol::MAX_REQUEST_BYTES;

impl StreamState {
    /// Applies a frame from the remote to a stream holding `unread` received bytes not yet
    /// read: a frame that would take them over [`RECEIVE_LIMIT`] resets the stream (its data is
    /// dropped and RESET goes back).
    pub fn on_frame_with_unread(&mut self, frame: Frame, unread: usize) -> Received {
        if self.read == ReadHalf::Open && unread.saturating_add(frame.data.len()) > RECEIVE_LIMIT {
            self.abort();
            return Received {
                data: Vec::new(),
                reply: Some(Flag::Reset),
            };
        }
        self.on_frame(frame)
    }

    /// Applies a frame from the remote.
    pub fn on_frame(&mut self, frame: Frame) -> Received {
        let mut received = Received::default();
        if self.read == ReadHalf::Open {
            received.data = frame.data;
        }
        match frame.flag {
            None => {}
            Some(Flag::Fin) => {
                if self.read == ReadHalf::Open {
                    self.read = ReadHalf::Finished;
                }
                if self.read != ReadHalf::Reset {
                    received.reply = Some(Flag::FinAck);
                }
            }
            Some(Flag::FinAck) if self.write == WriteHalf::Closing => {
                self.write = WriteHalf::Closed;
            }
            Some(Flag::FinAck) => {}
            Some(Flag::StopSending) => {
                if matches!(self.write, WriteHalf::Open | WriteHalf::Closing) {
                    self.write = WriteHalf::Stopped;
                }
            }
            Some(Flag::Reset) => self.abort(),
            // Belongs to the channel, not the stream: `browser::channel` hands it to
            // [`super::reuse::Life`] and never here.
            Some(Flag::Ready) => {}
        }
        received
    }

    /// Whether a write may go out now, or why not.
    pub fn check_write(&self) -> io::Result<()> {
        match self.write {
            WriteHalf::Open => Ok(()),
            WriteHalf::Closing | WriteHalf::Closed => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stream's write half is closed",
            )),
            WriteHalf::Stopped => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the remote stopped reading this stream",
            )),
            WriteHalf::Reset => Err(reset_error()),
        }
    }

    /// Starts closing the write half: the FIN to send, if one is due.
    pub fn close_write(&mut self) -> Option<Frame> {
        match self.write {
            WriteHalf::Open => {
                self.write = WriteHalf::Closing;
                Some(Frame::flag(Flag::Fin))
            }
            _ => None,
        }
    }

    /// Whether closing the write half is over (acknowledged, or moot).
    pub fn write_closed(&self) -> bool {
        self.write != WriteHalf::Closing && self.write != WriteHalf::Open
    }

    /// No FIN_ACK came in time: consider the write half closed anyway.
    pub fn give_up_on_fin_ack(&mut self) {
        if self.write == WriteHalf::Closing {
            self.write = WriteHalf::Closed;
        }
    }

    /// Aborts both halves (a local or remote RESET, or the channel closing under us).
    pub fn abort(&mut self) {
        if self.read == ReadHalf::Open {
            self.read = ReadHalf::Reset;
        }
        if self.write != WriteHalf::Closed {
            self.write = WriteHalf::Reset;
        }
    }

    /// The channel ended (closed by the remote, or the connection went away). A stream whose
    /// remote had finished writing and whose own write is done ended cleanly; anything else
    /// was cut short.
    pub fn channel_closed(&mut self) {
        if self.read == ReadHalf::Open {
            self.read = ReadHalf::Reset;
        }
        if matches!(self.write, WriteHalf::Open | WriteHalf::Closing) {
            self.write = WriteHalf::Reset;
        }
    }

    /// Both halves are over: the data channel can be closed.
    pub fn is_done(&self) -> bool {
        self.read != ReadHalf::Open && self.write_closed()
    }
}

/// The error a reset stream gives readers and writers.
pub fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "the stream was reset")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_spec_close_sequence() {
        let mut a = StreamState::default();
        let mut b = StreamState::default();
        // A finishes writing; B acknowledges and may keep writing.
        let fin = a.close_write().unwrap();
        assert!(a.check_write().is_err() && !a.write_closed());
        let got = b.on_frame(fin);
        assert_eq!(got.reply, Some(Flag::FinAck));
        assert_eq!(b.read, ReadHalf::Finished);
        assert!(b.check_write().is_ok(), "half-closed, not closed");
        a.on_frame(Frame::flag(got.reply.unwrap()));
        assert!(a.write_closed() && !a.is_done(), "A still reads");
        // B answers and finishes too.
        assert_eq!(a.on_frame(Frame::data(vec![1])).data, vec![1]);
        let fin = b.close_write().unwrap();
        let ack = a.on_frame(fin).reply.unwrap();
        b.on_frame(Frame::flag(ack));
        assert!(a.is_done() && b.is_done());
        assert!(a.close_write().is_none(), "FIN goes out once");
    }

    #[test]
    fn simultaneous_close() {
        let (mut a, mut b) = (StreamState::default(), StreamState::default());
        let (fa, fb) = (a.close_write().unwrap(), b.close_write().unwrap());
        let (ra, rb) = (a.on_frame(fb), b.on_frame(fa));
        a.on_frame(Frame::flag(rb.reply.unwrap()));
        b.on_frame(Frame::flag(ra.reply.unwrap()));
        assert!(a.is_done() && b.is_done());
    }

    #[test]
    fn stop_sending_reset_and_late_data() {
        let mut s = StreamState::default();
        s.on_frame(Frame::flag(Flag::StopSending));
        assert_eq!(
            s.check_write().unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(s.read, ReadHalf::Open, "stop-sending leaves reading alone");

        let mut s = StreamState::default();
        s.on_frame(Frame::flag(Flag::Fin));
        assert!(
            s.on_frame(Frame::data(vec![1])).data.is_empty(),
            "data after FIN is dropped"
        );
        s.on_frame(Frame::flag(Flag::Reset));
        assert_eq!(s.write, WriteHalf::Reset);
        assert_eq!(
            s.check_write().unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(
            s.read,
            ReadHalf::Finished,
            "what arrived before the reset stays readable"
        );

        let mut s = StreamState::default();
        s.on_frame(Frame::flag(Flag::Reset));
        assert_eq!(s.read, ReadHalf::Reset);
        assert!(
            s.on_frame(Frame::flag(Flag::Fin)).reply.is_none(),
            "no FIN_ACK once reset"
        );
    }

    #[test]
    fn a_missing_fin_ack_or_a_closed_channel_ends_the_wait() {
        let mut s = StreamState::default();
        s.close_write();
        s.give_up_on_fin_ack();
        assert!(s.write_closed());

        let mut s = StreamState::default();
        s.close_write();
        s.channel_closed();
        assert_eq!((s.read, s.write), (ReadHalf::Reset, WriteHalf::Reset));
        assert!(s.is_done());
    }

    #[test]
    fn a_sender_that_outruns_the_reader_past_the_limit_is_reset() {
        let frame = |n: usize| Frame {
            flag: None,
            data: vec![7; n],
        };
        let mut s = StreamState::default();
        // Up to the limit, bytes are kept for the reader.
        let got = s.on_frame_with_unread(frame(1000), RECEIVE_LIMIT - 1000);
        assert_eq!((got.data.len(), got.reply), (1000, None));
        assert_eq!(s.read, ReadHalf::Open);
        // One byte more and the stream is reset both ways.
        let got = s.on_frame_with_unread(frame(1), RECEIVE_LIMIT);
        assert_eq!(
            got,
            Received {
                data: Vec::new(),
                reply: Some(Flag::Reset)
            }
        );
        assert_eq!(s.read, ReadHalf::Reset);
        assert_eq!(s.write, WriteHalf::Reset);
        // A whole largest message always fits in an empty buffer.
        let mut fresh = StreamState::default();
        let got = fresh.on_frame_with_unread(frame(crate::protocol::MAX_REQUEST_BYTES), 0);
        assert_eq!(got.data.len(), crate::protocol::MAX_REQUEST_BYTES);
    }
}
