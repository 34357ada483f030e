//! The browser half: the libp2p `Transport` that dials and accepts `/webrtc` connections.
//!
//! - dial `<relayed>/p2p-circuit/webrtc/p2p/<peer>`: open a signalling stream to the peer over
//!   the relayed connection (the [`signaling`](crate::webrtc::signaling) behaviour dials the
//!   circuit first if needed), run the initiator's handshake, and hand the swarm the connection
//!   as `(peer, muxer)`;
//! - listen on `/webrtc`: each signalling stream a remote opens and sends an offer on becomes an
//!   incoming connection whose upgrade is the rest of the responder's handshake. (Streams closed
//!   before their offer are dials the remote cancelled, as libp2p does with the slower of two
//!   addresses it dials at once: they are dropped quietly, not reported as failed connections.)
//!
//! Everything else (`/ws`, plain `/p2p-circuit`) is refused with `MultiaddrNotSupported`, so
//! the transports after this one in the chain take it.

mod channel;
mod connection;
mod handshake;

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
};

use futures::{future::BoxFuture, stream::FuturesUnordered, FutureExt, StreamExt};
use libp2p::{
    core::{
        muxing::StreamMuxerBox,
        transport::{DialOpts, ListenerId, TransportError, TransportEvent},
    },
    multiaddr::Protocol,
    Multiaddr, PeerId,
};
use send_wrapper::SendWrapper;

use super::signaling::{Control, Incoming, SignalingStream};

/// How the transport reaches other browsers.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// STUN (or TURN) server URLs for ICE, such as `stun:stun.example.org:3478`. None is
    /// right on one machine or a LAN; peers behind NATs need at least one STUN server.
    pub ice_servers: Vec<String>,
}

/// Why a WebRTC connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signalling stream failed or the remote broke the protocol.
    #[error("WebRTC signalling failed: {0}")]
    Signaling(String),
    /// The browser refused an operation.
    #[error("WebRTC in the browser failed: {0}")]
    Browser(String),
    /// ICE found no working path between the peers.
    #[error("no direct path between the peers (ICE failed)")]
    Ice,
    /// The handshake took too long.
    #[error("the WebRTC handshake timed out")]
    Timeout,
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Signaling(e.to_string())
    }
}

type Output = (PeerId, StreamMuxerBox);
type Offer = (SignalingStream, Result<String, Error>);

/// The transport; see the module docs.
pub struct Transport {
    config: Config,
    control: Control,
    incoming: Incoming,
    /// Signalling streams a remote opened, until their offer arrives.
    offers: FuturesUnordered<BoxFuture<'static, Option<(PeerId, Offer)>>>,
    listener: Option<ListenerId>,
    events: VecDeque<TransportEvent<BoxFuture<'static, Result<Output, Error>>, Error>>,
}

impl Transport {
    /// A transport that signals through `control` and accepts from `incoming` (both from
    /// [`crate::webrtc::signaling::new`]).
    pub fn new(config: Config, control: Control, incoming: Incoming) -> Self {
        Self {
            config,
            control,
            incoming,
            offers: FuturesUnordered::new(),
            listener: None,
            events: VecDeque::new(),
        }
    }
}

fn listen_addr() -> Multiaddr {
    Multiaddr::empty().with(Protocol::WebRTC)
}

impl libp2p::core::Transport for Transport {
    type Output = Output;
    type Error = Error;
    type ListenerUpgrade = BoxFuture<'static, Result<Output, Error>>;
    type Dial = BoxFuture<'static, Result<Output, Error>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        if addr != listen_addr() || self.listener.is_some() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        // No address is announced: bare `/webrtc` is dialable by no one. The peer announces
        // `<its circuit address>/webrtc` instead, once it has one.
        self.listener = Some(id);
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        if self.listener != Some(id) {
            return false;
        }
        self.listener = None;
        self.events.push_back(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some((peer, relayed)) = super::split_dial_addr(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let mut control = self.control.clone();
        let ice_servers = self.config.ice_servers.clone();
        Ok(SendWrapper::new(async move {
            // Reaching the peer through the relay may itself hang (a dial that never ends):
            // bounded like the handshake, so whoever waits for this dial hears back.
            let stream =
                handshake::with_timeout(async { Ok(control.open(peer, relayed).await?) }).await?;
            let connection = handshake::initiate(stream, &ice_servers).await?;
            Ok((peer, StreamMuxerBox::new(connection)))
        })
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        while let Poll::Ready(Some((peer, stream))) = self.incoming.poll_next_unpin(cx) {
            if self.listener.is_none() {
                continue; // not listening: dropping the stream resets it
            }
            let offer = handshake::read_offer(stream).map(move |o| o.map(|o| (peer, o)));
            self.offers.push(SendWrapper::new(offer).boxed());
        }
        while let Poll::Ready(Some(offered)) = self.offers.poll_next_unpin(cx) {
            let (Some(listener_id), Some((peer, (stream, offer)))) = (self.listener, offered)
            else {
                continue;
            };
            let ice_servers = self.config.ice_servers.clone();
            let upgrade = SendWrapper::new(async move {
                let connection = handshake::respond(stream, offer?, &ice_servers).await?;
                Ok((peer, StreamMuxerBox::new(connection)))
            })
            .boxed();
            return Poll::Ready(TransportEvent::Incoming {
                listener_id,
                upgrade,
                local_addr: listen_addr(),
                send_back_addr: listen_addr().with(Protocol::P2p(peer)),
            });
        }
        Poll::Pending
    }
}
