//! libp2p streams over `RTCDataChannel`s: bytes go out as framed messages, flags move each
//! stream's [`StreamState`], and the browser's callbacks wake the tasks waiting on a stream.
//!
//! A channel is a [`Slot`]: toward js-libp2p and older peers it carries one stream and closes,
//! as the spec says; between Jellyfish peers it carries one stream after another
//! ([`crate::webrtc::reuse`]), so a request costs no `createDataChannel` and no `close`. Every
//! slot of a connection lives in its [`Channels`] until it closes; a [`Channel`] (the stream
//! libp2p holds) points at its slot and at its own stream's state, which outlives the slot
//! moving on to the next stream.
//!
//! Flow control is the channel's own send buffer: a write waits while more than
//! [`SEND_WINDOW`] bytes are queued and resumes when the buffer drains below
//! [`SEND_LOW_WATER`] (a stop-and-wait at 16 KiB, as some implementations do, is far slower).
//! There is no receive window in the spec; received bytes wait in memory until read, at most
//! [`RECEIVE_LIMIT`] of them: a stream that goes over is reset.
//!
//! Between Jellyfish peers, frames that go out in the same turn of the event loop share one
//! message (a stream's last bytes, its FIN and the READY that goes with it; a FIN_ACK and the
//! next stream's first frames; small frames and the data frame after them), and data frames
//! carry up to 192 KiB: each `send` and each message event is a cost in both tabs, and these
//! took 9.3 messages a stream, 3.6 since (`tests/bench/cluster.mjs`). Small frames wait at
//! most until the tasks already queued have run ([`Slot::send`]). Toward everyone else each
//! message holds one frame of at most 16 KiB, as the spec says.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    io,
    pin::Pin,
    rc::{Rc, Weak},
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures::{channel::mpsc, AsyncRead, AsyncWrite, FutureExt};
use futures_timer::Delay;
use send_wrapper::SendWrapper;
use wasm_bindgen::{prelude::Closure, JsCast};
use web_sys::{
    MessageEvent, RtcDataChannel, RtcDataChannelInit, RtcDataChannelState, RtcDataChannelType,
    RtcPeerConnection,
};

use crate::webrtc::{
    proto::{Flag, Frame, FrameDecoder, MAX_FRAME_DATA},
    reuse::{Life, Opener, Phase, Step, REUSE_PROTOCOL},
    stream_state::{reset_error, ReadHalf, StreamState, WriteHalf, RECEIVE_LIMIT},
};

/// Bytes queued in the channel before writes wait. 64 KiB, not the 1 MiB it was: with 1 MiB
/// queued on each channel (an upload's 4 blocks to 3 holders queue 12 of them) a fresh
/// connection's first pushes of 1 MiB to 3 tabs took 841 / 4,214 and 918 / 847 ms, with 64 KiB
/// 479 / 329 and 499 / 163 ms (`tests/bench/coldstart.mjs`, two runs each), while a warm
/// stream still moves 0.85 of a raw data channel's rate (`tests/bench/webrtc.mjs`).
const SEND_WINDOW: u32 = 64 * 1024;
/// Queued bytes below which waiting writes resume.
const SEND_LOW_WATER: u32 = 16 * 1024;
/// How long closing waits for the remote's FIN_ACK before giving up on it.
const FIN_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Stream bytes per frame toward a peer known to speak [`REUSE_PROTOCOL`]: 192 KiB less room
/// for the frame's own fields. Every Jellyfish build reads frames up to
/// [`FrameDecoder::MAX_FRAME`] (256 KiB); a 1 MiB block goes out as 6 messages instead of 65
/// (17 at 64 KiB): each `send` costs the tab a fixed part whatever its size.
/// The spec's 16 KiB ([`MAX_FRAME_DATA`]) stays toward everyone else.
const JELLYFISH_FRAME_DATA: usize = 192 * 1024 - 16;
/// Frames waiting in a channel's outbox go out at once when they reach this many bytes (a full
/// data frame always does): only small frames wait for company.
const SEND_NOW_AT: usize = 16 * 1024;
/// Most bytes one coalesced message holds: a full data frame and the small frames before it
/// (under [`SEND_NOW_AT`]), within the 256 KiB `max-message-size` Chromium announces (a
/// larger message makes `send` throw).
const MESSAGE_LIMIT: usize = 240 * 1024;

