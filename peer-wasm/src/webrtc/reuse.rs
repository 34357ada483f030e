//! Data channels that carry one stream after another between two Jellyfish peers.
//!
//! The spec gives every libp2p stream its own data channel, opened for it and closed once both
//! halves are done. In the browser that is the dearest part of a short request: in one profiled
//! fresh 8-tab cluster, the first 1 MiB upload cost the other tabs 851 ms in
//! `createDataChannel` and 1,354 ms in `close` on their main threads, more than the bytes'
//! `send` (docs/PERFORMANCE.md, session 34). So between Jellyfish peers a channel outlives its
//! stream:
//!
//! - the opener marks the channels it creates with the subprotocol [`REUSE_PROTOCOL`] (the
//!   label stays `""`, as the spec asks; js-libp2p and older Jellyfish peers ignore the
//!   subprotocol and close the channel as usual, so nothing changes toward them);
//! - when a stream on a marked channel ends cleanly (FIN acknowledged both ways), the side that
//!   did not open it keeps the channel and sends one [`Flag::Ready`](super::proto::Flag)
//!   frame: "I hold nothing more of that stream, the channel is free";
//! - the opener, hearing it, keeps the channel idle and carries its next stream to that peer on
//!   it; the other side takes the first frame on an idle channel as a new inbound stream.
//!
//! READY usually rides with the other side's FIN ([`Life::finishing`]): the opener's FIN has
//! come and been acknowledged by then, so the opener, reading the FIN, answers FIN_ACK, ends
//! its stream cleanly and then reads READY, in that order, as it always did. The other side
//! takes the FIN_ACK that follows, while its channel is already idle, as its last stream's
//! ([`Life::late_fin_ack`]); on an ordered channel it comes before any frame of the next
//! stream. One message per stream fewer, and the channel is free half a round trip sooner.
//!
//! Only the opener starts streams on a channel, so the two sides never race for one; the
//! channel is ordered, so every frame of the old stream arrives before READY and every frame of
//! the new one after it. Anything out of turn (READY on a channel we did not mark, a frame on
//! an idle channel of ours, a stream that ended in a reset) closes the channel, as the spec would
//! have. Both sides bound how many idle channels they keep per connection ([`IDLE_OURS`],
//! [`IDLE_THEIRS`]) and close the rest. No wire version changes: a peer that does not know the
//! subprotocol never sees a READY and never receives a second stream on a channel.
//!
//! Pure: [`Life`] is the per-channel state machine; `browser::channel` applies its steps.

/// The subprotocol Jellyfish marks its data channels with: "this channel may carry more than
/// one stream".
pub const REUSE_PROTOCOL: &str = "/jellyfish/channel-reuse/1";

/// Idle channels of our own kept per connection, ready for the next outbound stream: 16,
/// above the streams an upload keeps in flight to one holder (4 blocks at a time, each one
/// request plus its audit).
pub const IDLE_OURS: usize = 16;
/// Idle channels the remote opened that we keep per connection, waiting for its next stream:
/// 64, beyond what an honest peer keeps ([`IDLE_OURS`]) with room for one on an older build
/// that keeps more; past it the channel is closed instead (it costs the remote a new channel,
/// never a failed stream).
pub const IDLE_THEIRS: usize = 64;

/// Which side opened a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// This peer created it (outbound streams).
    Us,
    /// The remote created it (inbound streams).
    Remote,
}

/// Where a channel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A stream is on it.
    Streaming,
    /// Ours, its stream is over, and the remote has not yet said READY.
    AwaitingReady,
    /// Free: ours waits for our next outbound stream, theirs for the remote's next frame.
    Idle,
    /// Closed, or being closed.
    Closed,
}

/// What the browser side must do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    Nothing,
    /// Send a READY frame; the channel is now idle.
    SendReady,
    /// The channel is idle and ours: offer it to the next outbound stream.
    Pool,
    /// The frame that came starts a new inbound stream: make one and hand it the frame.
    NewStream,
    /// Close the channel (its stream was not clean, the remote broke turn, or there is no
    /// room to keep it).
    Close,
}

/// One data channel's life across the streams it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Life {
    opener: Opener,
    /// Both ends speak [`REUSE_PROTOCOL`] on this channel (for ours: we marked it; whether the
    /// remote understood shows only when READY comes).
    marked: bool,
    phase: Phase,
    /// Streams carried so far.
    streams: u32,
    /// READY went out with our FIN, before the remote's FIN_ACK for it came.
    ready_before_fin_ack: bool,
}

impl Life {
    /// A channel just opened, with its first stream on it.
    pub fn new(opener: Opener, marked: bool) -> Self {
        Self {
            opener,
            marked,
            phase: Phase::Streaming,
            streams: 1,
            ready_before_fin_ack: false,
        }
    }

    /// Who opened the channel.
    pub fn opener(&self) -> Opener {
        self.opener
    }

    /// Where the channel is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Streams the channel has carried, the current one included.
    pub fn streams(&self) -> u32 {
        self.streams
    }

