//! The links to the relays: which to dial, when to try again, where we hold a reservation.
//!
//! A browser tab is reachable only through a relay's circuit (it cannot listen), so a tab with
//! one relay is cut off the moment that relay goes down, even though its direct WebRTC links to
//! other tabs are still up. A tab given several relays (`/api/relay` lists the relay and its
//! fellows) keeps [`KEEP`] of them connected, with a reservation on each; when one is lost it
//! dials the next on the list, and tries the lost one again with [`Backoff`] only while fewer
//! than [`KEEP`] are up. A list with unreachable or garbage entries costs a failed dial each
//! (then a growing wait), never the good entries.
//!
//! A pure state machine like [`super::direct`]: the event loop reports what happened, with
//! `now`, and carries out the [`Action`]s; nothing here does I/O.

use std::time::Duration;

use libp2p::{core::transport::ListenerId, multiaddr::Protocol, Multiaddr, PeerId};
use web_time::Instant;

use super::RelayState;
use crate::backoff::Backoff;

/// Relays held at once. Two: losing one leaves the tab reachable through the other, and each
/// costs the relay one connection and one reservation per tab.
pub(crate) const KEEP: usize = 2;

/// Relays taken from one list at most: a page given a long list (or a hostile one) dials only
/// these, [`KEEP`] at a time.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // browsers only (and tests)
pub(crate) const MAX_LISTED: usize = 8;

/// The relays a browser can dial from a list such as `/api/relay` gives (the relay's own
/// addresses, then its fellows'): WebSocket addresses ending in `/p2p/<id>`, the first of each
/// relay, in the order given, at most [`MAX_LISTED`]. Anything else (garbage, TCP only, no peer
/// id) is left out.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // browsers only (and tests)
pub(crate) fn browser_dialable(addrs: &[String]) -> Vec<Multiaddr> {
    let mut picked: Vec<(PeerId, Multiaddr)> = Vec::new();
    for addr in addrs.iter().filter_map(|a| a.parse::<Multiaddr>().ok()) {
        let websocket = addr
            .iter()
            .any(|p| matches!(p, Protocol::Ws(_) | Protocol::Wss(_)));
        let Ok(peer) = super::peer_id_of(&addr) else {
            continue;
        };
        if websocket && picked.len() < MAX_LISTED && !picked.iter().any(|(p, _)| *p == peer) {
            picked.push((peer, addr));
        }
    }
    picked.into_iter().map(|(_, addr)| addr).collect()
}

/// What the event loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Dial this relay.
    Dial(Multiaddr),
    /// Ask this relay for a reservation by listening on its circuit address; report the
    /// outcome with [`RelayLinks::on_listening`].
    Listen {
        /// The relay.
        relay: PeerId,
        /// `<relay address>/p2p-circuit`.
        circuit: Multiaddr,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not dialled: waiting for a free place among the [`KEEP`].
    Idle,
    Dialing,
    Connected {
        /// The circuit listener, once asked for.
        listener: Option<ListenerId>,
        /// When to ask for a reservation again after a refusal.
        listen_at: Option<Instant>,
        reservation: bool,
    },
    /// Lost or unreachable: may be dialled again from `until`.
    Waiting {
        until: Instant,
    },
}

#[derive(Debug, Clone)]
struct Link {
    peer: PeerId,
    addr: Multiaddr,
    state: State,
    backoff: Backoff,
    /// Failed attempts since this relay was last connected.
    attempts: u32,
}

/// Every relay this peer was given, in the order given (the page's own relay first).
#[derive(Debug, Default)]
pub(crate) struct RelayLinks {
    links: Vec<Link>,
}

impl RelayLinks {
    /// Links to `relays`, each `(peer id, address)`, none dialled yet; a relay listed twice is
    /// kept once.
    pub(crate) fn new(relays: impl IntoIterator<Item = (PeerId, Multiaddr)>) -> Self {
        let mut links: Vec<Link> = Vec::new();
        for (peer, addr) in relays {
            if links.iter().any(|l| l.peer == peer) {
                continue;
            }
            links.push(Link {
                peer,
                addr,
                state: State::Idle,
                backoff: Backoff::default(),
                attempts: 0,
            });
        }
        Self { links }
    }

    /// Whether `peer` is one of the relays.
    pub(crate) fn is_relay(&self, peer: &PeerId) -> bool {
        self.links.iter().any(|l| l.peer == *peer)
    }

