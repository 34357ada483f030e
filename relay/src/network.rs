//! The relay's libp2p side: transports, behaviour and the event loop that keeps the counters.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use futures::StreamExt;
use libp2p::{
    connection_limits::{self, ConnectionLimits},
    core::{muxing::StreamMuxerBox, transport::Boxed, upgrade::Version},
    identify,
    identity::Keypair,
    kad, memory_connection_limits, noise, ping, relay,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, websocket, yamux, Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, Transport,
};

use crate::{counting::Counted, Config, RelayError, Stats};

/// The peers' DHT: one for tabs and relays ([`jellyfish_protocols`] names both sides' protocols).
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new(jellyfish_protocols::KAD);
const IDENTIFY_PROTOCOL: &str = jellyfish_protocols::IDENTIFY;

/// Connections one peer may hold to the relay: a tab needs one; two more for a reload racing
/// the old connection's close.
const MAX_CONNECTIONS_PER_PEER: u32 = 3;
/// Inbound connections still being set up (TCP, WebSocket, noise, yamux) at once.
const MAX_PENDING_INBOUND: u32 = 256;

#[derive(NetworkBehaviour)]
struct Behaviour {
    /// The limits come first, so that a connection over them is refused before any protocol
    /// sees it.
    limits: connection_limits::Behaviour,
    memory: memory_connection_limits::Behaviour,
    per_ip: crate::per_ip::Behaviour,
    relay: relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
}

/// The swarm, bound and listening, not yet running.
pub(crate) struct Network {
    swarm: Swarm<Behaviour>,
    stats: Arc<Stats>,
    external_addrs: Vec<Multiaddr>,
    /// The peers holding a reservation now. Counted as a set: libp2p's relay also reports a
    /// closed reservation for connections that never held one, so a plain counter drifts low,
    /// and the page trusts this number to tell a tab it is the first on the network.
    reserved: std::collections::HashSet<PeerId>,
    /// The fellow relays (`--fellow`): the address browsers dial, and the peer id once known.
    fellows: Vec<(Multiaddr, Option<PeerId>)>,
}

/// How often fellow relays not reached yet are dialled again.
const FELLOW_REDIAL: Duration = Duration::from_secs(5);
/// Every this many [`FELLOW_REDIAL`]s (1 min), known fellows without a connection are dialled
/// too.
const FELLOW_RECHECK: u32 = 12;

/// The address without its `/p2p/<id>` part.
fn without_peer(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}