/// One stream's state: what the channel's callbacks and the stream's methods share.
#[derive(Default)]
struct Shared {
    state: StreamState,
    received: VecDeque<u8>,
    /// The write half was taken as closed without the remote's FIN_ACK: the channel cannot
    /// carry another stream (the FIN_ACK may still come).
    gave_up_on_fin_ack: bool,
    /// Dropped after its write half closed but before the remote's FIN: what still comes is
    /// thrown away, and the FIN ends the stream cleanly.
    unread_dropped: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Shared {
    fn wake_all(&mut self) {
        for waker in [self.reader.take(), self.writer.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }

    /// Ended with FIN and FIN_ACK both ways, nothing reset or stopped.
    fn ended_cleanly(&self) -> bool {
        self.state.read == ReadHalf::Finished
            && self.state.write == WriteHalf::Closed
            && !self.gave_up_on_fin_ack
    }
}

/// A data channel's own state, across the streams it carries.
struct SlotState {
    life: Life,
    decoder: FrameDecoder,
    /// The channel is open (writes may go out).
    open: bool,
    /// The channel has closed.
    closed: bool,
    /// The stream on the channel now, or the last one.
    stream: Rc<RefCell<Shared>>,
}

/// One data channel, its callbacks, and its state.
struct Slot {
    channel: RtcDataChannel,
    state: RefCell<SlotState>,
    /// Frames for a Jellyfish peer waiting to go out as one message ([`Slot::send`]).
    outbox: RefCell<Vec<u8>>,
    /// A task that sends the outbox is queued.
    flush_queued: Cell<bool>,
    /// The connection's channels, to count the idle ones when READY may go early.
    registry: Weak<RefCell<Registry>>,
    callbacks: RefCell<Option<Callbacks>>,
}

/// The closures the browser calls; unset before they are dropped.
struct Callbacks {
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut()>,
    _on_low: Closure<dyn FnMut()>,
}

/// Every open data channel of one connection, and the queue its inbound streams go to.
struct Registry {
    slots: Vec<Rc<Slot>>,
    inbound: mpsc::Sender<Channel>,
}

impl Registry {
    /// Idle channels opened by `opener`, not counting one whose state is borrowed (the one a
    /// callback is working on, which is not idle).
    fn idle(&self, opener: Opener) -> usize {
        self.slots
            .iter()
            .filter(|slot| {
                slot.state.try_borrow().is_ok_and(|s| {
                    s.life.phase() == Phase::Idle && s.life.opener() == opener && !s.closed
                })
            })
            .count()
    }

    /// Forgets channels that closed (outside the browser's callbacks, so a closure is never
    /// dropped while it runs).
    fn sweep(&mut self) {
        self.slots
            .retain(|slot| slot.state.borrow().life.phase() != Phase::Closed);
    }
}

/// The data channels of one connection.
#[derive(Clone)]
pub(super) struct Channels(Rc<RefCell<Registry>>);

impl Channels {
    /// An empty set whose inbound streams go to `inbound`.
    pub(super) fn new(inbound: mpsc::Sender<Channel>) -> Self {
        Self(Rc::new(RefCell::new(Registry {
            slots: Vec::new(),
            inbound,
        })))
    }

    /// A channel the remote opened: its first stream goes to the inbound queue at once, so
    /// messages the remote sends straight away are buffered, not lost.
    pub(super) fn accept(&self, channel: RtcDataChannel) {
        // web-sys 0.3.85 binds the init dictionary's `protocol` but not the channel's.
        let marked = js_sys::Reflect::get(&channel, &"protocol".into())
            .ok()
            .and_then(|p| p.as_string())
            .is_some_and(|p| p == REUSE_PROTOCOL);
        let (slot, stream) = Slot::new(channel, Life::new(Opener::Remote, marked), self);
        self.0.borrow_mut().slots.push(slot);
        self.queue_inbound(stream);
    }

    /// A stream to the remote: on an idle channel of ours if there is one, else on a new
    /// channel marked for reuse.
    pub(super) fn open(&self, pc: &RtcPeerConnection) -> Channel {
        let mut registry = self.0.borrow_mut();
        registry.sweep();
        for slot in &registry.slots {
            let mut state = slot.state.borrow_mut();
            if state.open && !state.closed && state.life.reuse() {
                let shared = Rc::new(RefCell::new(Shared::default()));
                state.stream = shared.clone();
                crate::webrtc::count_stream(false);
                return Channel::on(slot.clone(), shared);
            }
        }
        let init = RtcDataChannelInit::new();
        init.set_ordered(true);
        init.set_protocol(REUSE_PROTOCOL);
        let channel = pc.create_data_channel_with_data_channel_dict("", &init);
        let (slot, stream) = Slot::new(channel, Life::new(Opener::Us, true), self);
        registry.slots.push(slot);
        stream
    }

    /// Forgets closed channels.
    pub(super) fn sweep(&self) {
        self.0.borrow_mut().sweep();
    }

    fn queue_inbound(&self, stream: Channel) {
        if let Err(refused) = self.0.borrow_mut().inbound.try_send(stream) {
            tracing::warn!("too many inbound WebRTC streams waiting; resetting one");
            drop(refused.into_inner());
        }
    }
}

/// Sends one message on `channel`.
fn send_message(channel: &RtcDataChannel, bytes: &[u8]) -> io::Result<()> {
    channel
        .send_with_u8_array(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, format!("data channel: {e:?}")))?;
    crate::webrtc::count(bytes.len(), 0);
    Ok(())
}

impl Slot {
    /// Wraps `channel`, open or still opening, with its first stream.
    fn new(channel: RtcDataChannel, life: Life, channels: &Channels) -> (Rc<Slot>, Channel) {
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        channel.set_buffered_amount_low_threshold(SEND_LOW_WATER);
        let ready_state = channel.ready_state();
        let shared = Rc::new(RefCell::new(Shared::default()));
        let slot = Rc::new(Slot {
            channel: channel.clone(),
            state: RefCell::new(SlotState {
                life,
                decoder: FrameDecoder::default(),
                open: ready_state == RtcDataChannelState::Open,
                closed: matches!(
                    ready_state,
                    RtcDataChannelState::Closing | RtcDataChannelState::Closed
                ),
                stream: shared.clone(),
            }),
            outbox: RefCell::new(Vec::new()),
            flush_queued: Cell::new(false),
            registry: Rc::downgrade(&channels.0),
            callbacks: RefCell::new(None),
        });
        let weak = Rc::downgrade(&slot);
        let registry = Rc::downgrade(&channels.0);
        let on_open = {
            let weak = weak.clone();
            Closure::<dyn FnMut()>::new(move || {
                if let Some(slot) = weak.upgrade() {
                    let mut state = slot.state.borrow_mut();
                    state.open = true;
                    let stream = state.stream.clone();
                    drop(state);
                    stream.borrow_mut().wake_all();
                }
            })
        };
        let on_message = {
            let weak = weak.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() else {
                    return; // text messages are not part of the protocol
                };
                let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                crate::webrtc::count(0, bytes.len());
                if let (Some(slot), Some(registry)) = (weak.upgrade(), registry.upgrade()) {
                    slot.on_bytes(&Channels(registry), &bytes);
                }
            })
        };
        let on_close = {
            let weak = weak.clone();
            Closure::<dyn FnMut()>::new(move || {
                if let Some(slot) = weak.upgrade() {
                    let mut state = slot.state.borrow_mut();
                    state.closed = true;
                    state.open = false;
                    state.life.closed();
                    let stream = state.stream.clone();
                    drop(state);
                    let mut stream = stream.borrow_mut();
                    stream.state.channel_closed();
                    stream.wake_all();
                }
            })
        };
        let on_low = Closure::<dyn FnMut()>::new(move || {
            if let Some(slot) = weak.upgrade() {
                let stream = slot.state.borrow().stream.clone();
                let waker = stream.borrow_mut().writer.take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        });
        channel.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        channel.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        channel.set_onerror(Some(on_close.as_ref().unchecked_ref()));
        channel.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        *slot.callbacks.borrow_mut() = Some(Callbacks {
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_low: on_low,
        });
        crate::webrtc::count_stream(true);
        let stream = Channel::on(slot.clone(), shared);
        (slot, stream)
    }

