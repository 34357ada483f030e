//! Requests go over the direct connection once there is one.
//!
//! libp2p's request-response spreads requests over every connection to a peer (request id
//! modulo their number). A relayed connection that outlives the upgrade to WebRTC (it still
//! carries signalling, or the remote opened it) would then get some of the blocks, which the
//! relay's circuit limits cut off mid-request. This wrapper shows the inner behaviour only the
//! connections requests should use: while a peer has a direct connection, its relayed ones are
//! hidden (the inner behaviour is told they closed, so requests in flight on them fail as
//! "connection closed" and the event loop sends them again); when the last direct connection
//! closes, the relayed ones are shown again, as the fallback.
//!
//! Request-response registers a connection when it makes its handler, so showing a connection
//! again asks it for a handler once more and throws that one away (the connection keeps its
//! first). That is why this wraps request-response only.
//!
//! A hidden connection keeps its handler; what that handler reports is dropped, so a request the
//! remote sends on it gets no answer and the remote sends it again over the direct connection
//! (the remote hides the relayed connection too, once it sees the direct one).

use std::task::{Context, Poll};

use libp2p::{
    core::{transport::PortUse, ConnectedPoint, Endpoint},
    swarm::{
        behaviour::{ConnectionClosed, ConnectionEstablished},
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

use crate::webrtc;

type Connections = Vec<(ConnectionId, ConnectedPoint)>;

/// The connections to one peer, as the wrapper sorts them.
#[derive(Debug, Default)]
struct Peer {
    /// Known to the inner behaviour.
    shown: Connections,
    /// Relayed, hidden from it while a direct connection exists.
    hidden: Connections,
}

impl Peer {
    fn has_direct(&self) -> bool {
        self.shown.iter().any(|(_, endpoint)| is_direct(endpoint))
    }
}

fn addresses(endpoint: &ConnectedPoint) -> [&Multiaddr; 2] {
    match endpoint {
        ConnectedPoint::Dialer { address, .. } => [address, address],
        ConnectedPoint::Listener {
            local_addr,
            send_back_addr,
        } => [local_addr, send_back_addr],
    }
}

pub(super) fn is_direct(endpoint: &ConnectedPoint) -> bool {
    addresses(endpoint).into_iter().any(webrtc::is_webrtc)
}

fn is_relayed(endpoint: &ConnectedPoint) -> bool {
    !is_direct(endpoint) && addresses(endpoint).into_iter().any(webrtc::is_relayed)
}

/// `B` (request-response), seeing a peer's relayed connections only while it has no direct one.
pub(crate) struct PreferDirect<B> {
    inner: B,
    peers: std::collections::HashMap<PeerId, Peer>,
}

impl<B> PreferDirect<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            peers: Default::default(),
        }
    }

    fn is_hidden(&self, peer: &PeerId, connection: ConnectionId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| p.hidden.iter().any(|(c, _)| *c == connection))
    }
}

super::wrapper::deref_to_inner!(PreferDirect);

pub(super) fn established<'a>(
    peer_id: PeerId,
    connection_id: ConnectionId,
    endpoint: &'a ConnectedPoint,
    failed_addresses: &'a [Multiaddr],
    other_established: usize,
) -> FromSwarm<'a> {
    FromSwarm::ConnectionEstablished(ConnectionEstablished {
        peer_id,
        connection_id,
        endpoint,
        failed_addresses,
        other_established,
    })
}

pub(super) fn closed(
    peer_id: PeerId,
    connection_id: ConnectionId,
    endpoint: &ConnectedPoint,
    remaining_established: usize,
) -> FromSwarm<'_> {
    FromSwarm::ConnectionClosed(ConnectionClosed {
        peer_id,
        connection_id,
        endpoint,
        cause: None,
        remaining_established,
    })
}

/// Asks `behaviour` for the handler of an established connection, as the swarm does.
pub(super) fn register<B: NetworkBehaviour>(
    behaviour: &mut B,
    connection: ConnectionId,
    peer: PeerId,
    endpoint: &ConnectedPoint,
) -> Result<THandler<B>, ConnectionDenied> {
    match endpoint {
        ConnectedPoint::Dialer {
            address,
            role_override,
            port_use,
        } => behaviour.handle_established_outbound_connection(
            connection,
            peer,
            address,
            *role_override,
            *port_use,
        ),
        ConnectedPoint::Listener {
            local_addr,
            send_back_addr,
        } => behaviour.handle_established_inbound_connection(
            connection,
            peer,
            local_addr,
            send_back_addr,
        ),
    }
}

