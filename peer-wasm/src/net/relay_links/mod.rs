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

use libp2p::{
    core::transport::ListenerId, multiaddr::Protocol, swarm::ConnectionId, Multiaddr, PeerId,
};
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

/// How long a dial to a relay may take before the next relay on the list is tried instead (a
/// relay whose packets are dropped would otherwise hold a place until the browser's TCP
/// timeout, minutes).
pub(crate) const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the event loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Dial this relay, and report the dial's id with [`RelayLinks::on_dial_started`].
    Dial {
        /// The relay.
        relay: PeerId,
        /// Its address, ending in `/p2p/<relay>`.
        addr: Multiaddr,
    },
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
    /// Never dialled: waiting for a free place among the [`KEEP`].
    Idle,
    /// Our dial is under way (its id once the event loop reported it).
    Dialing {
        connection: Option<ConnectionId>,
        since: Instant,
    },
    Connected {
        /// The circuit listener, once asked for.
        listener: Option<ListenerId>,
        /// When to ask for a reservation again after a refusal.
        listen_at: Option<Instant>,
        reservation: bool,
    },
    /// Lost or unreachable: down (dials to it refused, [`super::dial_gate`]) until dialled
    /// again, which happens from `until` when a place is free.
    Waiting { until: Instant },
}

impl State {
    /// Holds one of the [`KEEP`] places.
    fn active(&self) -> bool {
        matches!(self, Self::Dialing { .. } | Self::Connected { .. })
    }
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

impl Link {
    fn lose(&mut self, now: Instant) -> Duration {
        self.attempts = self.attempts.saturating_add(1);
        let delay = self.backoff.next_delay();
        self.state = State::Waiting { until: now + delay };
        delay
    }
}

/// Every relay this peer was given, in the order given (the page's own relay first).
#[derive(Debug)]
pub(crate) struct RelayLinks {
    links: Vec<Link>,
    /// Relays held at once ([`KEEP`] unless tuned).
    keep: usize,
    /// How long a dial may take ([`DIAL_TIMEOUT`] unless tuned).
    dial_timeout: Duration,
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
        Self {
            links,
            keep: KEEP,
            dial_timeout: DIAL_TIMEOUT,
        }
    }

    /// These links, kept and timed as `tuning` says.
    pub(crate) fn tuned(mut self, tuning: &super::Tuning) -> Self {
        self.keep = tuning.relays_kept.max(1);
        self.dial_timeout = tuning.relay_dial_timeout;
        self
    }

    /// How many relays are on the list.
    pub(crate) fn len(&self) -> usize {
        self.links.len()
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

    /// The relays that are down: lost or unreachable, waiting out their backoff or being
    /// dialled again by the link (only that dial goes to them).
    pub(crate) fn down(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.links
            .iter()
            .filter(|l| match l.state {
                State::Waiting { .. } => true,
                State::Dialing { .. } => l.attempts > 0,
                _ => false,
            })
            .map(|l| l.peer)
    }

    fn active(&self) -> usize {
        self.links.iter().filter(|l| l.state.active()).count()
    }

    /// What is due at `now`: dials that took too long given up, dials to fill the [`KEEP`]
    /// places (relays never tried first, in list order, then those whose wait is over),
    /// reservations to ask for.
    pub(crate) fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for link in &mut self.links {
            if matches!(link.state, State::Dialing { since, .. } if since + self.dial_timeout <= now)
            {
                link.lose(now);
            }
        }
        let mut active = self.active();
        for link in &mut self.links {
            if active >= self.keep {
                break;
            }
            let due = match link.state {
                State::Idle => true,
                State::Waiting { until } => until <= now,
                _ => false,
            };
            if due {
                link.state = State::Dialing {
                    connection: None,
                    since: now,
                };
                actions.push(Action::Dial {
                    relay: link.peer,
                    addr: link.addr.clone(),
                });
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

    /// The dial of an [`Action::Dial`] has this id (its failure is reported by it).
    pub(crate) fn on_dial_started(&mut self, peer: &PeerId, id: ConnectionId) {
        if let Some(Link {
            state: State::Dialing { connection, .. },
            ..
        }) = self.link_mut(peer)
        {
            *connection = Some(id);
        }
    }

    /// A connection to `peer` opened. Returns whether it is now a relay link: our own dial, or
    /// any connection to a relay on the list while a place is free (a DHT walk may reach a
    /// relay first). Other connections to relays (walks reach every relay of the network) are
    /// not links: no reservation, and their closing means nothing.
    pub(crate) fn on_connected(&mut self, peer: &PeerId) -> bool {
        let free = self.active() < self.keep;
        let Some(link) = self.link_mut(peer) else {
            return false;
        };
        let take = match link.state {
            State::Dialing { .. } => true,
            State::Idle | State::Waiting { .. } => free,
            State::Connected { .. } => false,
        };
        if take {
            link.state = State::Connected {
                listener: None,
                listen_at: None,
                reservation: false,
            };
            link.attempts = 0;
            link.backoff.reset();
        }
        take
    }

    /// A dial failed. When it was a relay link's own, the relay is down: returns it and the
    /// wait before it is tried again.
    pub(crate) fn on_dial_failed(
        &mut self,
        id: ConnectionId,
        now: Instant,
    ) -> Option<(PeerId, Duration)> {
        let link = self
            .links
            .iter_mut()
            .find(|l| matches!(l.state, State::Dialing { connection: Some(c), .. } if c == id))?;
        Some((link.peer, link.lose(now)))
    }

    /// The last connection to `peer` closed. When it was a relay link, the relay is down:
    /// returns the wait before it is tried again.
    pub(crate) fn on_closed(&mut self, peer: &PeerId, now: Instant) -> Option<Duration> {
        let link = self.link_mut(peer)?;
        matches!(link.state, State::Connected { .. }).then(|| link.lose(now))
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
        let free = self.active() < self.keep;
        self.links
            .iter()
            .filter_map(|l| match l.state {
                State::Dialing { since, .. } => Some(since + self.dial_timeout),
                State::Waiting { until } if free => Some(until),
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
    /// soonest retry) once every relay on the list has failed at least once; connecting
    /// before that.
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
        if self.links.iter().any(|l| l.attempts == 0) {
            return RelayState::Connecting;
        }
        let attempts = self.links.iter().map(|l| l.attempts).min().unwrap_or(0);
        let dialing = self
            .links
            .iter()
            .any(|l| matches!(l.state, State::Dialing { .. }));
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
mod tests;