    /// Applies bytes received on the channel: frames to the stream on it (data to its read
    /// buffer, FIN_ACK back for a FIN), READY and new streams to the channel's [`Life`]. A
    /// malformed frame resets the stream and closes the channel.
    fn on_bytes(self: &Rc<Self>, channels: &Channels, bytes: &[u8]) {
        let mut state = self.state.borrow_mut();
        let frames = match state.decoder.push(bytes) {
            Ok(frames) => frames,
            Err(e) => {
                tracing::warn!("resetting a WebRTC stream: {e}");
                let stream = state.stream.clone();
                let mut stream = stream.borrow_mut();
                stream.state.abort();
                stream.wake_all();
                let _ = self.send(&state, Some(Flag::Reset), &[]);
                self.close(&mut state);
                return;
            }
        };
        // New inbound streams go to the queue once this slot's state is no longer borrowed:
        // one the queue refuses is dropped, and dropping resets it through that state.
        let mut new_streams = Vec::new();
        for frame in frames {
            if frame.flag == Some(Flag::Ready) {
                let idle = channels.0.borrow().idle(Opener::Us);
                if state.life.ready(idle) == Step::Close {
                    tracing::debug!("a WebRTC READY out of turn or no room; closing the channel");
                    self.close(&mut state);
                    break;
                }
                continue;
            }
            // The last stream's FIN_ACK, owed since READY went with its FIN, is that stream's;
            // so is a RESET in its place (the opener dropped the stream after its FIN), which
            // would otherwise start a stream already reset and leave the last one waiting out
            // its FIN_ACK timeout (the opener closes the channel after a reset anyway).
            let late_fin_ack = state.life.phase() != Phase::Streaming
                && matches!(frame.flag, Some(Flag::FinAck | Flag::Reset))
                && frame.data.is_empty()
                && state.life.late_fin_ack();
            if state.life.phase() != Phase::Streaming && !late_fin_ack {
                match state.life.frame_between_streams() {
                    Step::NewStream => {
                        let shared = Rc::new(RefCell::new(Shared::default()));
                        state.stream = shared.clone();
                        crate::webrtc::count_stream(false);
                        new_streams.push(Channel::on(self.clone(), shared));
                    }
                    _ => {
                        self.close(&mut state);
                        break;
                    }
                }
            }
            let stream = state.stream.clone();
            let mut stream = stream.borrow_mut();
            let unread = stream.received.len();
            let received = stream.state.on_frame_with_unread(frame, unread);
            if !stream.unread_dropped {
                stream.received.extend(received.data);
            }
            if let Some(reply) = received.reply {
                if reply == Flag::Reset {
                    tracing::warn!("resetting a WebRTC stream: over {RECEIVE_LIMIT} bytes unread");
                }
                let _ = self.send(&state, Some(reply), &[]);
            }
            stream.wake_all();
            if stream.state.is_done() {
                let clean = stream.ended_cleanly();
                drop(stream);
                self.stream_done(&mut state, channels, clean);
            }
        }
        drop(state);
        for stream in new_streams {
            channels.queue_inbound(stream);
        }
    }