impl<B: NetworkBehaviour> PreferDirect<B> {
    fn on_established(&mut self, e: ConnectionEstablished) {
        let peer = self.peers.entry(e.peer_id).or_default();
        let other_established = peer.shown.len();
        self.inner.on_swarm_event(established(
            e.peer_id,
            e.connection_id,
            e.endpoint,
            e.failed_addresses,
            other_established,
        ));
        if is_relayed(e.endpoint) && peer.has_direct() {
            // Hidden from birth: the inner behaviour made its handler, so it must forget it.
            self.inner.on_swarm_event(closed(
                e.peer_id,
                e.connection_id,
                e.endpoint,
                other_established,
            ));
            peer.hidden.push((e.connection_id, e.endpoint.clone()));
            return;
        }
        peer.shown.push((e.connection_id, e.endpoint.clone()));
        if !is_direct(e.endpoint) {
            return;
        }
        let (relayed, kept): (Connections, Connections) = std::mem::take(&mut peer.shown)
            .into_iter()
            .partition(|(_, endpoint)| is_relayed(endpoint));
        peer.shown = kept;
        for (i, (connection, endpoint)) in relayed.iter().enumerate() {
            let remaining = peer.shown.len() + relayed.len() - i - 1;
            self.inner
                .on_swarm_event(closed(e.peer_id, *connection, endpoint, remaining));
        }
        peer.hidden.extend(relayed);
    }

