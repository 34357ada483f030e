//! Preferring direct connections: when two browsers meet through the relay, the side that
//! dialled the relayed connection upgrades it to WebRTC. Once the direct connection is up, the
//! relayed ones are closed before the next request to that peer goes out ([`Upgrades::replaced`]),
//! so block traffic never crosses the relay, while what already runs on them at the moment of
//! the upgrade (DHT queries, another handshake) is not cut. If the upgrade fails, the relayed
//! connection stays as the fallback (and another try waits [`RETRY_AFTER`]).
//!
//! Requests to a peer whose upgrade is under way wait for it, so they do not take the relayed
//! path moments before it closes. Pure bookkeeping: the event loop feeds it connection events
//! and carries out the [`Action`]s it returns.

use std::{collections::HashMap, time::Duration};

use libp2p::{
    multiaddr::Protocol,
    swarm::{
        dial_opts::{DialOpts, PeerCondition},
        ConnectionId,
    },
    Multiaddr, PeerId,
};
use web_time::Instant;

use crate::webrtc;

/// How long after a failed upgrade the next one may be tried.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// What the event loop should do.
#[derive(Debug)]
pub(crate) enum Action<T> {
    /// Dial the peer over WebRTC.
    Dial(PeerId, DialOpts),
    /// Send these held requests now.
    Release(Vec<T>),
    /// Tell the page.
    Report(PeerId, Link),
}

/// How this peer is connected to another, as the page shows it.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Over WebRTC, peer to peer.
    Direct,
    /// Through the relay.
    Relayed,
    /// Through the relay, because the direct path failed.
    RelayedFallback,
}

#[derive(Debug)]
struct Peer<T> {
    relayed: Vec<ConnectionId>,
    direct: Option<ConnectionId>,
    upgrading: Option<ConnectionId>,
    failed_at: Option<Instant>,
    held: Vec<T>,
}

impl<T> Default for Peer<T> {
    fn default() -> Self {
        Self {
            relayed: Vec::new(),
            direct: None,
            upgrading: None,
            failed_at: None,
            held: Vec::new(),
        }
    }
}

/// The upgrade state of every peer; `T` is a held request.
#[derive(Debug)]
pub(crate) struct Upgrades<T> {
    enabled: bool,
    peers: HashMap<PeerId, Peer<T>>,
    /// How long after a failed upgrade the next may be tried ([`RETRY_AFTER`] unless tuned).
    retry_after: Duration,
}