    /// The stream on the channel is over: close the channel, keep it, or say READY.
    fn stream_done(self: &Rc<Self>, state: &mut SlotState, channels: &Channels, clean: bool) {
        let idle = channels.0.borrow().idle(state.life.opener());
        match state.life.stream_done(clean, idle) {
            Step::SendReady if self.send(state, Some(Flag::Ready), &[]).is_err() => {
                self.close(state)
            }
            Step::Close => self.close(state),
            _ => {}
        }
    }

    /// Sends the FIN of `stream` (this slot's current one), and READY with it when the
    /// remote's FIN already came on a channel the remote opened for reuse ([`Life::finishing`]).
    fn send_fin(
        self: &Rc<Self>,
        stream: &Rc<RefCell<Shared>>,
        read_finished: bool,
    ) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        self.send(&state, Some(Flag::Fin), &[])?;
        if !(read_finished && Rc::ptr_eq(&state.stream, stream)) {
            return Ok(());
        }
        // This slot's own state is borrowed, so it does not count itself as idle. A registry
        // busy elsewhere (never expected) means no early READY: the FIN_ACK brings it.
        let idle = self.registry.upgrade().map_or(usize::MAX, |r| {
            r.try_borrow()
                .map_or(usize::MAX, |r| r.idle(state.life.opener()))
        });
        if state.life.finishing(idle) == Step::SendReady
            && self.send(&state, Some(Flag::Ready), &[]).is_err()
        {
            self.close(&mut state);
        }
        Ok(())
    }

    fn close(&self, state: &mut SlotState) {
        state.life.closed();
        let _ = self.flush(); // a RESET waiting in the outbox goes before the close
        self.channel.close();
    }

    /// Sends a frame of `flag` and `data` (`state` is this slot's, borrowed by the caller).
    ///
    /// Toward a Jellyfish peer the frame joins the outbox, which goes out as one message once
    /// it holds [`SEND_NOW_AT`] bytes, before a frame that would take it past
    /// [`MESSAGE_LIMIT`], before the channel closes, or else from a task queued now: after
    /// the tasks already queued (the swarm's poll that wrote this frame, the callback that
    /// answers a FIN) have run, so what they send in the same turn shares the message.
    /// Toward anyone else the frame is a message of its own at once.
    fn send(self: &Rc<Self>, state: &SlotState, flag: Option<Flag>, data: &[u8]) -> io::Result<()> {
        let mut outbox = self.outbox.borrow_mut();
        if !state.life.remote_reuses() {
            drop(outbox);
            self.flush()?; // empty unless the remote stopped counting as a Jellyfish peer
            let mut message = Vec::with_capacity(data.len() + 16);
            Frame::encode_data_into(&mut message, flag, data);
            return send_message(&self.channel, &message);
        }
        if !outbox.is_empty() && outbox.len() + data.len() + 16 > MESSAGE_LIMIT {
            drop(outbox);
            self.flush()?;
            outbox = self.outbox.borrow_mut();
        }
        Frame::encode_data_into(&mut outbox, flag, data);
        if outbox.len() >= SEND_NOW_AT {
            drop(outbox);
            return self.flush();
        }
        drop(outbox);
        if !self.flush_queued.replace(true) {
            let weak = Rc::downgrade(self);
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(slot) = weak.upgrade() {
                    if slot.flush().is_err() {
                        // The channel is going; its close event tells the stream.
                        slot.channel.close();
                    }
                }
            });
        }
        Ok(())
    }

    /// Sends what waits in the outbox as one message.
    fn flush(&self) -> io::Result<()> {
        self.flush_queued.set(false);
        let message = std::mem::take(&mut *self.outbox.borrow_mut());
        if message.is_empty() {
            return Ok(());
        }
        send_message(&self.channel, &message)
    }

    /// Stream bytes per frame on this channel.
    fn frame_data(&self) -> usize {
        if self.state.borrow().life.remote_reuses() {
            JELLYFISH_FRAME_DATA
        } else {
            MAX_FRAME_DATA
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let channel = &self.channel;
        // Unset the callbacks before their closures go, so a queued event finds no handler
        // instead of a dropped closure.
        channel.set_onopen(None);
        channel.set_onmessage(None);
        channel.set_onclose(None);
        channel.set_onerror(None);
        channel.set_onbufferedamountlow(None);
        let _ = self.flush();
        channel.close();
    }
}