    fn on_closed(&mut self, e: ConnectionClosed) {
        let Some(peer) = self.peers.get_mut(&e.peer_id) else {
            return;
        };
        if let Some(at) = peer.hidden.iter().position(|(c, _)| *c == e.connection_id) {
            peer.hidden.remove(at);
        } else if let Some(at) = peer.shown.iter().position(|(c, _)| *c == e.connection_id) {
            peer.shown.remove(at);
            if !peer.has_direct() {
                // The direct path is gone: the relayed connections are the fallback again
                // (shown before the close goes in, so the peer never looks disconnected).
                for (connection, endpoint) in std::mem::take(&mut peer.hidden) {
                    let registered =
                        register(&mut self.inner, connection, e.peer_id, &endpoint).map(drop);
                    if registered.is_err() {
                        tracing::debug!(peer = %e.peer_id, "a relayed connection stays hidden");
                        continue;
                    }
                    let other_established = peer.shown.len() + 1;
                    self.inner.on_swarm_event(established(
                        e.peer_id,
                        connection,
                        &endpoint,
                        &[],
                        other_established,
                    ));
                    peer.shown.push((connection, endpoint));
                }
            }
            self.inner
                .on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
                    remaining_established: peer.shown.len(),
                    ..e
                }));
        }
        if peer.shown.is_empty() && peer.hidden.is_empty() {
            self.peers.remove(&e.peer_id);
        }
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for PreferDirect<B> {
    type ConnectionHandler = B::ConnectionHandler;
    type ToSwarm = B::ToSwarm;

    super::wrapper::forward_connection_setup!();

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => self.on_established(e),
            FromSwarm::ConnectionClosed(e) => self.on_closed(e),
            FromSwarm::AddressChange(e) if self.is_hidden(&e.peer_id, e.connection_id) => {}
            other => self.inner.on_swarm_event(other),
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        if self.is_hidden(&peer, connection) {
            tracing::debug!(%peer, "dropped what a hidden relayed connection reported");
            return;
        }
        self.inner
            .on_connection_handler_event(peer, connection, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx)
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]

    use libp2p::{
        core::transport::PortUse,
        request_response::{self, ProtocolSupport},
        swarm::NotifyHandler,
    };

    use super::*;
    use crate::protocol::{Codec, Request, RPC_PROTOCOL};

    type Rpc = PreferDirect<request_response::Behaviour<Codec>>;

    fn rpc() -> Rpc {
        PreferDirect::new(request_response::Behaviour::with_codec(
            Codec,
            [(RPC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default(),
        ))
    }

    fn dialer(address: String) -> ConnectedPoint {
        ConnectedPoint::Dialer {
            address: address.parse().unwrap(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::New,
        }
    }

    pub(crate) fn relayed(peer: PeerId) -> ConnectedPoint {
        let relay = PeerId::random();
        dialer(format!(
            "/ip4/127.0.0.1/tcp/1/ws/p2p/{relay}/p2p-circuit/p2p/{peer}"
        ))
    }

    pub(crate) fn direct(peer: PeerId) -> ConnectedPoint {
        ConnectedPoint::Listener {
            local_addr: "/webrtc".parse().unwrap(),
            send_back_addr: format!("/webrtc/p2p/{peer}").parse().unwrap(),
        }
    }

    /// Tells the behaviour a connection opened, as the swarm would (handler first).
    fn open(rpc: &mut Rpc, peer: PeerId, endpoint: &ConnectedPoint) -> ConnectionId {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let connection =
            ConnectionId::new_unchecked(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let _handler = register(rpc, connection, peer, endpoint).unwrap();
        let others = rpc
            .peers
            .get(&peer)
            .map_or(0, |p| p.shown.len() + p.hidden.len());
        rpc.on_swarm_event(established(peer, connection, endpoint, &[], others));
        connection
    }

    fn close(rpc: &mut Rpc, peer: PeerId, connection: ConnectionId, endpoint: &ConnectedPoint) {
        let others = rpc
            .peers
            .get(&peer)
            .map_or(0, |p| p.shown.len() + p.hidden.len());
        rpc.on_swarm_event(closed(peer, connection, endpoint, others - 1));
    }

    /// Everything the behaviour has to say: which connection each request went to, and the
    /// requests that failed.
    fn drain(rpc: &mut Rpc) -> (Vec<ConnectionId>, Vec<String>) {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let (mut sent, mut failed) = (Vec::new(), Vec::new());
        while let Poll::Ready(event) = rpc.poll(&mut cx) {
            match event {
                ToSwarm::NotifyHandler {
                    handler: NotifyHandler::One(connection),
                    ..
                } => sent.push(connection),
                ToSwarm::GenerateEvent(request_response::Event::OutboundFailure {
                    error, ..
                }) => failed.push(format!("{error:?}")),
                _ => {}
            }
        }
        (sent, failed)
    }

    fn send(rpc: &mut Rpc, peer: PeerId, n: usize) {
        for _ in 0..n {
            rpc.send_request(&peer, Request::Hello { agent: "t".into() });
        }
    }

    #[test]
    fn requests_use_only_the_direct_connection_once_there_is_one() {
        let mut rpc = rpc();
        let peer = PeerId::random();
        let (relayed_at, direct_at) = (relayed(peer), direct(peer));

        let first = open(&mut rpc, peer, &relayed_at);
        send(&mut rpc, peer, 3);
        assert_eq!(drain(&mut rpc), (vec![first; 3], vec![]));

        // The direct connection arrives: what was in flight on the relayed one fails as
        // "connection closed" (to be sent again), and every new request goes direct, even over
        // a relayed connection opened afterwards.
        let direct = open(&mut rpc, peer, &direct_at);
        let (sent, failed) = drain(&mut rpc);
        assert!(sent.is_empty());
        assert_eq!(failed.len(), 3);
        assert!(failed.iter().all(|e| e == "ConnectionClosed"), "{failed:?}");
        let second = open(&mut rpc, peer, &relayed(peer));
        send(&mut rpc, peer, 8);
        assert_eq!(drain(&mut rpc), (vec![direct; 8], vec![]));

        // Hidden connections closing change nothing the inner behaviour sees.
        close(&mut rpc, peer, first, &relayed_at);
        send(&mut rpc, peer, 2);
        assert_eq!(drain(&mut rpc), (vec![direct; 2], vec![]));

        // The direct connection goes, with the 10 requests it carried (unanswered here): the
        // relayed connection left is the fallback again.
        close(&mut rpc, peer, direct, &direct_at);
        send(&mut rpc, peer, 4);
        let (sent, failed) = drain(&mut rpc);
        assert_eq!(sent, vec![second; 4]);
        assert_eq!(failed, vec!["ConnectionClosed"; 10]);
    }

    #[test]
    fn other_peers_and_plain_connections_are_left_alone() {
        let mut rpc = rpc();
        let (a, b) = (PeerId::random(), PeerId::random());
        let to_a = open(&mut rpc, a, &relayed(a));
        let plain = open(&mut rpc, b, &dialer("/ip4/127.0.0.1/tcp/2/ws".into()));
        let _direct_b = open(&mut rpc, b, &direct(b));
        send(&mut rpc, a, 2);
        assert_eq!(drain(&mut rpc).0, vec![to_a; 2]);
        // A connection that is neither relayed nor WebRTC stays in use beside the direct one.
        send(&mut rpc, b, 6);
        assert!(drain(&mut rpc).0.contains(&plain));
    }
}
