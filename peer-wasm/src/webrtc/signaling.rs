//! Signalling streams: a small `NetworkBehaviour` that opens and accepts
//! `/webrtc-signaling/0.0.1` streams on a peer's *relayed* connection, for the WebRTC transport.
//!
//! The transport cannot reach the swarm itself, so it holds a [`Control`] (to open a stream to
//! a peer, dialling its circuit address first if needed) and an [`Incoming`] queue (streams the
//! remote opened). Signalling runs only on relayed connections: that is where the spec puts it,
//! and the only place where it is needed. The behaviour knows which connections carry a
//! signalling stream right now ([`Behaviour::is_signaling`]), so that a relayed connection
//! is not closed under a handshake in progress.

use std::{
    collections::{HashMap, VecDeque},
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use futures::{
    channel::{mpsc, oneshot},
    AsyncRead, AsyncWrite, SinkExt, StreamExt,
};
use libp2p::{
    core::{transport::PortUse, upgrade::ReadyUpgrade, Endpoint},
    swarm::{
        dial_opts::{DialOpts, PeerCondition},
        handler::{ConnectionEvent, FullyNegotiatedInbound, FullyNegotiatedOutbound},
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, NotifyHandler, Stream, SubstreamProtocol, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId, StreamProtocol,
};

/// The signalling protocol of libp2p WebRTC (private-to-private).
pub const SIGNALING_PROTOCOL: StreamProtocol =
    StreamProtocol::new(jellyfish_protocols::WEBRTC_SIGNALING);

/// Streams the remote opened, for the transport's listener.
pub type Incoming = mpsc::Receiver<(PeerId, SignalingStream)>;

type Reply = oneshot::Sender<io::Result<SignalingStream>>;

/// A signalling stream; while it lives, its connection counts as busy signalling.
pub struct SignalingStream {
    inner: Stream,
    active: Arc<AtomicUsize>,
}

impl SignalingStream {
    fn new(inner: Stream, active: &Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        Self {
            inner,
            active: active.clone(),
        }
    }
}

impl Drop for SignalingStream {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for SignalingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SignalingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

struct OpenRequest {
    peer: PeerId,
    /// The peer's circuit address, dialled when no relayed connection exists yet.
    relayed_addr: Multiaddr,
    reply: Reply,
}

/// Opens signalling streams; cheap to clone and `Send`, for the transport's dial futures.
#[derive(Clone)]
pub struct Control {
    requests: mpsc::Sender<OpenRequest>,
}

impl Control {
    /// A signalling stream to `peer` over a relayed connection, reached at `relayed_addr` if
    /// none is open yet.
    pub async fn open(
        &mut self,
        peer: PeerId,
        relayed_addr: Multiaddr,
    ) -> io::Result<SignalingStream> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(OpenRequest {
                peer,
                relayed_addr,
                reply,
            })
            .await
            .map_err(|_| io::Error::other("the swarm has stopped"))?;
        answer
            .await
            .map_err(|_| io::Error::other("the swarm dropped the request"))?
    }
}

/// The behaviour; see the module docs.
pub struct Behaviour {
    requests: mpsc::Receiver<OpenRequest>,
    incoming: mpsc::Sender<(PeerId, SignalingStream)>,
    /// Signalling streams alive, per connection.
    active: HashMap<ConnectionId, Arc<AtomicUsize>>,
    /// Relayed connections, per peer.
    relayed: HashMap<PeerId, Vec<ConnectionId>>,
    /// Requests waiting for a relayed connection to their peer.
    waiting: HashMap<PeerId, Vec<Reply>>,
    actions: VecDeque<ToSwarm<(), Reply>>,
}

/// A behaviour and the two ends the transport holds.
pub fn new() -> (Behaviour, Control, Incoming) {
    let (requests_tx, requests) = mpsc::channel(16);
    let (incoming_tx, incoming) = mpsc::channel(16);
    let behaviour = Behaviour {
        requests,
        incoming: incoming_tx,
        active: HashMap::new(),
        relayed: HashMap::new(),
        waiting: HashMap::new(),
        actions: VecDeque::new(),
    };
    (
        behaviour,
        Control {
            requests: requests_tx,
        },
        incoming,
    )
}

impl Behaviour {
    /// Whether `connection` carries a signalling stream right now.
    pub fn is_signaling(&self, connection: ConnectionId) -> bool {
        self.active
            .get(&connection)
            .is_some_and(|n| n.load(Ordering::Relaxed) > 0)
    }

    fn handler(&mut self, connection: ConnectionId, peer: PeerId) -> Handler {
        let active = self.active.entry(connection).or_default().clone();
        Handler::new(peer, self.incoming.clone(), active)
    }

    fn send_on(&mut self, peer: PeerId, connection: ConnectionId, reply: Reply) {
        self.actions.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: reply,
        });
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = ();

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // An inbound circuit's remote address names only the peer; our listening address
        // names the circuit.
        if super::is_relayed(local) || super::is_relayed(remote) {
            self.relayed.entry(peer).or_default().push(connection);
        }
        Ok(self.handler(connection, peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if super::is_relayed(addr) {
            self.relayed.entry(peer).or_default().push(connection);
        }
        Ok(self.handler(connection, peer))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                let relayed = self.relayed.get(&e.peer_id).and_then(|c| c.last().copied());
                if let Some(connection) = relayed {
                    for reply in self.waiting.remove(&e.peer_id).unwrap_or_default() {
                        self.send_on(e.peer_id, connection, reply);
                    }
                }
            }
            FromSwarm::ConnectionClosed(e) => {
                self.active.remove(&e.connection_id);
                if let Some(connections) = self.relayed.get_mut(&e.peer_id) {
                    connections.retain(|c| *c != e.connection_id);
                    if connections.is_empty() {
                        self.relayed.remove(&e.peer_id);
                    }
                }
            }
            FromSwarm::DialFailure(e) => {
                let Some(peer) = e.peer_id else { return };
                if self.relayed.contains_key(&peer) {
                    return;
                }
                for reply in self.waiting.remove(&peer).unwrap_or_default() {
                    let _ = reply.send(Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!("cannot reach {peer} through the relay: {}", e.error),
                    )));
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<(), THandlerInEvent<Self>>> {
        while let Poll::Ready(Some(request)) = self.requests.poll_next_unpin(cx) {
            let OpenRequest {
                peer,
                relayed_addr,
                reply,
            } = request;
            match self.relayed.get(&peer).and_then(|c| c.last().copied()) {
                Some(connection) => self.send_on(peer, connection, reply),
                None => {
                    let first = !self.waiting.contains_key(&peer);
                    self.waiting.entry(peer).or_default().push(reply);
                    if first {
                        self.actions.push_back(ToSwarm::Dial {
                            opts: DialOpts::peer_id(peer)
                                .addresses(vec![relayed_addr])
                                .condition(PeerCondition::Always)
                                .build(),
                        });
                    }
                }
            }
        }
        match self.actions.pop_front() {
            Some(action) => Poll::Ready(action),
            None => Poll::Pending,
        }
    }
}

/// One connection's side of signalling: accepts the remote's streams, opens ours.
pub struct Handler {
    peer: PeerId,
    incoming: mpsc::Sender<(PeerId, SignalingStream)>,
    active: Arc<AtomicUsize>,
    to_open: VecDeque<Reply>,
    opening: usize,
}

impl Handler {
    fn new(
        peer: PeerId,
        incoming: mpsc::Sender<(PeerId, SignalingStream)>,
        active: Arc<AtomicUsize>,
    ) -> Self {
        Self {
            peer,
            incoming,
            active,
            to_open: VecDeque::new(),
            opening: 0,
        }
    }
}

impl Handler {
    /// Hands a stream the remote opened to the transport's listener.
    fn accept(&mut self, stream: Stream) {
        let stream = SignalingStream::new(stream, &self.active);
        if self.incoming.try_send((self.peer, stream)).is_err() {
            tracing::warn!(peer = %self.peer, "signalling stream dropped: no listener or too many waiting");
        }
    }
}

/// Handlers send the behaviour nothing; streams go straight to their owners.
#[derive(Debug)]
pub enum Never {}

impl ConnectionHandler for Handler {
    type FromBehaviour = Reply;
    type ToBehaviour = Never;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Reply;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(SIGNALING_PROTOCOL), ())
    }

    fn connection_keep_alive(&self) -> bool {
        // Kept open while a stream is being opened; once handed out, the stream itself keeps
        // the connection alive for as long as it lives.
        self.opening > 0 || !self.to_open.is_empty()
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Reply, Never>> {
        match self.to_open.pop_front() {
            Some(reply) => {
                self.opening += 1;
                Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(ReadyUpgrade::new(SIGNALING_PROTOCOL), reply),
                })
            }
            None => Poll::Pending,
        }
    }

    fn on_behaviour_event(&mut self, reply: Reply) {
        self.to_open.push_back(reply);
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), Reply>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => self.accept(stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                info: reply,
            }) => {
                self.opening = self.opening.saturating_sub(1);
                let _ = reply.send(Ok(SignalingStream::new(stream, &self.active)));
            }
            ConnectionEvent::DialUpgradeError(e) => {
                self.opening = self.opening.saturating_sub(1);
                let _ = e.info.send(Err(io::Error::other(format!(
                    "the peer does not accept WebRTC signalling: {}",
                    e.error
                ))));
            }
            _ => {}
        }
    }
}