struct Inner {
    slot: Rc<Slot>,
    shared: Rc<RefCell<Shared>>,
    fin_deadline: Option<Delay>,
}

impl Inner {
    /// Whether this stream is the one on the channel now (not one the channel has moved past).
    fn is_current(&self) -> bool {
        Rc::ptr_eq(&self.slot.state.borrow().stream, &self.shared)
    }
}

/// A libp2p stream over a data channel. `Send` only in name (the browser has one thread).
pub(super) struct Channel(SendWrapper<Inner>);

impl Channel {
    fn on(slot: Rc<Slot>, shared: Rc<RefCell<Shared>>) -> Self {
        Self(SendWrapper::new(Inner {
            slot,
            shared,
            fin_deadline: None,
        }))
    }
}

impl AsyncRead for Channel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let inner = &mut *self.0;
        let mut shared = inner.shared.borrow_mut();
        if !shared.received.is_empty() {
            // Copies slice by slice (VecDeque's `Read`), not byte by byte.
            return Poll::Ready(io::Read::read(&mut shared.received, buf));
        }
        match shared.state.read {
            ReadHalf::Open => {
                shared.reader = Some(cx.waker().clone());
                Poll::Pending
            }
            ReadHalf::Finished => Poll::Ready(Ok(0)),
            ReadHalf::Reset => Poll::Ready(Err(reset_error())),
        }
    }
}