    /// Whether the remote is known to speak [`REUSE_PROTOCOL`] on this channel: it opened a
    /// marked channel, or it said READY on one of ours. Such a remote also reads frames larger
    /// than the spec's 16 KiB.
    pub fn remote_reuses(&self) -> bool {
        self.marked
            && (self.opener == Opener::Remote || self.streams > 1 || self.phase == Phase::Idle)
    }

    /// The stream on the channel is over; `clean` when both halves closed with FIN and
    /// FIN_ACK (not reset, not stopped). `idle_now` is how many idle channels of this one's
    /// kind the connection already keeps.
    pub fn stream_done(&mut self, clean: bool, idle_now: usize) -> Step {
        if self.phase != Phase::Streaming {
            return Step::Nothing;
        }
        if !(clean && self.marked) {
            return self.close();
        }
        match self.opener {
            Opener::Us => {
                self.phase = Phase::AwaitingReady;
                Step::Nothing
            }
            Opener::Remote if idle_now < IDLE_THEIRS => {
                self.phase = Phase::Idle;
                Step::SendReady
            }
            Opener::Remote => self.close(),
        }
    }

    /// Our FIN is going out and the remote's FIN already came: on a marked channel the remote
    /// opened, the stream needs nothing more of the channel but the remote's FIN_ACK, so READY
    /// may go with the FIN ([`Step::SendReady`], and the channel is idle). Otherwise
    /// [`Step::Nothing`]: [`Life::stream_done`] decides once the FIN_ACK comes.
    pub fn finishing(&mut self, idle_now: usize) -> Step {
        if (self.opener, self.phase, self.marked) != (Opener::Remote, Phase::Streaming, true)
            || idle_now >= IDLE_THEIRS
        {
            return Step::Nothing;
        }
        self.phase = Phase::Idle;
        self.ready_before_fin_ack = true;
        Step::SendReady
    }

    /// A FIN_ACK (or a RESET in its place) came while no stream is on the channel: whether it
    /// is the last stream's, owed since READY went with our FIN ([`Life::finishing`]). Once
    /// only; any other frame between streams is the next stream's
    /// ([`Life::frame_between_streams`]).
    pub fn late_fin_ack(&mut self) -> bool {
        self.phase == Phase::Idle && std::mem::take(&mut self.ready_before_fin_ack)
    }

    /// A READY frame came; `idle_now` is how many idle channels of ours the connection keeps.
    pub fn ready(&mut self, idle_now: usize) -> Step {
        match (self.opener, self.phase) {
            (Opener::Us, Phase::AwaitingReady) if idle_now < IDLE_OURS => {
                self.phase = Phase::Idle;
                Step::Pool
            }
            _ => self.close(),
        }
    }

    /// A frame other than READY came while no stream is on the channel.
    pub fn frame_between_streams(&mut self) -> Step {
        match (self.opener, self.phase) {
            (Opener::Remote, Phase::Idle) => {
                self.phase = Phase::Streaming;
                self.streams = self.streams.saturating_add(1);
                // An ordered channel delivers the last stream's FIN_ACK before this frame;
                // without it that stream waits out its FIN_ACK timeout.
                self.ready_before_fin_ack = false;
                Step::NewStream
            }
            _ => self.close(),
        }
    }

    /// Takes an idle channel of ours for a new outbound stream; false when it is not one.
    pub fn reuse(&mut self) -> bool {
        if (self.opener, self.phase) != (Opener::Us, Phase::Idle) {
            return false;
        }
        self.phase = Phase::Streaming;
        self.streams = self.streams.saturating_add(1);
        true
    }

    /// The channel closed (either side closed it, or the connection went).
    pub fn closed(&mut self) {
        self.phase = Phase::Closed;
    }

