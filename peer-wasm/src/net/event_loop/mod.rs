//! The event loop: owns the swarm, runs commands, answers peers, keeps the relay links up.
//! The decisions live in rooms that do no I/O ([`super::relay_links`], [`super::direct`],
//! [`super::outbound`], [`super::inbound`], [`super::rewalk`], [`super::record_policy`],
//! [`super::record_limits`], [`super::peer_book`]); this module carries them out on the swarm.
//! What the page reads about the network is in `diagnostics`.

mod connections;
mod dht;
mod diagnostics;
mod relays;
mod requests;

use std::collections::{HashMap, HashSet};

use futures::{
    channel::{mpsc, oneshot},
    future::Fuse,
    StreamExt,
};
use futures_timer::Delay;
use libp2p::{
    kad,
    multiaddr::Protocol,
    request_response::{self, OutboundRequestId},
    swarm::{ConnectionId, SwarmEvent},
    PeerId, Swarm,
};

use super::{
    behaviour::BehaviourEvent,
    client::Command,
    direct::Upgrades,
    inbound::Waiting,
    outbound::{Outbound, Resends},
    peer_book::PeerBook,
    peer_id_of,
    queries::Query,
    record_limits::RecordLimits,
    record_policy::{GetAnswers, VerifiedValues},
    relay_links::RelayLinks,
    rewalk::Walks,
    Behaviour, Client, Config, Event, InboundRequest, NetError, Started,
};
use crate::{
    error_chain::error_chain,
    protocol::Response,
    record::{LetterBundle, RecordKind},
};

/// Commands waiting in the queue before `Client` calls start to wait.
const COMMAND_QUEUE: usize = 32;
/// Events kept for a slow reader before new ones are dropped.
const EVENT_QUEUE: usize = 256;

/// Inbound requests waiting for the application before new ones are refused as "busy" (and
/// at most [`super::Tuning::waiting_per_peer`] of them from one peer: a limit above this one
/// changes nothing).
const INBOUND_QUEUE: usize = 64;

/// Who waits for the answer to a request handed to the application.
enum Asker {
    /// Another peer, over its stream.
    Remote(request_response::ResponseChannel<Response>),
    /// This peer itself (a reader that holds a copy of the block it wants, say).
    Local(super::outbound::ResponseSender),
}

/// Owns the swarm; see the module map in [`crate::net`].
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    /// Inbound requests: answered here (hello) or handed to the application.
    inbound: Inbound,
    /// Requests of this peer waiting for the network.
    requests: Requests,
    /// The links to the relays ([`super::relay_links`]).
    relays: RelayLinks,
    /// The DHT: queries in flight, what is kept of others' records, when to walk.
    dht: Dht,
    /// Relayed connections being upgraded to direct ones, and the requests waiting for them.
    upgrades: Upgrades<Outbound>,
    /// The connected peers: connections, announcements, round trips ([`super::peer_book`]).
    book: PeerBook,
    /// When the rooms next want to be woken.
    timers: Timers,
}

/// Inbound requests, and what answering them needs.
struct Inbound {
    /// Our agent string, for hello.
    agent: String,
    /// Requests handed to the application ([`super::inbound`]), by id.
    waiting: Waiting<Asker>,
    /// The application's queue of them.
    queue: mpsc::Sender<InboundRequest>,
}

/// Requests of this peer waiting for the network.
struct Requests {
    /// Requests to other peers in flight, by id.
    in_flight: HashMap<OutboundRequestId, Outbound>,
    /// Requests cut by a closing connection, to go again when `timers.resend` fires.
    cut: Resends<Outbound>,
    /// Dials asked for by [`Client::connect`], by connection.
    dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NetError>>>,
    /// The first pause before a cut request goes again ([`super::Tuning::resend_after`]).
    resend_after: std::time::Duration,
}

/// The DHT's bookkeeping besides libp2p-kad's own.
struct Dht {
    /// Kademlia queries in flight, by id, with what each is for ([`super::queries`]).
    queries: HashMap<kad::QueryId, Query>,
    /// What this peer keeps of others' records ([`super::record_limits`]).
    limits: RecordLimits,
    /// When to walk the DHT ([`super::rewalk`]).
    walks: Walks,
    /// Placements answered from the routing table without a walk ([`super::table_answer`]).
    placements_from_table: u64,
    /// The record values this tab verified last ([`VerifiedValues`]).
    verified_values: VerifiedValues,
}

