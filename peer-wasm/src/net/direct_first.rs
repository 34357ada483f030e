//! Kademlia's requests go over the direct connection once there is one.
//!
//! Kademlia sends a request to a peer on "any" of its connections, which libp2p's swarm reads
//! as the first one that is ready: the relayed connection, opened before the upgrade to
//! WebRTC. The event loop closes that relayed connection at the first block request to the
//! peer ([`super::event_loop`]'s `send_request`), and Kademlia forgets a request in flight on a
//! connection that closes while another one to the peer stays open: the lookup then waits out
//! the peer's timeout (10 s) without counting a failure. Measured in the files benchmark
//! (`tests/bench/files.mjs --sizes 1 --log timing`, 5 fresh tabs): a 1 MiB upload took about
//! 11 s in 16 of 23 runs instead of about 1 s, its index reload waiting 10.1-10.7 s on one of
//! 5 requests, sent on a relayed connection the upload's first stores closed in the same
//! millisecond (the relay's log). Steered, 8 of 8 runs took 0.7-1.0 s, no lookup over 170 ms.
//!
//! This wrapper hands Kademlia's "any connection" requests to a direct connection when the
//! peer has one, and changes nothing else: Kademlia still sees every connection (unlike
//! [`super::prefer_direct`], which hides relayed ones from request-response), so its routing
//! table and its answers to inbound requests (sent back on the connection they came in on)
//! are as before.

use std::{
    collections::HashMap,
    task::{Context, Poll},
};

use libp2p::{
    core::{transport::PortUse, Endpoint},
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

use super::prefer_direct::is_direct;

/// `B` (Kademlia), its requests steered to a peer's direct connection.
pub(crate) struct DirectFirst<B> {
    inner: B,
    /// Each peer's direct connections, oldest first.
    direct: HashMap<PeerId, Vec<ConnectionId>>,
}

impl<B> DirectFirst<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            direct: HashMap::new(),
        }
    }

    /// Where a request for `peer` goes: its newest direct connection, else wherever the
    /// swarm picks.
    fn steer(&self, peer: &PeerId) -> NotifyHandler {
        match self.direct.get(peer).and_then(|c| c.last()) {
            Some(connection) => NotifyHandler::One(*connection),
            None => NotifyHandler::Any,
        }
    }
}

super::wrapper::deref_to_inner!(DirectFirst);

impl<B: NetworkBehaviour> NetworkBehaviour for DirectFirst<B> {
    type ConnectionHandler = B::ConnectionHandler;
    type ToSwarm = B::ToSwarm;

    super::wrapper::forward_connection_setup!();

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::ConnectionEstablished(e) if is_direct(e.endpoint) => {
                self.direct
                    .entry(e.peer_id)
                    .or_default()
                    .push(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(connections) = self.direct.get_mut(&e.peer_id) {
                    connections.retain(|c| *c != e.connection_id);
                    if connections.is_empty() {
                        self.direct.remove(&e.peer_id);
                    }
                }
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer, connection, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.inner.poll(cx) {
            Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::Any,
                event,
            }) => Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: self.steer(&peer_id),
                event,
            }),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use libp2p::{
        core::ConnectedPoint,
        identity::Keypair,
        kad::{self, store::MemoryStore},
        StreamProtocol,
    };

    use super::*;
    use crate::net::prefer_direct::{
        closed, established, register,
        tests::{direct, relayed},
    };

    type Kad = DirectFirst<kad::Behaviour<MemoryStore>>;

    fn kad() -> Kad {
        let me = Keypair::generate_ed25519().public().to_peer_id();
        let config = kad::Config::new(StreamProtocol::new("/test/kad/1.0.0"));
        let mut kad = kad::Behaviour::with_config(me, MemoryStore::new(me), config);
        kad.set_mode(Some(kad::Mode::Server));
        DirectFirst::new(kad)
    }

    /// Tells the behaviour a connection opened, as the swarm would (handler first).
    fn open(kad: &mut Kad, peer: PeerId, endpoint: &ConnectedPoint, others: usize) -> ConnectionId {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let connection =
            ConnectionId::new_unchecked(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let _handler = register(kad, connection, peer, endpoint).unwrap();
        kad.on_swarm_event(established(peer, connection, endpoint, &[], others));
        connection
    }

    /// Where the requests Kademlia sent went (`Any`: wherever the swarm picks).
    fn sent(kad: &mut Kad) -> Vec<NotifyHandler> {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut sent = Vec::new();
        while let Poll::Ready(event) = kad.poll(&mut cx) {
            if let ToSwarm::NotifyHandler { handler, .. } = event {
                sent.push(handler);
            }
        }
        sent
    }

    fn is_one(handler: &NotifyHandler, connection: ConnectionId) -> bool {
        matches!(handler, NotifyHandler::One(c) if *c == connection)
    }

    #[test]
    fn lookups_go_over_the_direct_connection_while_there_is_one() {
        let mut kad = kad();
        let peer = PeerId::random();
        let (relayed, direct) = (relayed(peer), direct(peer));
        // Only relayed: the swarm picks, as without the wrapper.
        let relayed_first = open(&mut kad, peer, &relayed, 0);
        kad.add_address(&peer, "/ip4/127.0.0.1/tcp/1".parse().unwrap());
        let _ = sent(&mut kad);
        kad.get_closest_peers(PeerId::random());
        let first = sent(&mut kad);
        assert!(matches!(first[..], [NotifyHandler::Any]), "{first:?}");

        // Upgraded: every lookup's request takes the direct connection, though the relayed
        // one is older (the one the swarm would pick, and the one closed at the first block
        // request).
        let direct_one = open(&mut kad, peer, &direct, 1);
        for _ in 0..3 {
            kad.get_closest_peers(PeerId::random());
            let upgraded = sent(&mut kad);
            assert_eq!(upgraded.len(), 1, "{upgraded:?}");
            assert!(is_one(&upgraded[0], direct_one), "{upgraded:?}");
        }

        // The direct connection gone, the relayed one is all there is: the swarm picks again.
        kad.on_swarm_event(closed(peer, direct_one, &direct, 1));
        kad.get_closest_peers(PeerId::random());
        let after = sent(&mut kad);
        assert!(matches!(after[..], [NotifyHandler::Any]), "{after:?}");
        kad.on_swarm_event(closed(peer, relayed_first, &relayed, 0));
        assert!(kad.direct.is_empty());
    }
}
