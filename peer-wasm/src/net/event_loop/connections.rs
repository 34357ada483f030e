//! Connections: direct upgrades carried out ([`crate::net::direct`]'s actions), our WebRTC
//! address announced, and dials asked for by [`crate::net::Client::connect`].

use futures::channel::oneshot;
use libp2p::{
    swarm::dial_opts::{DialOpts, PeerCondition},
    Multiaddr, PeerId,
};

use super::EventLoop;
use crate::net::{direct::Action, outbound::Outbound, peer_id_of, Event, NetError};

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
                self.pending_connects.insert(connection, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(NetError::Request {
                    peer,
                    reason: e.to_string(),
                }));
            }
        }
    }
}