/// The loop's timers: each fires when a room wants to be woken.
struct Timers {
    /// The relay links' next wake ([`RelayLinks::next_wake`]).
    relays: Fuse<Delay>,
    /// The next extra DHT walk while the routing table is thin.
    rewalk: Fuse<Delay>,
    /// The first cut request due to go again.
    resend: Fuse<Delay>,
}

impl EventLoop {
    /// Sets the swarm up as `config` says and returns the loop, its client and its events.
    pub(crate) fn new(
        mut swarm: Swarm<Behaviour>,
        mut config: Config,
    ) -> Result<(Self, Started), NetError> {
        let persisted_records = std::mem::take(&mut config.persisted_records);
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Setup(format!("cannot listen on {addr}: {e}")))?;
        }
        let mut bootstrap_peers = HashSet::new();
        for addr in &config.bootstrap {
            let peer = peer_id_of(addr)?;
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, "cannot dial bootstrap peer: {e}");
            }
            bootstrap_peers.insert(peer);
        }
        let relays = config
            .relays
            .iter()
            .map(|addr| Ok((peer_id_of(addr)?, addr.clone())))
            .collect::<Result<Vec<_>, NetError>>()?;

        let (command_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (events, event_rx) = mpsc::channel(EVENT_QUEUE);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let client = Client {
            commands: command_tx,
            peer_id: *swarm.local_peer_id(),
        };
        let mut event_loop = Self {
            swarm,
            commands,
            events,
            inbound: Inbound {
                agent: config.agent,
                waiting: Waiting::with_limit(config.tuning.waiting_per_peer),
                queue: inbound_tx,
            },
            requests: Requests {
                in_flight: HashMap::new(),
                cut: Resends::default(),
                dials: HashMap::new(),
                resend_after: config.tuning.resend_after,
            },
            relays: RelayLinks::new(relays).tuned(&config.tuning),
            dht: Dht {
                queries: HashMap::new(),
                limits: RecordLimits::default(),
                walks: Walks::new(bootstrap_peers).tuned(&config.tuning),
                placements_from_table: 0,
                verified_values: VerifiedValues::default(),
            },
            upgrades: Upgrades::new(config.direct).tuned(&config.tuning),
            book: PeerBook::default(),
            timers: Timers {
                relays: Fuse::terminated(),
                rewalk: Fuse::terminated(),
                resend: Fuse::terminated(),
            },
        };
        event_loop.restore(persisted_records);
        event_loop.drive_relays();
        Ok((
            event_loop,
            Started {
                client,
                events: event_rx,
                inbound: inbound_rx,
            },
        ))
    }

    /// Runs until every [`Client`] is dropped.
    pub(crate) async fn run(mut self) {
        loop {
            futures::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.next() => match command {
                    Some(Command::Shutdown) => {
                        tracing::info!("asked to stop");
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        tracing::info!("every client handle is gone; the peer stops");
                        return;
                    }
                },
                () = &mut self.timers.relays => self.drive_relays(),
                () = &mut self.timers.rewalk => self.rewalk(),
                () = &mut self.timers.resend => self.on_resend(),
            }
        }
    }

    fn emit(&mut self, event: Event) {
        if let Err(e) = self.events.try_send(event) {
            if e.is_full() {
                tracing::debug!("event dropped: nobody reads events fast enough");
            }
        }
    }

    // ---- swarm events ----

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(e)) => self.on_relay_client(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.on_identify(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(e)) => self.on_rpc(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => {
                if let Ok(rtt) = e.result {
                    self.book.on_rtt(e.peer, rtt.as_secs_f64() * 1000.0);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Signaling(())) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => self.on_established(peer_id, connection_id, &endpoint, num_established.get()),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => self.on_closed(peer_id, connection_id, num_established, cause),
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                connection_id,
                error,
                ..
            } => self.on_dial_error(peer, connection_id, &error),
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } if crate::webrtc::is_webrtc(&send_back_addr) => {
                if let Some(Protocol::P2p(peer)) = send_back_addr.iter().last() {
                    let error = error_chain(&error);
                    tracing::info!(%peer, "direct connection from the peer failed ({error}); staying relayed");
                    let now = web_time::Instant::now();
                    let actions = self.upgrades.on_inbound_failed(peer, now);
                    self.carry_out(actions);
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => self.on_listener_closed(listener_id, reason.err().map(|e| e.to_string())),
            SwarmEvent::ListenerError { listener_id, error } => {
                self.on_listener_closed(listener_id, Some(error.to_string()))
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.announce_webrtc(&address);
            }
            _ => {}
        }
    }

    // ---- commands ----

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.known_peers());
            }
            Command::Discover(reply) => {
                let kad = &mut self.swarm.behaviour_mut().kad;
                if kad.kbuckets().all(|bucket| bucket.num_entries() == 0) {
                    let _ = reply.send(Err(NetError::NoKnownPeers));
                    return;
                }
                let local = *self.swarm.local_peer_id();
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(local);
                self.dht.queries.insert(id, Query::Discover(reply));
            }
            Command::PutRecord { record, to, reply } => {
                use kad::store::RecordStore;
                if let Err(e) = self.store_record(&record, None, None) {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                let key = kad::RecordKey::new(&record.record().key());
                // A letter travels as a bundle of one; the holders merge it into theirs.
                let letter = record.record().kind == RecordKind::Letter;
                let value = match letter {
                    true => LetterBundle::wire(std::slice::from_ref(&record)),
                    false => record.wire().to_vec(),
                };
                // Kademlia stores what it publishes here first, over what is held: a merged
                // bundle goes back once it has.
                let local = *self.swarm.local_peer_id();
                let kad = &mut self.swarm.behaviour_mut().kad;
                let merged = letter
                    .then(|| kad.store_mut().get(&key).map(|r| r.into_owned()))
                    .flatten();
                let record = kad::Record::new(key, value);
                let put = match to {
                    // Held here as `put_record` holds it (this peer its publisher, so it is
                    // republished hourly), then sent to the peers already walked for.
                    Some(peers) => {
                        let mut held = record.clone();
                        held.publisher = Some(local);
                        kad.store_mut().put(held).map(|()| {
                            kad.put_record_to(record, peers.into_iter(), kad::Quorum::One)
                        })
                    }
                    None => kad.put_record(record, kad::Quorum::One),
                };
                if let Some(merged) = merged {
                    let _ = kad.store_mut().put(merged);
                }
                match put {
                    Ok(id) => {
                        self.dht.queries.insert(id, Query::Put(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::NotStored(e.to_string())));
                    }
                }
            }
            Command::GetRecord { key, reply } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_record(kad::RecordKey::new(&key));
                self.dht
                    .queries
                    .insert(id, Query::Get(GetAnswers::new(key), reply));
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if peer == *self.swarm.local_peer_id() {
                    // A peer asking itself (it holds a copy of what it wants) gets its own
                    // holder's answer, with no network in between.
                    self.hand_to_application(peer, request, Asker::Local(reply));
                    return;
                }
                if let Some(outbound) = self.upgrades.hold(
                    peer,
                    Outbound::new(peer, request, reply).resending_after(self.requests.resend_after),
                ) {
                    self.send_request(outbound);
                }
            }
            Command::Respond { id, response } => {
                if let Some((_, asker)) = self.inbound.waiting.take(id) {
                    self.reply(asker, response);
                }
            }
            Command::Shutdown => {}
            Command::Connect { addr, reply } => self.connect(addr, reply),
            Command::Lookup {
                key,
                results,
                reply,
            } => self.walk(key, results, Query::Lookup(reply)),
            Command::PeerInfo { peer, reply } => {
                let _ = reply.send(self.peer_info(peer));
            }
            Command::ClosestPeers {
                key,
                results,
                reply,
            } => self.walk(key, results, Query::Closest(reply)),
            Command::PlacementPeers {
                key,
                results,
                reply,
            } => self.placement_peers(key, results, reply),
            Command::NearbyPeers { key, reply } => {
                let target = libp2p::kad::KBucketKey::new(key);
                let peers = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_closest_local_peers(&target)
                    .take(usize::from(crate::net::behaviour::K_VALUE))
                    .map(|key| *key.preimage())
                    .collect();
                let _ = reply.send(peers);
            }
        }
    }
}