impl<T> Upgrades<T> {
    /// Upgrades happen only when `enabled` (where a WebRTC transport exists).
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            peers: HashMap::new(),
            retry_after: RETRY_AFTER,
        }
    }

    /// These upgrades, retried after a failure as `tuning` says.
    pub(crate) fn tuned(mut self, tuning: &super::Tuning) -> Self {
        self.retry_after = tuning.direct_retry_after;
        self
    }

    /// Whether this peer upgrades connections at all.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// How this peer reaches `peer`, if connected.
    pub(crate) fn link(&self, peer: &PeerId) -> Option<Link> {
        let state = self.peers.get(peer)?;
        if state.direct.is_some() {
            Some(Link::Direct)
        } else if state.relayed.is_empty() {
            None
        } else if state.failed_at.is_some() {
            Some(Link::RelayedFallback)
        } else {
            Some(Link::Relayed)
        }
    }

    /// A connection opened over `addr` (the dialled address, or for an inbound connection the
    /// local listening address). `outbound`: this side dialled it.
    pub(crate) fn on_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        addr: &Multiaddr,
        outbound: bool,
        now: Instant,
    ) -> Vec<Action<T>> {
        let mut actions = Vec::new();
        if webrtc::is_webrtc(addr) {
            let state = self.peers.entry(peer).or_default();
            state.direct = Some(connection);
            state.upgrading = None;
            state.failed_at = None;
            actions.push(Action::Release(std::mem::take(&mut state.held)));
            actions.push(Action::Report(peer, Link::Direct));
            return actions;
        }
        if !webrtc::is_relayed(addr) {
            return actions;
        }
        let state = self.peers.entry(peer).or_default();
        state.relayed.push(connection);
        if state.direct.is_some() {
            // Already direct. A new relayed connection carries signalling for another WebRTC
            // connection (ours or the remote's), so it stays; it closes when idle, and a request
            // it carries past the relay's limit is retried over the direct connection.
            return actions;
        }
        let recently_failed = state
            .failed_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.retry_after);
        if !self.enabled || !outbound || state.upgrading.is_some() || recently_failed {
            return actions;
        }
        let with_peer = match addr.iter().last() {
            Some(Protocol::P2p(_)) => addr.clone(),
            _ => addr.clone().with(Protocol::P2p(peer)),
        };
        if let Some(target) = webrtc::dial_addr_for(&with_peer) {
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![target])
                .condition(PeerCondition::Always)
                .build();
            state.upgrading = Some(opts.connection_id());
            actions.push(Action::Dial(peer, opts));
        }
        actions
    }

    /// The relayed connections to `peer` that a direct one replaces: close them before sending
    /// it a request (none while there is no direct connection). Those still `busy` (carrying a
    /// WebRTC handshake) stay listed, to be handed out once they are free.
    pub(crate) fn replaced(
        &mut self,
        peer: &PeerId,
        busy: impl Fn(ConnectionId) -> bool,
    ) -> Vec<ConnectionId> {
        match self.peers.get_mut(peer) {
            Some(state) if state.direct.is_some() => {
                let (busy, free) = std::mem::take(&mut state.relayed)
                    .into_iter()
                    .partition(|c| busy(*c));
                state.relayed = busy;
                free
            }
            _ => Vec::new(),
        }
    }

    /// A direct dial to `peer` asked for by hand ([`Client::connect`](super::Client::connect))
    /// counts as its upgrade: no second one starts, and requests wait for it.
    pub(crate) fn dialling_direct(&mut self, peer: PeerId, connection: ConnectionId) {
        let state = self.peers.entry(peer).or_default();
        if state.direct.is_none() && state.upgrading.is_none() {
            state.upgrading = Some(connection);
        }
    }

    /// A connection closed.
    pub(crate) fn on_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.relayed.retain(|c| *c != connection);
        if state.direct == Some(connection) {
            state.direct = None;
        }
        let idle = state.relayed.is_empty()
            && state.direct.is_none()
            && state.upgrading.is_none()
            && state.held.is_empty();
        if idle && state.failed_at.is_none() {
            self.peers.remove(&peer);
        }
    }

    /// A dial failed; if it was an upgrade, fall back to the relayed connection.
    pub(crate) fn on_dial_failed(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        now: Instant,
    ) -> Vec<Action<T>> {
        let Some(state) = self.peers.get_mut(&peer) else {
            return Vec::new();
        };
        if state.upgrading != Some(connection) {
            return Vec::new();
        }
        state.upgrading = None;
        state.failed_at = Some(now);
        vec![
            Action::Release(std::mem::take(&mut state.held)),
            Action::Report(peer, Link::RelayedFallback),
        ]
    }

    /// An upgrade the remote started failed on this side: the link stays relayed, and the
    /// page should say so.
    pub(crate) fn on_inbound_failed(&mut self, peer: PeerId, now: Instant) -> Vec<Action<T>> {
        match self.peers.get_mut(&peer) {
            Some(state) if state.direct.is_none() => {
                state.failed_at = Some(now);
                vec![Action::Report(peer, Link::RelayedFallback)]
            }
            _ => Vec::new(),
        }
    }

    /// Holds `request` while an upgrade to `peer` is under way; otherwise hands it back to be
    /// sent now.
    pub(crate) fn hold(&mut self, peer: PeerId, request: T) -> Option<T> {
        match self.peers.get_mut(&peer) {
            Some(state) if state.upgrading.is_some() => {
                state.held.push(request);
                None
            }
            _ => Some(request),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn relayed_addr(peer: PeerId) -> Multiaddr {
        let relay = PeerId::random();
        format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{relay}/p2p-circuit/p2p/{peer}")
            .parse()
            .unwrap()
    }

    fn webrtc_addr(peer: PeerId) -> Multiaddr {
        format!("/webrtc/p2p/{peer}").parse().unwrap()
    }

    #[test]
    fn the_dialler_upgrades_holds_requests_then_drops_the_relayed_path() {
        let mut upgrades = Upgrades::new(true);
        let (peer, relayed) = (PeerId::random(), ConnectionId::new_unchecked(1));
        let now = Instant::now();
        let actions = upgrades.on_established(peer, relayed, &relayed_addr(peer), true, now);
        let [Action::Dial(to, opts)] = &actions[..] else {
            panic!("{actions:?}")
        };
        assert_eq!(*to, peer);
        let dialled = opts.connection_id();
        assert_eq!(upgrades.link(&peer), Some(Link::Relayed));
        assert_eq!(
            upgrades.hold(peer, "put block"),
            None,
            "held while upgrading"
        );

        let direct = dialled;
        let actions = upgrades.on_established(peer, direct, &webrtc_addr(peer), true, now);
        assert!(matches!(&actions[0], Action::Release(held) if held == &["put block"]));
        assert_eq!(upgrades.link(&peer), Some(Link::Direct));
        assert_eq!(upgrades.hold(peer, "next"), Some("next"), "sent at once");
        assert!(
            upgrades.replaced(&peer, |_| true).is_empty(),
            "kept while it signals"
        );
        assert_eq!(
            upgrades.replaced(&peer, |_| false),
            [relayed],
            "closed before it goes"
        );
        assert!(upgrades.replaced(&peer, |_| false).is_empty());

        // A new relayed connection while direct (signalling for another WebRTC connection) is
        // left alone, and starts no second upgrade.
        let late = ConnectionId::new_unchecked(7);
        let actions = upgrades.on_established(peer, late, &relayed_addr(peer), true, now);
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(upgrades.link(&peer), Some(Link::Direct));
    }

    #[test]
    fn a_failed_upgrade_falls_back_and_waits_before_trying_again() {
        let mut upgrades = Upgrades::<&str>::new(true);
        let peer = PeerId::random();
        let now = Instant::now();
        let actions = upgrades.on_established(
            peer,
            ConnectionId::new_unchecked(1),
            &relayed_addr(peer),
            true,
            now,
        );
        let [Action::Dial(_, opts)] = &actions[..] else {
            panic!()
        };
        let dialled = opts.connection_id();
        upgrades.hold(peer, "held");
        let actions = upgrades.on_dial_failed(peer, dialled, now);
        assert!(matches!(&actions[0], Action::Release(held) if held == &["held"]));
        assert_eq!(upgrades.link(&peer), Some(Link::RelayedFallback));

        // Soon after, a new relayed connection does not retry; much later it does.
        let again = upgrades.on_established(
            peer,
            ConnectionId::new_unchecked(2),
            &relayed_addr(peer),
            true,
            now,
        );
        assert!(again.is_empty());
        let later = upgrades.on_established(
            peer,
            ConnectionId::new_unchecked(3),
            &relayed_addr(peer),
            true,
            now + RETRY_AFTER,
        );
        assert!(matches!(later[..], [Action::Dial(..)]));
    }

    #[test]
    fn only_the_dialler_upgrades_and_only_where_enabled() {
        let peer = PeerId::random();
        let now = Instant::now();
        let mut upgrades = Upgrades::<()>::new(true);
        let inbound = upgrades.on_established(
            peer,
            ConnectionId::new_unchecked(1),
            &relayed_addr(peer),
            false,
            now,
        );
        assert!(inbound.is_empty(), "the other side initiates");
        let failed = upgrades.on_inbound_failed(peer, now);
        assert!(matches!(
            failed[..],
            [Action::Report(_, Link::RelayedFallback)]
        ));
        assert_eq!(upgrades.link(&peer), Some(Link::RelayedFallback));
        let mut native = Upgrades::<()>::new(false);
        let outbound = native.on_established(
            peer,
            ConnectionId::new_unchecked(1),
            &relayed_addr(peer),
            true,
            now,
        );
        assert!(outbound.is_empty());
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert!(upgrades
            .on_established(peer, ConnectionId::new_unchecked(2), &tcp, true, now)
            .is_empty());
        upgrades.on_closed(peer, ConnectionId::new_unchecked(1));
        assert_eq!(upgrades.link(&peer), None);
    }
}
