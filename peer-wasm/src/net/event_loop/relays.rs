//! The relay links carried out on the swarm: dials, circuit listeners, reservations, and the
//! DHT walks that follow a new link. The decisions are [`crate::net::relay_links`]'s and
//! [`crate::net::rewalk`]'s.

use std::time::Duration;

use futures::future::{Fuse, FutureExt};
use futures_timer::Delay;
use libp2p::{core::transport::ListenerId, relay, swarm::dial_opts::DialOpts, PeerId};

use super::EventLoop;
use crate::net::{relay_links, Event};

impl EventLoop {
    /// Carries out what the relay links want now ([`crate::net::relay_links::RelayLinks::poll`]),
    /// tells the dial gate which relays are down, and sets the timer for the links' next wake.
    pub(super) fn drive_relays(&mut self) {
        let now = web_time::Instant::now();
        // A dial that fails at once frees its place for the next relay: poll again, at most
        // once per relay and once more.
        for _ in 0..=self.relays.len() {
            let actions = self.relays.poll(now);
            if actions.is_empty() {
                break;
            }
            for action in actions {
                match action {
                    relay_links::Action::Dial { relay, addr } => {
                        tracing::info!(%addr, "dialling a relay");
                        let dial = DialOpts::from(addr);
                        let id = dial.connection_id();
                        self.relays.on_dial_started(&relay, id);
                        self.swarm.behaviour_mut().gate.allow(id);
                        if let Err(e) = self.swarm.dial(dial) {
                            tracing::warn!(%relay, "cannot dial the relay: {e}");
                            if let Some((relay, delay)) = self.relays.on_dial_failed(id, now) {
                                self.report_relay_down(relay, delay);
                            }
                        }
                    }
                    relay_links::Action::Listen { relay, circuit } => {
                        let listener = match self.swarm.listen_on(circuit) {
                            Ok(id) => Some(id),
                            Err(e) => {
                                tracing::warn!(%relay, "cannot listen through the relay: {e}");
                                None
                            }
                        };
                        self.relays.on_listening(&relay, listener, now);
                    }
                }
            }
        }
        let down: Vec<PeerId> = self.relays.down().collect();
        self.swarm.behaviour_mut().gate.set_down(down);
        self.timers.relays = match self.relays.next_wake() {
            Some(at) => Delay::new(at.saturating_duration_since(now)).fuse(),
            None => Fuse::terminated(),
        };
    }

    /// A relay link was taken up: the relay is a DHT contact, and we ask it for a reservation.
    pub(super) fn relay_connected(&mut self, peer: PeerId) {
        let addr = self
            .relays
            .connected()
            .find(|(p, _)| *p == peer)
            .map(|(_, addr)| addr.clone());
        if let Some(addr) = addr {
            tracing::info!(%addr, "connected to a relay");
            self.swarm.behaviour_mut().kad.add_address(&peer, addr);
        }
        self.drive_relays();
        self.bootstrap();
        self.emit(Event::RelayConnected);
    }

    /// A relay link was lost or its dial failed: logged and reported; the caller drives the
    /// links on (another relay takes the place; this one is tried again after `delay`).
    pub(super) fn report_relay_down(&mut self, peer: PeerId, delay: Duration) {
        tracing::warn!(%peer, ?delay, "relay unreachable; retrying later");
        self.emit(Event::RelayDisconnected {
            retry_in_ms: delay.as_millis() as u64,
        });
    }

    pub(super) fn bootstrap(&mut self) {
        self.dht.walks.walked(web_time::Instant::now());
        if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
            tracing::debug!("DHT bootstrap skipped: {e}");
        }
    }

    pub(super) fn on_listener_closed(&mut self, listener: ListenerId, error: Option<String>) {
        if self
            .relays
            .on_listener_closed(listener, web_time::Instant::now())
        {
            // The relay is up but refused or dropped the reservation: ask again later.
            tracing::info!(?error, "a relay circuit listener closed");
            self.drive_relays();
        }
    }

    pub(super) fn on_relay_client(&mut self, event: relay::client::Event) {
        if let relay::client::Event::ReservationReqAccepted { relay_peer_id, .. } = event {
            tracing::info!(%relay_peer_id, "relay reservation accepted");
            self.relays.on_reservation(&relay_peer_id);
            self.emit(Event::ReservationAccepted);
        }
    }
}