    /// The relays connected now.
    pub(crate) fn connected(&self) -> impl Iterator<Item = (PeerId, &Multiaddr)> {
        self.links
            .iter()
            .filter(|l| matches!(l.state, State::Connected { .. }))
            .map(|l| (l.peer, &l.addr))
    }

    /// The relays that are down: lost or unreachable, waiting out their backoff.
    pub(crate) fn down(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.links
            .iter()
            .filter(|l| matches!(l.state, State::Waiting { .. }))
            .map(|l| l.peer)
    }

    /// What is due at `now`: dials to fill the [`KEEP`] places, reservations to ask for.
    pub(crate) fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for link in &mut self.links {
            if matches!(link.state, State::Waiting { until } if until <= now) {
                link.state = State::Idle;
            }
        }
        let mut active = self
            .links
            .iter()
            .filter(|l| matches!(l.state, State::Dialing | State::Connected { .. }))
            .count();
        for link in &mut self.links {
            if active >= KEEP {
                break;
            }
            if link.state == State::Idle {
                link.state = State::Dialing;
                actions.push(Action::Dial(link.addr.clone()));
                active += 1;
            }
        }
        for link in &mut self.links {
            if let State::Connected {
                listener: None,
                listen_at,
                ..
            } = &mut link.state
            {
                if listen_at.is_none_or(|at| at <= now) {
                    *listen_at = None;
                    actions.push(Action::Listen {
                        relay: link.peer,
                        circuit: link.addr.clone().with(Protocol::P2pCircuit),
                    });
                }
            }
        }
        actions
    }

    /// The first connection to `peer` opened. Returns whether it is a relay.
    pub(crate) fn on_connected(&mut self, peer: &PeerId) -> bool {
        let Some(link) = self.link_mut(peer) else {
            return false;
        };
        link.state = State::Connected {
            listener: None,
            listen_at: None,
            reservation: false,
        };
        link.attempts = 0;
        link.backoff.reset();
        true
    }

    /// The last connection to `peer` closed, or a dial to it failed. Returns the wait before
    /// this relay is tried again, when it is a relay that was up or being dialled.
    pub(crate) fn on_lost(&mut self, peer: &PeerId, now: Instant) -> Option<Duration> {
        let link = self.link_mut(peer)?;
        if !matches!(link.state, State::Dialing | State::Connected { .. }) {
            return None;
        }
        link.attempts = link.attempts.saturating_add(1);
        let delay = link.backoff.next_delay();
        link.state = State::Waiting { until: now + delay };
        Some(delay)
    }

    /// The outcome of an [`Action::Listen`]: the listener, or `None` when it could not start
    /// (asked again after a wait).
    pub(crate) fn on_listening(
        &mut self,
        peer: &PeerId,
        listener: Option<ListenerId>,
        now: Instant,
    ) {
        let Some(link) = self.link_mut(peer) else {
            return;
        };
        if let State::Connected {
            listener: slot,
            listen_at,
            ..
        } = &mut link.state
        {
            *slot = listener;
            if listener.is_none() {
                *listen_at = Some(now + link.backoff.next_delay());
            }
        }
    }

    /// The relay accepted our reservation.
    pub(crate) fn on_reservation(&mut self, peer: &PeerId) {
        if let Some(Link {
            state: State::Connected { reservation, .. },
            ..
        }) = self.link_mut(peer)
        {
            *reservation = true;
        }
    }

    /// A listener closed. When it was a relay's circuit, the reservation is gone; a relay that
    /// is still connected is asked again after a wait. Returns whether it was a circuit.
    pub(crate) fn on_listener_closed(&mut self, id: ListenerId, now: Instant) -> bool {
        for link in &mut self.links {
            if let State::Connected {
                listener,
                listen_at,
                reservation,
            } = &mut link.state
            {
                if *listener == Some(id) {
                    *listener = None;
                    *reservation = false;
                    *listen_at = Some(now + link.backoff.next_delay());
                    return true;
                }
            }
        }
        false
    }

    /// When [`poll`](Self::poll) next has something to do, if ever without new events.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let active = self
            .links
            .iter()
            .filter(|l| matches!(l.state, State::Dialing | State::Connected { .. }))
            .count();
        self.links
            .iter()
            .filter_map(|l| match l.state {
                State::Waiting { until } if active < KEEP => Some(until),
                State::Connected {
                    listener: None,
                    listen_at: Some(at),
                    ..
                } => Some(at),
                _ => None,
            })
            .min()
    }

    /// Whether any relay holds a reservation for us (other peers can reach us).
    pub(crate) fn reservation(&self) -> bool {
        self.links.iter().any(|l| {
            matches!(
                l.state,
                State::Connected {
                    reservation: true,
                    ..
                }
            )
        })
    }

    /// The link as the page shows it: connected while any relay is; reconnecting (with the
    /// soonest retry) once every relay has failed at least once; connecting before that.
    pub(crate) fn state(&self, now: Instant) -> RelayState {
        if self.links.is_empty() {
            return RelayState::None;
        }
        if self
            .links
            .iter()
            .any(|l| matches!(l.state, State::Connected { .. }))
        {
            return RelayState::Connected;
        }
        let Some(attempts) = self
            .links
            .iter()
            .map(|l| l.attempts)
            .filter(|a| *a > 0)
            .min()
        else {
            return RelayState::Connecting;
        };
        let dialing = self.links.iter().any(|l| l.state == State::Dialing);
        let retry_in_ms = if dialing {
            0
        } else {
            self.links
                .iter()
                .filter_map(|l| match l.state {
                    State::Waiting { until } => Some(until.saturating_duration_since(now)),
                    _ => None,
                })
                .min()
                .unwrap_or_default()
                .as_millis() as u64
        };
        RelayState::Reconnecting {
            retry_in_ms,
            attempts,
        }
    }

    fn link_mut(&mut self, peer: &PeerId) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.peer == *peer)
    }
}

