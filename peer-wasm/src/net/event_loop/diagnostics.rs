//! Diagnostics, apart from the protocol paths: what the page's footer, the network view and the
//! tests read (status, the routing table, one peer's details). Reads the swarm and the rooms;
//! changes nothing.

use std::collections::HashSet;

use libp2p::{kad, PeerId};

use super::EventLoop;
use crate::net::{KnownPeer, PeerInfo, Status};

impl EventLoop {
    /// Everything known of one connected peer.
    pub(super) fn peer_info(&self, peer: PeerId) -> PeerInfo {
        self.book.info(peer, self.upgrades.link(&peer))
    }

    /// This peer's state, for the page's footer and the tests.
    pub(super) fn status(&mut self) -> Status {
        let mut listen_addrs: Vec<String> = self
            .swarm
            .listeners()
            .chain(self.swarm.external_addresses())
            .map(ToString::to_string)
            .collect();
        listen_addrs.dedup();
        let (sent, received) = crate::webrtc::traffic();
        let (channels, streams) = crate::webrtc::channel_counts();
        let known_peers = self.known_peer_count();
        Status {
            peer_id: self.swarm.local_peer_id().to_string(),
            relay: self.relays.state(web_time::Instant::now()),
            reservation: self.relays.reservation(),
            relays_connected: self
                .relays
                .connected()
                .map(|(p, _)| p.to_string())
                .collect(),
            listen_addrs,
            connected_peers: self
                .swarm
                .connected_peers()
                .map(ToString::to_string)
                .collect(),
            known_peers,
            records_held: {
                use kad::store::RecordStore;
                self.swarm.behaviour_mut().kad.store_mut().records().count()
            },
            direct_bytes_sent: sent,
            direct_bytes_received: received,
            direct_channels_opened: channels,
            direct_streams: streams,
            direct_messages_sent: crate::webrtc::messages_sent(),
            placements_from_table: self.dht.placements_from_table,
        }
    }

    /// Peers in the routing table.
    pub(super) fn known_peer_count(&mut self) -> usize {
        self.swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|bucket| bucket.num_entries())
            .sum()
    }

    /// The routing table, each peer with how it is connected.
    pub(super) fn known_peers(&mut self) -> Vec<KnownPeer> {
        let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        let mut peers = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let peer = *entry.node.key.preimage();
                peers.push(KnownPeer {
                    peer_id: peer.to_string(),
                    addrs: entry.node.value.iter().map(ToString::to_string).collect(),
                    connected: connected.contains(&peer),
                    link: None,
                });
            }
        }
        for peer in &mut peers {
            if let Ok(id) = peer.peer_id.parse() {
                peer.link = self.upgrades.link(&id);
            }
        }
        peers
    }
}
