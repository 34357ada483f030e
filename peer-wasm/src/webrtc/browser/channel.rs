//! One libp2p stream over one `RTCDataChannel`: bytes go out as framed messages of at most
//! 16 KiB, flags move the [`StreamState`], and the browser's callbacks wake the tasks waiting
//! on the stream.
//!
//! Flow control is the channel's own send buffer: a write waits while more than
//! [`SEND_WINDOW`] bytes are queued and resumes when the buffer drains below
//! [`SEND_LOW_WATER`] (a stop-and-wait at 16 KiB, as some implementations do, is far slower).
//! There is no receive window in the spec; received bytes wait in memory until read, at most
//! [`RECEIVE_LIMIT`] of them: a stream that goes over is reset.

use std::{
    cell::RefCell,
    collections::VecDeque,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures::{AsyncRead, AsyncWrite, FutureExt};
use futures_timer::Delay;
use send_wrapper::SendWrapper;
use wasm_bindgen::{prelude::Closure, JsCast};
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

use crate::webrtc::{
    proto::{Flag, Frame, FrameDecoder, MAX_FRAME_DATA},
    stream_state::{reset_error, ReadHalf, StreamState, RECEIVE_LIMIT},
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

/// What the channel's callbacks and the stream's methods share.
#[derive(Default)]
struct Shared {
    state: StreamState,
    decoder: FrameDecoder,
    received: VecDeque<u8>,
    /// The channel is open (writes may go out).
    open: bool,
    /// The channel has closed.
    closed: bool,
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
}

fn send(channel: &RtcDataChannel, frame: &Frame) -> io::Result<()> {
    let bytes = frame.encode();
    channel
        .send_with_u8_array(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, format!("data channel: {e:?}")))?;
    crate::webrtc::count(bytes.len(), 0);
    Ok(())
}

struct Inner {
    channel: RtcDataChannel,
    shared: Rc<RefCell<Shared>>,
    fin_deadline: Option<Delay>,
    // The callbacks stay alive as long as the stream; Drop unsets them first.
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut()>,
    _on_low: Closure<dyn FnMut()>,
}

/// A libp2p stream over a data channel. `Send` only in name (the browser has one thread).
pub(super) struct Channel(SendWrapper<Inner>);

impl Channel {
    /// Wraps `channel`, open or still opening.
    pub(super) fn new(channel: RtcDataChannel) -> Self {
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        channel.set_buffered_amount_low_threshold(SEND_LOW_WATER);
        let shared = Rc::new(RefCell::new(Shared {
            open: channel.ready_state() == RtcDataChannelState::Open,
            closed: matches!(
                channel.ready_state(),
                RtcDataChannelState::Closing | RtcDataChannelState::Closed
            ),
            ..Default::default()
        }));

        let on_open = {
            let shared = shared.clone();
            Closure::<dyn FnMut()>::new(move || {
                let mut shared = shared.borrow_mut();
                shared.open = true;
                shared.wake_all();
            })
        };
        let on_message = {
            let (shared, channel) = (shared.clone(), channel.clone());
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() else {
                    return; // text messages are not part of the protocol
                };
                let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                crate::webrtc::count(0, bytes.len());
                let mut shared = shared.borrow_mut();
                on_bytes(&mut shared, &channel, &bytes);
                shared.wake_all();
            })
        };
        let on_close = {
            let shared = shared.clone();
            Closure::<dyn FnMut()>::new(move || {
                let mut shared = shared.borrow_mut();
                shared.closed = true;
                shared.open = false;
                shared.state.channel_closed();
                shared.wake_all();
            })
        };
        let on_low = {
            let shared = shared.clone();
            Closure::<dyn FnMut()>::new(move || {
                if let Some(waker) = shared.borrow_mut().writer.take() {
                    waker.wake();
                }
            })
        };
        channel.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        channel.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        channel.set_onerror(Some(on_close.as_ref().unchecked_ref()));
        channel.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        Self(SendWrapper::new(Inner {
            channel,
            shared,
            fin_deadline: None,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_low: on_low,
        }))
    }
}

/// Applies bytes received on the channel: frames to the state, data to the read buffer, and
/// FIN_ACK back for a FIN. A malformed frame resets the stream.
fn on_bytes(shared: &mut Shared, channel: &RtcDataChannel, bytes: &[u8]) {
    let frames = match shared.decoder.push(bytes) {
        Ok(frames) => frames,
        Err(e) => {
            tracing::warn!("resetting a WebRTC stream: {e}");
            shared.state.abort();
            let _ = send(channel, &Frame::flag(Flag::Reset));
            channel.close();
            return;
        }
    };
    for frame in frames {
        let unread = shared.received.len();
        let received = shared.state.on_frame_with_unread(frame, unread);
        shared.received.extend(received.data);
        if let Some(reply) = received.reply {
            if reply == Flag::Reset {
                tracing::warn!("resetting a WebRTC stream: over {RECEIVE_LIMIT} bytes unread");
            }
            let _ = send(channel, &Frame::flag(reply));
        }
    }
    if shared.state.is_done() {
        channel.close();
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
        if !shared.open {
            if shared.closed {
                return Poll::Ready(Err(reset_error()));
            }
            shared.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if inner.channel.buffered_amount() > SEND_WINDOW {
            shared.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(MAX_FRAME_DATA);
        send(&inner.channel, &Frame::data(buf[..n].to_vec()))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Everything written is already in the channel's send buffer.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let inner = &mut *self.0;
        let mut shared = inner.shared.borrow_mut();
        if !shared.open && !shared.closed && !shared.state.write_closed() {
            shared.writer = Some(cx.waker().clone());
            return Poll::Pending; // FIN goes out once the channel is open
        }
        if let Some(fin) = shared.state.close_write() {
            send(&inner.channel, &fin)?;
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
        }
        if shared.state.is_done() {
            inner.channel.close();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let channel = &self.channel;
        // Unset the callbacks before their closures go, so a queued event finds no handler
        // instead of a dropped closure.
        channel.set_onopen(None);
        channel.set_onmessage(None);
        channel.set_onclose(None);
        channel.set_onerror(None);
        channel.set_onbufferedamountlow(None);
        let shared = self.shared.borrow();
        if !shared.state.is_done() && shared.open {
            let _ = send(channel, &Frame::flag(Flag::Reset));
        }
        channel.close();
    }
}
