//! The libp2p behaviour of a Jellyfish peer: one field per protocol.

use std::time::Duration;

use libp2p::{
    connection_limits::{self, ConnectionLimits},
    identify,
    identity::Keypair,
    kad, ping, relay, request_response,
    swarm::NetworkBehaviour,
};

use super::{direct_first::DirectFirst, prefer_direct::PreferDirect};
use crate::protocol::{self, KAD_PROTOCOL, RPC_PROTOCOL};

/// Kademlia's k: libp2p's default replication factor and bucket size.
pub(crate) const K_VALUE: u16 = 20;

/// The identify protocol version Jellyfish peers announce.
pub(crate) const IDENTIFY_PROTOCOL: &str = jellyfish_protocols::IDENTIFY;

/// Connections to one peer: the relayed one, the direct one, and room for both sides dialling
/// at once (which can make a second of each).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Connections in all: a tab talks to its k-buckets' worth of peers (k = 20 per bucket, a few
/// buckets filled in a network of thousands) and the peers it places blocks on; 256 leaves room
/// and bounds what a crowd of Sybils can open (each connection costs a data channel or a
/// relayed stream and its buffers).
pub const MAX_CONNECTIONS: u32 = 256;
/// Inbound connections still being set up: a dial storm is refused before it costs handshakes.
pub const MAX_PENDING_INBOUND: u32 = 32;
/// Inbound connections established: below [`MAX_CONNECTIONS`], so that peers dialling in can
/// never take the room this peer needs to dial out (its relay, the holders it places on).
pub const MAX_INBOUND: u32 = 192;
/// Concurrent request streams on one connection (libp2p's default is 100): each may carry a
/// 1 MiB block, so this bounds the bytes one connection holds in requests to about 16 MiB. An
/// upload keeps at most its pipeline (4 blocks) in flight to one peer.
pub const MAX_STREAMS_PER_CONNECTION: usize = 16;

/// The connection limits every peer applies (also to the relay's connection).
pub(crate) fn connection_limits() -> ConnectionLimits {
    ConnectionLimits::default()
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
        .with_max_established(Some(MAX_CONNECTIONS))
        .with_max_established_incoming(Some(MAX_INBOUND))
        .with_max_pending_incoming(Some(MAX_PENDING_INBOUND))
}

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First, so that a connection over the limits is refused before any protocol sees it.
    pub(crate) limits: connection_limits::Behaviour,
    /// Refuses dials to relays that are down ([`super::dial_gate`]).
    pub(crate) gate: super::dial_gate::DialGate,
    pub(crate) relay_client: relay::client::Behaviour,
    /// Opens and accepts WebRTC signalling streams for the WebRTC transport.
    pub(crate) signaling: crate::webrtc::signaling::Behaviour,
    pub(crate) identify: super::identify::Identify,
    pub(crate) ping: ping::Behaviour,
    /// Its requests go over a peer's direct connection when there is one ([`DirectFirst`]).
    pub(crate) kad: DirectFirst<kad::Behaviour<super::journaled_store::JournaledStore>>,
    /// Block and hello requests: over the direct connection to a peer once there is one.
    pub(crate) rpc: PreferDirect<request_response::Behaviour<protocol::Codec>>,
}

impl Behaviour {
    pub(crate) fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        signaling: crate::webrtc::signaling::Behaviour,
        config: &super::Config,
    ) -> Self {
        let peer_id = key.public().to_peer_id();

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        // Nothing enters the store unchecked: inbound records reach the event loop as events,
        // which (once records exist) validates them before storing.
        kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
        kad_config.set_query_timeout(Duration::from_secs(30));
        kad_config.set_max_packet_size(4 * crate::record::MAX_RECORD_BYTES);
        // Records expire 90 days after their owner last published them (net::record_limits):
        // owners republish at log-in and hourly while logged in (the publication interval);
        // holders re-replicate what they hold with the time left.
        kad_config.set_record_ttl(Some(super::record_limits::RECORD_TTL));
        // Every peer that answered a record lookup without the record is reported (as a
        // "cache candidate"), up to k: a lookup that finds nothing must know how many peers it
        // heard before it says so (net::record_policy). Nothing is cached by it.
        kad_config.set_caching(kad::Caching::Enabled { max_peers: K_VALUE });
        kad_config.set_provider_record_ttl(None);
        kad_config.set_replication_interval(Some(config.tuning.record_replication));
        kad_config.set_publication_interval(Some(Duration::from_secs(60 * 60)));
        if let Some(interval) = config.bootstrap_interval {
            kad_config.set_periodic_bootstrap_interval(Some(interval));
        }
        let store = super::journaled_store::JournaledStore::new(
            kad::store::MemoryStore::with_config(
                peer_id,
                kad::store::MemoryStoreConfig {
                    max_records: super::record_limits::MAX_RECORDS,
                    ..Default::default()
                },
            ),
            config.record_journal.clone(),
        );
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
        // Browser peers are reachable through their relay reservation, so they answer DHT
        // queries like any other peer; automatic mode would keep them clients forever because
        // they have no confirmed external address of their own.
        kad.set_mode(Some(kad::Mode::Server));

        Self {
            limits: connection_limits::Behaviour::new(connection_limits()),
            gate: Default::default(),
            relay_client,
            signaling,
            identify: super::identify::Identify(identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                    .with_agent_version(config.agent.clone())
                    .with_push_listen_addr_updates(true),
            )),
            ping: ping::Behaviour::new(match config.ping_interval {
                Some(interval) => ping::Config::new().with_interval(interval),
                None => ping::Config::new(),
            }),
            kad: DirectFirst::new(kad),
            rpc: PreferDirect::new(request_response::Behaviour::with_codec(
                protocol::Codec,
                [(RPC_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(MAX_STREAMS_PER_CONNECTION),
            )),
        }
    }
}