    fn close(&mut self) -> Step {
        if self.phase == Phase::Closed {
            return Step::Nothing;
        }
        self.phase = Phase::Closed;
        Step::Close
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_marked_channel_carries_stream_after_stream() {
        let (mut ours, mut theirs) = (Life::new(Opener::Us, true), Life::new(Opener::Remote, true));
        assert!(!ours.remote_reuses() && theirs.remote_reuses());
        for n in 1..=3 {
            assert_eq!(ours.stream_done(true, 0), Step::Nothing, "the opener waits");
            assert_eq!(ours.phase(), Phase::AwaitingReady);
            assert!(!ours.reuse(), "not before READY");
            assert_eq!(theirs.stream_done(true, 0), Step::SendReady);
            assert_eq!(ours.ready(0), Step::Pool);
            assert!(ours.remote_reuses());
            assert!(ours.reuse());
            assert_eq!(theirs.frame_between_streams(), Step::NewStream);
            assert_eq!((ours.streams(), theirs.streams()), (n + 1, n + 1));
        }
    }

    #[test]
    fn ready_rides_with_the_fin_and_the_late_fin_ack_is_the_last_streams() {
        let (mut ours, mut theirs) = (Life::new(Opener::Us, true), Life::new(Opener::Remote, true));
        for n in 1..=3 {
            // Theirs has read our FIN and writes its own: READY goes with it.
            assert_eq!(theirs.finishing(0), Step::SendReady);
            assert_eq!(theirs.phase(), Phase::Idle);
            // Ours reads FIN (its stream ends cleanly), then READY.
            assert_eq!(ours.stream_done(true, 0), Step::Nothing);
            assert_eq!(ours.ready(0), Step::Pool);
            // Ours' FIN_ACK reaches theirs while idle: the last stream's, once.
            assert!(theirs.late_fin_ack());
            assert!(!theirs.late_fin_ack(), "only one FIN_ACK is owed");
            // Theirs' stream now ends: nothing more to say, the channel stays idle.
            assert_eq!(theirs.stream_done(true, 0), Step::Nothing);
            assert_eq!(theirs.phase(), Phase::Idle);
            assert!(ours.reuse());
            assert_eq!(theirs.frame_between_streams(), Step::NewStream);
            assert_eq!((ours.streams(), theirs.streams()), (n + 1, n + 1));
        }
        // Not on channels we opened, unmarked ones, or past the bound; never twice.
        assert_eq!(Life::new(Opener::Us, true).finishing(0), Step::Nothing);
        assert_eq!(Life::new(Opener::Remote, false).finishing(0), Step::Nothing);
        assert_eq!(
            Life::new(Opener::Remote, true).finishing(IDLE_THEIRS),
            Step::Nothing
        );
        let mut theirs = Life::new(Opener::Remote, true);
        theirs.finishing(0);
        assert_eq!(theirs.finishing(0), Step::Nothing);
        // A FIN_ACK between streams with none owed starts the next stream, as any frame did.
        let mut theirs = Life::new(Opener::Remote, true);
        assert_eq!(theirs.stream_done(true, 0), Step::SendReady);
        assert!(!theirs.late_fin_ack());
        // The next stream's first frame clears what was owed (it cannot come before it).
        let mut theirs = Life::new(Opener::Remote, true);
        theirs.finishing(0);
        assert_eq!(theirs.frame_between_streams(), Step::NewStream);
        assert!(!theirs.late_fin_ack());
    }

    #[test]
    fn unmarked_or_unclean_streams_close_their_channel() {
        for opener in [Opener::Us, Opener::Remote] {
            let mut spec = Life::new(opener, false);
            assert_eq!(spec.stream_done(true, 0), Step::Close);
            assert_eq!(spec.phase(), Phase::Closed);
            let mut reset = Life::new(opener, true);
            assert_eq!(reset.stream_done(false, 0), Step::Close);
            assert_eq!(reset.stream_done(false, 0), Step::Nothing, "closed once");
        }
    }

    #[test]
    fn frames_out_of_turn_close_the_channel() {
        // READY on a channel the remote opened, or twice, or before the stream ended.
        assert_eq!(Life::new(Opener::Remote, true).ready(0), Step::Close);
        assert_eq!(Life::new(Opener::Us, true).ready(0), Step::Close);
        let mut ours = Life::new(Opener::Us, true);
        ours.stream_done(true, 0);
        assert_eq!(ours.ready(0), Step::Pool);
        assert_eq!(ours.ready(0), Step::Close);
        // A frame on an idle channel of ours: only we start streams on it.
        let mut ours = Life::new(Opener::Us, true);
        ours.stream_done(true, 0);
        assert_eq!(ours.frame_between_streams(), Step::Close);
        // A frame while waiting for READY.
        let mut ours = Life::new(Opener::Us, true);
        ours.stream_done(true, 0);
        ours.ready(0);
        ours.reuse();
        ours.stream_done(true, 0);
        assert_eq!(ours.frame_between_streams(), Step::Close);
        // Theirs cannot be taken for an outbound stream.
        let mut theirs = Life::new(Opener::Remote, true);
        theirs.stream_done(true, 0);
        assert!(!theirs.reuse());
    }

    #[test]
    fn idle_channels_are_bounded_per_connection() {
        let mut ours = Life::new(Opener::Us, true);
        ours.stream_done(true, 0);
        assert_eq!(ours.ready(IDLE_OURS), Step::Close);
        let mut theirs = Life::new(Opener::Remote, true);
        assert_eq!(theirs.stream_done(true, IDLE_THEIRS), Step::Close);
        let mut theirs = Life::new(Opener::Remote, true);
        assert_eq!(theirs.stream_done(true, IDLE_THEIRS - 1), Step::SendReady);
    }

    #[test]
    fn a_closed_channel_stays_closed() {
        let mut ours = Life::new(Opener::Us, true);
        ours.closed();
        assert_eq!(ours.stream_done(true, 0), Step::Nothing);
        assert_eq!(ours.ready(0), Step::Nothing);
        assert!(!ours.reuse());
        assert_eq!(ours.frame_between_streams(), Step::Nothing);
    }
}