/// The peer id an address names in its `/p2p/` part, if any.
fn named_peer(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// WebSocket over TCP, every socket counted; DNS names resolved (fellow relays are usually
/// named like `/dns4/relay.example.org/tcp/443/wss`).
fn transport(
    key: &Keypair,
    stats: Arc<Stats>,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .map(move |stream, _| Counted::new(stream, stats.clone()));
    let tcp = libp2p::dns::tokio::Transport::system(tcp)?;
    Ok(websocket::Config::new(tcp)
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

impl Network {
    pub(crate) fn new(
        keypair: Keypair,
        config: &Config,
        stats: Arc<Stats>,
    ) -> Result<Self, RelayError> {
        let net_err = |e: &dyn std::fmt::Display| RelayError::Network(e.to_string());
        let transport_stats = stats.clone();
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_other_transport(|key| transport(key, transport_stats))
            .map_err(|e| net_err(&e))?
            .with_behaviour(|key| {
                let peer_id = key.public().to_peer_id();
                let per_minute = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
                let relay_config = relay::Config {
                    max_reservations: config.max_reservations,
                    max_circuits: config.max_circuits,
                    max_circuits_per_peer: config.max_circuits_per_peer,
                    max_circuit_bytes: config.max_circuit_bytes,
                    max_circuit_duration: config.max_circuit_duration(),
                    // Replaced below: libp2p's defaults are sized for a public relay of
                    // servers, not tabs that meet every peer through it.
                    circuit_src_rate_limiters: Vec::new(),
                    ..Default::default()
                }
                .circuit_src_per_peer(
                    per_minute(config.circuits_per_peer_per_minute),
                    Duration::from_secs(60),
                )
                .circuit_src_per_ip(
                    per_minute(config.circuits_per_ip_per_minute),
                    Duration::from_secs(60),
                );
                let mut kad_config = kad::Config::new(KAD_PROTOCOL);
                // The relay is a DHT contact, never a store: every inbound record reaches the
                // event loop as an event and is dropped there.
                kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
                let mut kad = kad::Behaviour::with_config(
                    peer_id,
                    kad::store::MemoryStore::new(peer_id),
                    kad_config,
                );
                kad.set_mode(Some(kad::Mode::Server));
                Behaviour {
                    limits: connection_limits::Behaviour::new(
                        ConnectionLimits::default()
                            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                            .with_max_established(Some(config.max_connections))
                            .with_max_pending_incoming(Some(MAX_PENDING_INBOUND)),
                    ),
                    memory: memory_connection_limits::Behaviour::with_max_percentage(
                        (config.max_memory_percent / 100.0).clamp(0.01, 1.0),
                    ),
                    per_ip: crate::per_ip::Behaviour::new(config.connections_per_ip),
                    relay: relay::Behaviour::new(peer_id, relay_config),
                    identify: identify::Behaviour::new(
                        identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                            .with_agent_version(
                                concat!("jellyfish-relay/", env!("CARGO_PKG_VERSION")).to_owned(),
                            ),
                    ),
                    ping: ping::Behaviour::default(),
                    kad,
                }
            })
            .map_err(|e| net_err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| RelayError::Network(format!("cannot listen on {addr}: {e}")))?;
        }
        for addr in &config.external_addrs {
            swarm.add_external_address(addr.clone());
        }
        Ok(Self {
            swarm,
            stats,
            external_addrs: config.external_addrs.clone(),
            reserved: Default::default(),
            fellows: config
                .fellows
                .iter()
                .map(|addr| (addr.clone(), named_peer(addr)))
                .collect(),
        })
    }

    pub(crate) fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Drives the swarm until `shutdown` completes.
    pub(crate) async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        self.publish_fellows();
        let mut redial = tokio::time::interval(FELLOW_REDIAL);
        let mut ticks: u32 = 0;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = redial.tick() => {
                    self.dial_fellows(ticks % FELLOW_RECHECK == 0);
                    ticks = ticks.wrapping_add(1);
                }
            }
        }
    }

    /// Dials the fellow relays whose id is not known yet, and with `all` also those whose id
    /// is known but that have no connection now (idle connections close after 60 s; Kademlia
    /// dials a fellow when it needs it, and this notices one that came back with a new key).
    fn dial_fellows(&mut self, all: bool) {
        for (addr, peer) in &self.fellows {
            match peer {
                Some(p) if !all || self.swarm.is_connected(p) => continue,
                _ => {}
            }
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%addr, "cannot dial the fellow relay: {e}");
            }
        }
    }

    /// A connection we dialled to `address` reached `peer`: when that is a fellow's address,
    /// we know its peer id now (a fellow that restarted with a new key is learnt again), and it
    /// joins our routing table (one DHT for every relay's tabs).
    fn fellow_connected(&mut self, peer: PeerId, address: &Multiaddr) {
        if peer == *self.swarm.local_peer_id() {
            return; // a relay named among its own fellows
        }
        let mut learnt = false;
        for (addr, id) in &mut self.fellows {
            if without_peer(addr) == without_peer(address) {
                if *id != Some(peer) {
                    tracing::info!(%addr, %peer, "fellow relay reached");
                    learnt = true;
                }
                *id = Some(peer);
                let dial = addr.clone();
                self.swarm.behaviour_mut().kad.add_address(&peer, dial);
            }
        }
        if learnt {
            self.publish_fellows();
        }
    }

    fn publish_fellows(&self) {
        let fellows = self
            .fellows
            .iter()
            .filter_map(|(addr, peer)| {
                let peer = (*peer)?;
                Some(match named_peer(addr) {
                    Some(_) => addr.to_string(),
                    None => format!("{addr}/p2p/{peer}"),
                })
            })
            .collect();
        if let Ok(mut shared) = self.stats.fellows.write() {
            *shared = fellows;
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let stats = &self.stats;
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "libp2p listening");
                if self.external_addrs.is_empty() {
                    // The relay server only serves once it has an external address; on a
                    // machine that is reachable as it listens, that is the listen address.
                    self.swarm.add_external_address(address);
                }
                self.publish_addrs();
            }
            SwarmEvent::ExternalAddrConfirmed { .. } | SwarmEvent::ExternalAddrExpired { .. } => {
                self.publish_addrs()
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(%peer_id, "connection opened");
                Stats::incr(&stats.connections);
                Stats::incr(&stats.connections_total);
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = &endpoint {
                    self.fellow_connected(peer_id, address);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                tracing::debug!(%peer_id, "connection closed");
                Stats::decr(&stats.connections);
                let fellow = self.fellows.iter().any(|(_, id)| *id == Some(peer_id));
                if num_established == 0 && !fellow {
                    // A browser is reachable only through its connection here (its circuit
                    // address names this relay): once that is gone, so is the peer. Forget it,
                    // so lookups are not sent towards tabs that closed, where every circuit
                    // would be denied and a newcomer meeting only those would stay alone.
                    self.swarm.behaviour_mut().kad.remove_peer(&peer_id);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => self.on_relay(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(_)) => {}
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!("incoming connection failed: {error}");
            }
            _ => {}
        }
    }

    fn publish_addrs(&self) {
        let me = self.peer_id();
        let addrs = self
            .swarm
            .external_addresses()
            .map(|a| format!("{a}/p2p/{me}"))
            .collect();
        if let Ok(mut shared) = self.stats.addrs.write() {
            *shared = addrs;
        }
    }

    fn on_relay(&mut self, event: relay::Event) {
        let stats = &self.stats;
        match event {
            relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed,
            } => {
                tracing::info!(%src_peer_id, renewed, "reservation accepted");
                self.reserved.insert(src_peer_id);
                Stats::set(&stats.reservations, self.reserved.len() as u64);
                Stats::incr(&stats.reservations_total);
            }
            relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                tracing::info!(%src_peer_id, "reservation denied");
            }
            relay::Event::ReservationClosed { src_peer_id }
            | relay::Event::ReservationTimedOut { src_peer_id } => {
                if self.reserved.remove(&src_peer_id) {
                    tracing::info!(%src_peer_id, "reservation ended");
                }
                Stats::set(&stats.reservations, self.reserved.len() as u64);
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                tracing::info!(%src_peer_id, %dst_peer_id, "circuit opened");
                Stats::incr(&stats.circuits);
                Stats::incr(&stats.circuits_total);
            }
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                error,
            } => {
                tracing::info!(%src_peer_id, %dst_peer_id, ?error, "circuit closed");
                Stats::decr(&stats.circuits);
            }
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                ..
            } => {
                tracing::info!(%src_peer_id, %dst_peer_id, "circuit denied");
            }
            _ => {}
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        // Browsers announce the circuit address their reservation gives them; keeping it in
        // the routing table is what lets one browser find another through the DHT.
        // A fellow that dialled us first names its address here. Anyone can name any address,
        // so we only dial it: the peer id is learnt from a connection we made.
        let named: Vec<Multiaddr> = self
            .fellows
            .iter()
            .filter(|(addr, id)| {
                id.is_none()
                    && info
                        .listen_addrs
                        .iter()
                        .any(|a| without_peer(a) == without_peer(addr))
            })
            .map(|(addr, _)| addr.clone())
            .collect();
        for addr in named {
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%addr, "cannot dial the fellow relay: {e}");
            }
        }
        if info.protocols.contains(&KAD_PROTOCOL) {
            for addr in info.listen_addrs {
                self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
            }
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        if let kad::Event::InboundRequest { request } = event {
            match request {
                kad::InboundRequest::PutRecord { source, .. } => {
                    tracing::debug!(%source, "DHT record refused: the relay stores none");
                    Stats::incr(&self.stats.records_refused);
                }
                kad::InboundRequest::AddProvider { .. } => {
                    Stats::incr(&self.stats.records_refused);
                }
                _ => {}
            }
        }
    }
}
