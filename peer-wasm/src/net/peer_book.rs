//! What this peer knows of the peers it is connected to, for diagnostics and for telling relays
//! from peers that hold records: each open connection and what it goes over, what each peer
//! announced (identify), and its last ping round trip. Pure bookkeeping, fed by the event loop.
//!
//! What a peer announced and its round trip are kept only while it is connected, so the book is
//! as small as the set of connected peers (a tab meets hundreds of peers in a long session).

use std::collections::HashMap;

use libp2p::{swarm::ConnectionId, Multiaddr, PeerId};

use super::{direct::Link, PeerInfo};

/// What a peer announced over identify.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Announced {
    agent: String,
    protocols: Vec<String>,
}

/// The connected peers: connections, announcements, round trips.
#[derive(Debug, Default)]
pub(crate) struct PeerBook {
    /// Open connections: to whom, and the remote address.
    open: HashMap<ConnectionId, (PeerId, Multiaddr)>,
    announced: HashMap<PeerId, Announced>,
    /// Last ping round trip, in milliseconds.
    rtts: HashMap<PeerId, f64>,
}

impl PeerBook {
    /// A connection opened.
    pub(crate) fn on_established(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        addr: Multiaddr,
    ) {
        self.open.insert(connection, (peer, addr));
    }

    /// A connection closed; `last` when it was the peer's last one: then the book forgets
    /// what the peer announced and its round trip.
    pub(crate) fn on_closed(&mut self, connection: ConnectionId, peer: PeerId, last: bool) {
        self.open.remove(&connection);
        if last {
            self.announced.remove(&peer);
            self.rtts.remove(&peer);
        }
    }

    /// What `peer` announced over identify.
    pub(crate) fn on_identified(&mut self, peer: PeerId, agent: String, protocols: Vec<String>) {
        self.announced.insert(peer, Announced { agent, protocols });
    }

    /// A ping answered in `millis`.
    pub(crate) fn on_rtt(&mut self, peer: PeerId, millis: f64) {
        self.rtts.insert(peer, millis);
    }

    /// Whether `peer` speaks `protocol`, as far as is known: a peer that has not announced
    /// itself yet is given the benefit of the doubt (its announcement follows the connection by
    /// a round trip; a lookup then hears from it or not).
    pub(crate) fn may_speak(&self, peer: &PeerId, protocol: &str) -> bool {
        self.announced
            .get(peer)
            .is_none_or(|a| a.protocols.iter().any(|p| p == protocol))
    }

    /// Everything known of `peer`, with how it is linked (from the upgrade bookkeeping).
    pub(crate) fn info(&self, peer: PeerId, link: Option<Link>) -> PeerInfo {
        let announced = self.announced.get(&peer);
        PeerInfo {
            peer_id: peer.to_string(),
            agent: announced.map(|a| a.agent.clone()),
            protocols: announced.map(|a| a.protocols.clone()).unwrap_or_default(),
            rtt_ms: self.rtts.get(&peer).copied(),
            link,
            connections: self
                .open
                .values()
                .filter(|(p, _)| *p == peer)
                .map(|(_, a)| a.to_string())
                .collect(),
        }
    }
}

// Native only: the browser test runner runs #[wasm_bindgen_test]s.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const RPC: &str = "/jellyfish/rpc/1";

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn a_peer_not_yet_announced_may_hold_records_and_a_relay_may_not() {
        let mut book = PeerBook::default();
        let (tab, relay) = (PeerId::random(), PeerId::random());
        assert!(book.may_speak(&tab, RPC));
        book.on_identified(tab, "jellyfish/0.1.0".into(), vec![RPC.into()]);
        book.on_identified(relay, "relay".into(), vec!["/jellyfish/kad/1.0.0".into()]);
        assert!(book.may_speak(&tab, RPC));
        assert!(!book.may_speak(&relay, RPC));
    }

    #[test]
    fn info_lists_open_connections_and_forgets_the_peer_when_the_last_closes() {
        let mut book = PeerBook::default();
        let peer = PeerId::random();
        let (relayed, direct) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        book.on_established(relayed, peer, addr(1));
        book.on_established(direct, peer, addr(2));
        book.on_identified(peer, "jellyfish/0.1.0".into(), vec![RPC.into()]);
        book.on_rtt(peer, 3.5);
        let info = book.info(peer, None);
        assert_eq!(info.connections.len(), 2);
        assert_eq!(info.agent.as_deref(), Some("jellyfish/0.1.0"));
        assert_eq!(info.rtt_ms, Some(3.5));

        book.on_closed(relayed, peer, false);
        let info = book.info(peer, None);
        assert_eq!(info.connections, vec![addr(2).to_string()]);
        assert_eq!(info.rtt_ms, Some(3.5), "still connected: still known");

        book.on_closed(direct, peer, true);
        let info = book.info(peer, None);
        assert!(info.connections.is_empty() && info.agent.is_none() && info.rtt_ms.is_none());
        assert!(book.announced.is_empty() && book.rtts.is_empty() && book.open.is_empty());
    }
}
