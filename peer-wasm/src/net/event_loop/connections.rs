//! Connections: opened, closed, failed dials (what each means for the bookkeeping, upgrades,
//! relay links and the routing table), direct upgrades carried out ([`crate::net::direct`]'s
//! actions), our WebRTC address announced, and dials asked for by
//! [`crate::net::Client::connect`].

use futures::channel::oneshot;
use libp2p::{
    core::ConnectedPoint,
    swarm::{
        dial_opts::{DialOpts, PeerCondition},
        ConnectionError, ConnectionId, DialError,
    },
    Multiaddr, PeerId,
};

use super::EventLoop;
use crate::{
    error_chain::error_chain,
    net::{direct::Action, outbound::Outbound, peer_id_of, Event, NetError},
};

impl EventLoop {
    /// Other browsers can reach this one over WebRTC at `<circuit address>/webrtc`: announce
    /// that beside the circuit address itself (identify and the DHT carry it).
    pub(super) fn announce_webrtc(&mut self, listen: &Multiaddr) {
        if !self.upgrades.enabled() || !crate::webrtc::through_circuit(listen) {
            return;
        }
        let Some(webrtc) = crate::webrtc::dial_addr_for(listen) else {
            return;
        };
        // Announced addresses do not end in our own id (identify adds it where needed).
        let without_self: Multiaddr = webrtc
            .iter()
            .take(webrtc.iter().count().saturating_sub(1))
            .collect();
        tracing::info!(address = %without_self, "reachable over WebRTC");
        self.swarm.add_external_address(without_self);
    }

    /// Does what the upgrade bookkeeping asks.
    pub(super) fn carry_out(&mut self, actions: Vec<Action<Outbound>>) {
        for action in actions {
            match action {
                Action::Dial(peer, opts) => {
                    let connection = opts.connection_id();
                    tracing::info!(%peer, "upgrading to a direct connection");
                    if let Err(e) = self.swarm.dial(opts) {
                        tracing::info!(%peer, "cannot dial directly: {e}");
                        let now = web_time::Instant::now();
                        let fallback = self.upgrades.on_dial_failed(peer, connection, now);
                        self.carry_out(fallback);
                    }
                }
                Action::Release(held) => {
                    for outbound in held {
                        self.send_request(outbound);
                    }
                }
                Action::Report(peer, link) => self.emit(Event::Link {
                    peer_id: peer.to_string(),
                    link,
                }),
            }
        }
    }

    pub(super) fn connect(
        &mut self,
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, NetError>>,
    ) {
        let peer = match peer_id_of(&addr) {
            Ok(peer) => peer,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let direct = crate::webrtc::split_dial_addr(&addr).is_some();
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr])
            .condition(PeerCondition::Always)
            .build();
        let connection = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                if direct {
                    self.upgrades.dialling_direct(peer, connection);
                }
                self.requests.dials.insert(connection, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(NetError::Request {
                    peer,
                    reason: e.to_string(),
                }));
            }
        }
    }

    /// A connection opened: bookkeeping, a waiting dial answered, a direct upgrade perhaps,
    /// a relay link taken up, a DHT walk if it is the way in.
    pub(super) fn on_established(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        endpoint: &ConnectedPoint,
        num_established: u32,
    ) {
        // What the connection goes over: the dialled address, or for an inbound one our
        // own listening address (a relayed connection's remote address names only the
        // peer, not the circuit).
        let via = match endpoint {
            ConnectedPoint::Dialer { address, .. } => address,
            ConnectedPoint::Listener { local_addr, .. } => local_addr,
        };
        self.book.on_established(
            connection_id,
            peer_id,
            endpoint.get_remote_address().clone(),
        );
        if let Some(reply) = self.requests.dials.remove(&connection_id) {
            let _ = reply.send(Ok(peer_id));
        }
        let actions = self.upgrades.on_established(
            peer_id,
            connection_id,
            via,
            endpoint.is_dialer(),
            web_time::Instant::now(),
        );
        self.carry_out(actions);
        // Any connection may be the one a relay link waits for (a DHT walk can reach a
        // relay before the link's own dial does).
        if self.relays.on_connected(&peer_id) {
            self.relay_connected(peer_id);
        }
        if num_established > 1 {
            return;
        }
        let cut_off = || self.swarm.connected_peers().count() == 1;
        let now = web_time::Instant::now();
        if self.dht.walks.on_first_connection(&peer_id, cut_off, now) {
            self.bootstrap();
        }
        self.emit(Event::PeerConnected {
            peer_id: peer_id.to_string(),
        });
    }

    /// A connection closed; with the peer's last one, what was known of it goes.
    pub(super) fn on_closed(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        num_established: u32,
        cause: Option<ConnectionError>,
    ) {
        self.upgrades.on_closed(peer_id, connection_id);
        self.book
            .on_closed(connection_id, peer_id, num_established == 0);
        if num_established > 0 {
            return;
        }
        tracing::debug!(%peer_id, ?cause, "disconnected");
        let now = web_time::Instant::now();
        if let Some(delay) = self.relays.on_closed(&peer_id, now) {
            self.report_relay_down(peer_id, delay);
            self.drive_relays();
        }
        self.emit(Event::PeerDisconnected {
            peer_id: peer_id.to_string(),
        });
    }

    /// A dial failed: a departed tab leaves the routing table; a waiting dial, an upgrade or a
    /// relay link hears of it.
    pub(super) fn on_dial_error(
        &mut self,
        peer: PeerId,
        connection_id: ConnectionId,
        error: &DialError,
    ) {
        tracing::debug!(%peer, "dial failed: {error}");
        if departed(error) {
            // The relay holds no reservation for it: the tab closed. Out of the routing
            // table, so lookups stop counting it as a peer that might hold a record but
            // did not answer, and walks stop handing it on. It comes back if it returns.
            tracing::info!(%peer, "peer left (the relay has no reservation for it)");
            self.swarm.behaviour_mut().kad.remove_peer(&peer);
        }
        if let Some(reply) = self.requests.dials.remove(&connection_id) {
            let _ = reply.send(Err(NetError::Request {
                peer,
                reason: error.to_string(),
            }));
        }
        let actions = self
            .upgrades
            .on_dial_failed(peer, connection_id, web_time::Instant::now());
        if !actions.is_empty() {
            let error = error_chain(error);
            tracing::info!(%peer, "no direct path ({error}); staying relayed");
        }
        self.carry_out(actions);
        let now = web_time::Instant::now();
        if let Some((relay, delay)) = self.relays.on_dial_failed(connection_id, now) {
            self.report_relay_down(relay, delay);
            self.drive_relays();
        }
    }
}

/// Whether a dial failed only because the relay holds no reservation for the peer (circuit
/// relay v2's NO_RESERVATION): a browser tab is reachable only through its reservation, so it
/// has left.
fn departed(error: &DialError) -> bool {
    match error {
        DialError::Transport(attempts) => {
            !attempts.is_empty()
                && attempts.iter().all(|(_, e)| {
                    error_chain(e).contains("Relay has no reservation for destination")
                })
        }
        _ => false,
    }
}