// Native only: the browser test runner runs #[wasm_bindgen_test]s.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn relays(n: usize) -> (Vec<PeerId>, RelayLinks) {
        let peers: Vec<PeerId> = (0..n).map(|_| PeerId::random()).collect();
        let links = RelayLinks::new(peers.iter().enumerate().map(|(i, p)| {
            let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}/ws/p2p/{p}", 9000 + i)
                .parse()
                .unwrap();
            (*p, addr)
        }));
        (peers, links)
    }

    fn dials(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Dial(addr) => Some(addr.to_string()),
                Action::Listen { .. } => None,
            })
            .collect()
    }

    fn listens(actions: &[Action]) -> Vec<PeerId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Listen { relay, circuit } => {
                    assert!(circuit.to_string().ends_with("/p2p-circuit"), "{circuit}");
                    Some(*relay)
                }
                Action::Dial(_) => None,
            })
            .collect()
    }

    #[test]
    fn dials_the_first_two_and_reserves_on_each() {
        let (peers, mut links) = relays(3);
        let now = Instant::now();
        let first = links.poll(now);
        assert_eq!(dials(&first).len(), KEEP);
        assert!(dials(&first)[0].ends_with(&peers[0].to_string()));
        assert!(dials(&first)[1].ends_with(&peers[1].to_string()));
        assert_eq!(links.state(now), RelayState::Connecting);
        assert!(links.poll(now).is_empty(), "nothing twice");

        assert!(links.on_connected(&peers[0]));
        assert!(!links.on_connected(&PeerId::random()));
        assert_eq!(links.state(now), RelayState::Connected);
        let actions = links.poll(now);
        assert_eq!(listens(&actions), vec![peers[0]]);
        links.on_listening(&peers[0], Some(ListenerId::next()), now);
        assert!(links.poll(now).is_empty());
        assert!(!links.reservation());
        links.on_reservation(&peers[0]);
        assert!(links.reservation());
        assert_eq!(links.connected().count(), 1);
    }

    #[test]
    fn a_lost_relay_is_replaced_by_the_next_and_retried_only_when_a_place_is_free() {
        let (peers, mut links) = relays(3);
        let now = Instant::now();
        links.poll(now);
        links.on_connected(&peers[0]);
        links.on_connected(&peers[1]);
        links.poll(now);

        // The first relay goes down: the third is dialled at once.
        let delay = links.on_lost(&peers[0], now).expect("a relay");
        assert_eq!(delay, Duration::from_millis(500));
        assert_eq!(links.down().collect::<Vec<_>>(), vec![peers[0]]);
        let actions = links.poll(now);
        assert_eq!(dials(&actions).len(), 1);
        assert!(dials(&actions)[0].ends_with(&peers[2].to_string()));
        links.on_connected(&peers[2]);
        links.poll(now);
        // Two are up: the lost one is not dialled again when its wait is over.
        assert_eq!(links.next_wake(), None);
        assert!(dials(&links.poll(now + Duration::from_secs(60))).is_empty());

        // Another goes: now the first is dialled again (its wait is over).
        links.on_lost(&peers[1], now + Duration::from_secs(61));
        let again = links.poll(now + Duration::from_secs(61));
        assert_eq!(dials(&again).len(), 1);
        assert!(dials(&again)[0].ends_with(&peers[0].to_string()));
        assert_eq!(links.state(now), RelayState::Connected);
    }

    #[test]
    fn unreachable_relays_are_tried_again_with_a_growing_wait() {
        let (peers, mut links) = relays(2);
        let mut now = Instant::now();
        links.poll(now);
        let mut waits = Vec::new();
        for _ in 0..4 {
            let delay = links.on_lost(&peers[0], now).unwrap();
            links.on_lost(&peers[1], now).unwrap();
            waits.push(delay.as_millis());
            assert_eq!(links.next_wake(), Some(now + delay));
            assert!(links.poll(now).is_empty(), "not before the wait is over");
            let RelayState::Reconnecting {
                retry_in_ms,
                attempts,
            } = links.state(now)
            else {
                panic!("{:?}", links.state(now));
            };
            assert_eq!(retry_in_ms, delay.as_millis() as u64);
            assert_eq!(attempts as usize, waits.len());
            now += delay;
            assert_eq!(dials(&links.poll(now)).len(), 2);
        }
        assert_eq!(waits, [500, 1000, 2000, 4000]);
        // A success resets the wait.
        links.on_connected(&peers[0]);
        links.on_lost(&peers[0], now);
        assert_eq!(
            links.on_lost(&peers[1], now),
            Some(Duration::from_millis(8000))
        );
        assert!(links.on_lost(&peers[1], now).is_none(), "already waiting");
    }

    #[test]
    fn a_refused_or_dropped_reservation_is_asked_for_again_later() {
        let (peers, mut links) = relays(1);
        let now = Instant::now();
        links.poll(now);
        links.on_connected(&peers[0]);
        links.poll(now);
        let id = ListenerId::next();
        links.on_listening(&peers[0], Some(id), now);
        links.on_reservation(&peers[0]);
        assert!(!links.on_listener_closed(ListenerId::next(), now));
        assert!(links.on_listener_closed(id, now));
        assert!(!links.reservation());
        let at = links.next_wake().expect("a retry");
        assert!(at > now);
        assert!(links.poll(now).is_empty());
        assert_eq!(listens(&links.poll(at)), vec![peers[0]]);
        // listen_on itself failing waits too.
        links.on_listening(&peers[0], None, at);
        assert!(links.poll(at).is_empty());
        assert!(links.next_wake().unwrap() > at);
    }

    #[test]
    fn picks_one_websocket_address_with_a_peer_id_per_relay() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let addrs = vec![
            "not an address".to_owned(),
            format!("/ip4/127.0.0.1/tcp/1/p2p/{a}"),
            "/ip4/127.0.0.1/tcp/2/ws".to_owned(),
            format!("/ip4/127.0.0.1/tcp/3/ws/p2p/{a}"),
            format!("/ip4/10.0.0.1/tcp/3/ws/p2p/{a}"),
            format!("/dns4/relay.example.org/tcp/443/wss/p2p/{b}"),
        ];
        let picked: Vec<String> = browser_dialable(&addrs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            picked,
            [
                format!("/ip4/127.0.0.1/tcp/3/ws/p2p/{a}"),
                format!("/dns4/relay.example.org/tcp/443/wss/p2p/{b}")
            ]
        );
        assert!(browser_dialable(&addrs[..3]).is_empty());
        let many: Vec<String> = (0..100)
            .map(|i| format!("/ip4/127.0.0.1/tcp/{i}/ws/p2p/{}", PeerId::random()))
            .collect();
        assert_eq!(browser_dialable(&many).len(), MAX_LISTED);
    }

    #[test]
    fn no_relays_and_duplicates() {
        let mut none = RelayLinks::new([]);
        assert_eq!(none.state(Instant::now()), RelayState::None);
        assert!(none.poll(Instant::now()).is_empty());
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{peer}")
            .parse()
            .unwrap();
        let mut twice = RelayLinks::new([(peer, addr.clone()), (peer, addr)]);
        assert_eq!(dials(&twice.poll(Instant::now())).len(), 1);
    }
}