impl AsyncWrite for Channel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let inner = &mut *self.0;
        let mut shared = inner.shared.borrow_mut();
        shared.state.check_write()?;
        let (open, closed) = {
            let state = inner.slot.state.borrow();
            (state.open, state.closed)
        };
        if !open {
            if closed {
                return Poll::Ready(Err(reset_error()));
            }
            shared.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let channel = &inner.slot.channel;
        if channel.buffered_amount() > SEND_WINDOW {
            shared.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(inner.slot.frame_data());
        inner
            .slot
            .send(&inner.slot.state.borrow(), None, &buf[..n])?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Everything written is already in the channel's send buffer.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let inner = &mut *self.0;
        let mut shared = inner.shared.borrow_mut();
        let (open, closed) = {
            let state = inner.slot.state.borrow();
            (state.open, state.closed)
        };
        if !open && !closed && !shared.state.write_closed() {
            shared.writer = Some(cx.waker().clone());
            return Poll::Pending; // FIN goes out once the channel is open
        }
        if shared.state.close_write().is_some() {
            let read_finished = shared.state.read == ReadHalf::Finished;
            inner.slot.send_fin(&inner.shared, read_finished)?;
            inner.fin_deadline = Some(Delay::new(FIN_ACK_TIMEOUT));
        }
        if !shared.state.write_closed() {
            let expired = inner
                .fin_deadline
                .as_mut()
                .is_some_and(|d| d.poll_unpin(cx).is_ready());
            if !expired {
                shared.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            shared.state.give_up_on_fin_ack();
            shared.gave_up_on_fin_ack = true;
            if shared.state.is_done() {
                // The remote's FIN came long ago; the channel learns the stream is over here.
                drop(shared);
                if inner.is_current() {
                    let mut state = inner.slot.state.borrow_mut();
                    inner.slot.close(&mut state);
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A stream dropped while it still writes is reset, and its channel closed: the remote
        // may be midway through it. One that ended leaves its channel to the channel's life.
        if !self.is_current() || self.shared.borrow().state.is_done() {
            return;
        }
        {
            // As yamux does, a stream dropped with one half over ends gracefully, not with a
            // reset, so the channel may carry the next one:
            let mut shared = self.shared.borrow_mut();
            let (read, write) = (shared.state.read, shared.state.write);
            let writing_over = matches!(write, WriteHalf::Closing | WriteHalf::Closed);
            if !shared.gave_up_on_fin_ack && read == ReadHalf::Finished && write == WriteHalf::Open
            {
                // The remote finished and we have nothing more to say (Kademlia drops the
                // stream it answered on when the asker closes it): FIN, and the FIN_ACK ends it.
                if shared.state.close_write().is_some()
                    && self.slot.send_fin(&self.shared, true).is_ok()
                {
                    return;
                }
            } else if !shared.gave_up_on_fin_ack && read == ReadHalf::Open && writing_over {
                // All written, and the reader is gone before the remote's FIN (Kademlia drops
                // its request stream once the answer is read): what still comes is thrown away
                // and that FIN ends the stream.
                shared.unread_dropped = true;
                shared.received.clear();
                return;
            } else if read == ReadHalf::Finished && write == WriteHalf::Closing {
                return; // the FIN_ACK ends it
            }
        }
        let mut state = self.slot.state.borrow_mut();
        if state.open {
            let _ = self.slot.send(&state, Some(Flag::Reset), &[]);
        }
        self.shared.borrow_mut().state.abort();
        self.slot.close(&mut state);
    }
}
