//! A WebRTC connection as libp2p sees it: a `StreamMuxer` whose streams are data channels.
//! Outbound streams go on an idle channel of ours or a new one (label `""`, ordered,
//! browser-chosen ids, marked for reuse: [`crate::webrtc::reuse`]); inbound ones arrive through
//! `datachannel` events, or as the next stream on a channel the remote keeps. Each inbound
//! channel is wrapped into a stream inside the event itself, so its first messages (which the
//! remote may send at once) are buffered rather than lost before the swarm asks for the stream.
//! The handshake's `init` channel is not a stream. A connection whose state becomes `failed` or
//! `closed`, or stays `disconnected` for 2 s, ends with an error.

use std::{
    cell::RefCell,
    future::Future,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
};

use futures::{channel::mpsc, StreamExt};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use send_wrapper::SendWrapper;
use wasm_bindgen::{prelude::Closure, JsCast};
use web_sys::{Event, RtcDataChannelEvent, RtcPeerConnection, RtcPeerConnectionState};

use super::channel::{Channel, Channels};

/// The label of the channel the initiator opens so that the offer has a data section.
pub(super) const INIT_LABEL: &str = "init";
/// Inbound channels waiting for the swarm before new ones are refused.
const INBOUND_QUEUE: usize = 64;

/// The peer connection's callbacks, set when it is created and unset when it goes.
pub(super) struct Watch {
    pub(super) pc: RtcPeerConnection,
    pub(super) inbound: mpsc::Receiver<Channel>,
    channels: Channels,
    state: Rc<RefCell<(RtcPeerConnectionState, Option<Waker>)>>,
    _on_channel: Closure<dyn FnMut(RtcDataChannelEvent)>,
    _on_state: Closure<dyn FnMut(Event)>,
}

impl Watch {
    /// Starts watching `pc`: queues its inbound channels and follows its state.
    pub(super) fn new(pc: RtcPeerConnection) -> Self {
        let (tx, inbound) = mpsc::channel(INBOUND_QUEUE);
        let channels = Channels::new(tx);
        let on_channel = {
            let channels = channels.clone();
            Closure::<dyn FnMut(RtcDataChannelEvent)>::new(move |event: RtcDataChannelEvent| {
                let channel = event.channel();
                if channel.label() == INIT_LABEL {
                    return; // the initiator closes it once connected
                }
                channels.accept(channel);
            })
        };
        let state = Rc::new(RefCell::new((pc.connection_state(), None::<Waker>)));
        let on_state = {
            let (state, pc) = (state.clone(), pc.clone());
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                let mut state = state.borrow_mut();
                state.0 = pc.connection_state();
                tracing::debug!(state = ?state.0, "WebRTC connection state");
                if let Some(waker) = state.1.take() {
                    waker.wake();
                }
            })
        };
        pc.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        Self {
            pc,
            inbound,
            channels,
            state,
            _on_channel: on_channel,
            _on_state: on_state,
        }
    }

    /// The connection's state, registering `cx` to hear of the next change.
    pub(super) fn poll_state(&self, cx: &mut Context<'_>) -> RtcPeerConnectionState {
        let mut state = self.state.borrow_mut();
        state.1 = Some(cx.waker().clone());
        state.0
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.pc.set_ondatachannel(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.close();
    }
}

/// Why a WebRTC connection ended.
#[derive(Debug, thiserror::Error)]
#[error("WebRTC connection {0}")]
pub struct ConnectionError(String);

/// How long a connection may stay `disconnected` before it ends: 2 s. The remote stopped
/// answering ICE consent checks. Measured in headless Chromium (tests/e2e/churn): a closed
/// tab's connections read `disconnected` 5 to 7 s after it closed and `failed` 10 s after
/// that; until then every request sent over them hangs to its deadline, and holders checking
/// on a departed one stall. A network that blinks comes back within the 2 s; one that does
/// not costs a redial.
const DISCONNECTED_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// An established WebRTC connection, and the wait it is in while it reads `disconnected`.
pub(super) struct Connection(SendWrapper<Watch>, Option<futures_timer::Delay>);

impl Connection {
    pub(super) fn new(watch: Watch) -> Self {
        Self(SendWrapper::new(watch), None)
    }

    fn check(&mut self, cx: &mut Context<'_>) -> Result<(), ConnectionError> {
        match self.0.poll_state(cx) {
            RtcPeerConnectionState::Failed => Err(ConnectionError("failed".into())),
            RtcPeerConnectionState::Closed => Err(ConnectionError("closed".into())),
            RtcPeerConnectionState::Disconnected => {
                let waited = self
                    .1
                    .get_or_insert_with(|| futures_timer::Delay::new(DISCONNECTED_FOR));
                match Pin::new(waited).poll(cx) {
                    Poll::Ready(()) => Err(ConnectionError(
                        "disconnected (the remote stopped answering)".into(),
                    )),
                    Poll::Pending => Ok(()),
                }
            }
            _ => {
                self.1 = None;
                Ok(())
            }
        }
    }
}

impl StreamMuxer for Connection {
    type Substream = Channel;
    type Error = ConnectionError;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        self.check(cx)?;
        self.0.channels.sweep();
        match self.0.inbound.poll_next_unpin(cx) {
            Poll::Ready(Some(channel)) => Poll::Ready(Ok(channel)),
            Poll::Ready(None) => Poll::Ready(Err(ConnectionError("closed".into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        self.check(cx)?;
        Poll::Ready(Ok(self.0.channels.open(&self.0.pc)))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.pc.close();
        Poll::Ready(Ok(()))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        self.check(cx)?;
        Poll::Pending
    }
}

impl From<ConnectionError> for io::Error {
    fn from(e: ConnectionError) -> Self {
        io::Error::new(io::ErrorKind::ConnectionAborted, e)
    }
}
