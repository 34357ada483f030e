//! The event loop: owns the swarm, runs commands, answers peers, keeps the relay link up.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::{
    channel::{mpsc, oneshot},
    future::{Fuse, FutureExt},
    StreamExt,
};
use futures_timer::Delay;
use libp2p::{
    core::transport::ListenerId,
    identify, kad,
    multiaddr::Protocol,
    relay,
    request_response::{self, OutboundRequestId},
    swarm::{
        dial_opts::{DialOpts, PeerCondition},
        ConnectionId, SwarmEvent,
    },
    Multiaddr, PeerId, Swarm,
};

use super::{
    behaviour::BehaviourEvent,
    client::Command,
    direct::{Action, Upgrades},
    journaled_store::PersistedRecord,
    outbound::{Failure, Next, Outbound},
    peer_id_of,
    queries::Query,
    record_limits::{Admit, Candidate, HeldRecords, RecordLimits},
    record_policy::{self, GetAnswers},
    relay_links::{self, RelayLinks},
    rewalk::Rewalk,
    Behaviour, Client, Config, Event, InboundRequest, KnownPeer, LookupStats, NetError, PeerInfo,
    Started, Status,
};
use crate::{
    error_chain::error_chain,
    protocol::{Request, Response, KAD_PROTOCOL, RPC_PROTOCOL},
    record::{RecordError, VerifiedRecord},
};

/// A peer cut off from every other walks the DHT again on reconnecting to a bootstrap peer, at
/// most this often.
const REBOOTSTRAP_AFTER: Duration = Duration::from_secs(5 * 60);
/// Commands waiting in the queue before `Client` calls start to wait.
const COMMAND_QUEUE: usize = 32;
/// Events kept for a slow reader before new ones are dropped.
const EVENT_QUEUE: usize = 256;

/// Inbound requests waiting for the application before new ones are refused as "busy".
const INBOUND_QUEUE: usize = 64;
/// Inbound requests of one peer waiting for the application at once: a peer that sends more is
/// told it is busy, so one spammer cannot fill the queue and make this holder busy for
/// everyone (it takes 8 peers to fill it). An uploader keeps 4 blocks in flight, so 8 is twice
/// what an honest peer needs.
const INBOUND_PER_PEER: usize = 8;

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
    agent: String,
    /// The links to the relays ([`relay_links`]).
    relays: RelayLinks,
    bootstrap_peers: HashSet<PeerId>,
    /// When this peer last walked the DHT to fill its routing table.
    last_bootstrap: Option<web_time::Instant>,
    /// Extra walks while the routing table is thin ([`super::rewalk`]), and when the next is due.
    rewalk: Rewalk,
    rewalk_at: Fuse<Delay>,
    retry: Fuse<Delay>,
    /// Requests cut by a closing connection, to go again when `resend` fires.
    to_resend: Vec<(web_time::Instant, Outbound)>,
    resend: Fuse<Delay>,
    /// Kademlia queries in flight, by id, with what each is for.
    queries: HashMap<kad::QueryId, Query>,
    /// What this peer keeps of others' records ([`super::record_limits`]).
    record_limits: RecordLimits,
    /// Requests in flight, by id.
    pending_requests: HashMap<OutboundRequestId, Outbound>,
    /// Inbound requests handed to the application, by the id it answers with.
    pending_inbound: HashMap<u64, (PeerId, Asker)>,
    /// How many of `pending_inbound` each peer has.
    inbound_per_peer: HashMap<PeerId, usize>,
    next_inbound_id: u64,
    inbound: mpsc::Sender<InboundRequest>,
    /// Relayed connections being upgraded to direct ones, and the requests waiting for them.
    upgrades: Upgrades<Outbound>,
    /// Dials asked for by [`Client::connect`], by connection.
    pending_connects: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NetError>>>,
    /// Open connections: to whom, and over what.
    open: HashMap<ConnectionId, (PeerId, Multiaddr)>,
    /// What peers announced (agent, protocols).
    identified: HashMap<PeerId, (String, Vec<String>)>,
    /// Each peer's last ping round trip, in milliseconds.
    rtts: HashMap<PeerId, f64>,
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
            agent: config.agent,
            relays: RelayLinks::new(relays),
            bootstrap_peers,
            last_bootstrap: None,
            rewalk: Rewalk::default(),
            rewalk_at: Fuse::terminated(),
            retry: Fuse::terminated(),
            to_resend: Vec::new(),
            resend: Fuse::terminated(),
            queries: HashMap::new(),
            record_limits: RecordLimits::default(),
            pending_requests: HashMap::new(),
            pending_inbound: HashMap::new(),
            inbound_per_peer: HashMap::new(),
            next_inbound_id: 0,
            inbound: inbound_tx,
            upgrades: Upgrades::new(config.direct),
            pending_connects: HashMap::new(),
            open: HashMap::new(),
            identified: HashMap::new(),
            rtts: HashMap::new(),
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
                () = &mut self.retry => self.drive_relays(),
                () = &mut self.rewalk_at => self.bootstrap(),
                () = &mut self.resend => self.on_resend(),
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

    // ---- the relay links ----

    /// Carries out what the relay links want now ([`RelayLinks::poll`]), tells the dial gate
    /// which relays are down, and sets the timer for the links' next wake.
    fn drive_relays(&mut self) {
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
        self.retry = match self.relays.next_wake() {
            Some(at) => Delay::new(at.saturating_duration_since(now)).fuse(),
            None => Fuse::terminated(),
        };
    }

    /// A relay link was taken up: the relay is a DHT contact, and we ask it for a reservation.
    fn relay_connected(&mut self, peer: PeerId) {
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
    fn report_relay_down(&mut self, peer: PeerId, delay: Duration) {
        tracing::warn!(%peer, ?delay, "relay unreachable; retrying later");
        self.emit(Event::RelayDisconnected {
            retry_in_ms: delay.as_millis() as u64,
        });
    }

    fn bootstrap(&mut self) {
        self.last_bootstrap = Some(web_time::Instant::now());
        if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
            tracing::debug!("DHT bootstrap skipped: {e}");
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
                    self.rtts.insert(e.peer, rtt.as_secs_f64() * 1000.0);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Signaling(())) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                // What the connection goes over: the dialled address, or for an inbound one our
                // own listening address (a relayed connection's remote address names only the
                // peer, not the circuit).
                let via = match &endpoint {
                    libp2p::core::ConnectedPoint::Dialer { address, .. } => address,
                    libp2p::core::ConnectedPoint::Listener { local_addr, .. } => local_addr,
                };
                self.open.insert(
                    connection_id,
                    (peer_id, endpoint.get_remote_address().clone()),
                );
                if let Some(reply) = self.pending_connects.remove(&connection_id) {
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
                if num_established.get() > 1 {
                    return;
                }
                if self.bootstrap_peers.contains(&peer_id) {
                    // Walk the DHT on the first connection to a bootstrap peer, and again only
                    // when it is the way back in after being cut off from every peer (at most
                    // every 5 min). Connections to a bootstrap peer come and go like any other
                    // (idle connections close): walking each time one opened made 1,000 native
                    // peers keep two cores busy with handshakes. Kademlia refreshes the routing
                    // table on its own schedule after the first walk.
                    let cut_off = self.swarm.connected_peers().count() == 1;
                    let recent = self
                        .last_bootstrap
                        .is_some_and(|at| at.elapsed() < REBOOTSTRAP_AFTER);
                    if self.last_bootstrap.is_none() || (cut_off && !recent) {
                        self.bootstrap();
                    }
                }
                self.emit(Event::PeerConnected {
                    peer_id: peer_id.to_string(),
                });
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                self.upgrades.on_closed(peer_id, connection_id);
                self.open.remove(&connection_id);
                if num_established > 0 {
                    return;
                }
                tracing::debug!(%peer_id, ?cause, "disconnected");
                // What it announced and its round trip are kept only while connected, so these
                // maps stay as small as the set of connected peers.
                self.identified.remove(&peer_id);
                self.rtts.remove(&peer_id);
                let now = web_time::Instant::now();
                if let Some(delay) = self.relays.on_closed(&peer_id, now) {
                    self.report_relay_down(peer_id, delay);
                    self.drive_relays();
                }
                self.emit(Event::PeerDisconnected {
                    peer_id: peer_id.to_string(),
                });
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                connection_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "dial failed: {error}");
                if departed(&error) {
                    // The relay holds no reservation for it: the tab closed. Out of the routing
                    // table, so lookups stop counting it as a peer that might hold a record but
                    // did not answer, and walks stop handing it on. It comes back if it returns.
                    tracing::info!(%peer, "peer left (the relay has no reservation for it)");
                    self.swarm.behaviour_mut().kad.remove_peer(&peer);
                }
                if let Some(reply) = self.pending_connects.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Request {
                        peer,
                        reason: error.to_string(),
                    }));
                }
                let actions =
                    self.upgrades
                        .on_dial_failed(peer, connection_id, web_time::Instant::now());
                if !actions.is_empty() {
                    let error = error_chain(&error);
                    tracing::info!(%peer, "no direct path ({error}); staying relayed");
                }
                self.carry_out(actions);
                let now = web_time::Instant::now();
                if let Some((relay, delay)) = self.relays.on_dial_failed(connection_id, now) {
                    self.report_relay_down(relay, delay);
                    self.drive_relays();
                }
            }
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

    /// Other browsers can reach this one over WebRTC at `<circuit address>/webrtc`: announce
    /// that beside the circuit address itself (identify and the DHT carry it).
    fn announce_webrtc(&mut self, listen: &Multiaddr) {
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
    fn carry_out(&mut self, actions: Vec<Action<Outbound>>) {
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

    /// Sends a request, over the direct connection when there is one: relayed connections it
    /// replaced close first. While it may go again ([`super::outbound`]) a copy stays here.
    fn send_request(&mut self, mut outbound: Outbound) {
        let peer = outbound.peer;
        // One still carrying a WebRTC handshake is closed by a later request.
        let signaling = &self.swarm.behaviour().signaling;
        for relayed in self.upgrades.replaced(&peer, |c| signaling.is_signaling(c)) {
            self.swarm.close_connection(relayed);
        }
        let Some(request) = outbound.take_to_send() else {
            tracing::warn!(%peer, "a request was sent twice; dropped");
            return;
        };
        let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
        self.pending_requests.insert(id, outbound);
    }

    /// Sets the resend timer for the earliest request waiting to go again.
    fn arm_resend(&mut self, now: web_time::Instant) {
        if let Some(first) = self.to_resend.iter().map(|(at, _)| *at).min() {
            self.resend = Delay::new(first.saturating_duration_since(now)).fuse();
        }
    }

    /// Sends the requests cut by closing connections again, over what is left.
    fn on_resend(&mut self) {
        let now = web_time::Instant::now();
        let (due, later) = std::mem::take(&mut self.to_resend)
            .into_iter()
            .partition::<Vec<_>, _>(|(at, _)| *at <= now);
        self.to_resend = later;
        self.arm_resend(now);
        for (_, outbound) in due {
            if self.swarm.is_connected(&outbound.peer) {
                tracing::debug!(peer = %outbound.peer, "sending a cut request again");
                self.send_request(outbound);
            } else {
                let (reply, error) = outbound.gone();
                let _ = reply.send(Err(error));
            }
        }
    }

    fn on_listener_closed(&mut self, listener: ListenerId, error: Option<String>) {
        if self
            .relays
            .on_listener_closed(listener, web_time::Instant::now())
        {
            // The relay is up but refused or dropped the reservation: ask again later.
            tracing::info!(?error, "a relay circuit listener closed");
            self.drive_relays();
        }
    }

    fn on_relay_client(&mut self, event: relay::client::Event) {
        if let relay::client::Event::ReservationReqAccepted { relay_peer_id, .. } = event {
            tracing::info!(%relay_peer_id, "relay reservation accepted");
            self.relays.on_reservation(&relay_peer_id);
            self.emit(Event::ReservationAccepted);
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        self.identified.insert(
            peer_id,
            (
                info.agent_version.clone(),
                info.protocols.iter().map(ToString::to_string).collect(),
            ),
        );
        if !info.protocols.contains(&KAD_PROTOCOL) {
            return;
        }
        // A bare `/webrtc` address (the listener) reaches no one; skip it.
        let dialable = info
            .listen_addrs
            .into_iter()
            .filter(|a| !crate::webrtc::is_webrtc(a) || crate::webrtc::through_circuit(a));
        for addr in dialable {
            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(_),
                step,
                ..
            } if step.last => {
                // A walk (ours or Kademlia's own) ended: walk again soon while the table is thin.
                let known = self.known_peer_count();
                let now = web_time::Instant::now();
                self.rewalk_at = match self.rewalk.after_walk(known, now) {
                    Some(at) => Delay::new(at.saturating_duration_since(now)).fuse(),
                    None => Fuse::terminated(),
                };
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(result),
                stats,
                ..
            } => {
                let Some(query) = self.queries.remove(&id) else {
                    return;
                };
                let (key, peers) = match result {
                    Ok(ok) => (ok.key, ok.peers),
                    Err(kad::GetClosestPeersError::Timeout { key, peers }) => (key, peers),
                };
                if let Query::Lookup(reply) = query {
                    let _ = reply.send(LookupStats {
                        found: peers.len(),
                        requests: stats.num_requests(),
                        successes: stats.num_successes(),
                        failures: stats.num_failures(),
                        millis: stats.duration().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                    });
                    return;
                }
                let local = *self.swarm.local_peer_id();
                let mut found = Vec::new();
                for info in peers {
                    if info.peer_id == local {
                        continue;
                    }
                    for addr in info.addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&info.peer_id, addr);
                    }
                    found.push(info.peer_id);
                }
                match query {
                    Query::Discover(reply) => {
                        let _ = reply.send(Ok(found));
                    }
                    Query::Closest(reply) => {
                        let _ = reply.send(Ok(self.storage_candidates(key, found)));
                    }
                    Query::Find(outbound) => {
                        if found.contains(&outbound.peer) {
                            self.send_request(outbound.last_try());
                        } else {
                            let _ = outbound.reply.send(Err(NetError::Request {
                                peer: outbound.peer,
                                reason: "it could not be dialled, and the DHT did not find it"
                                    .into(),
                            }));
                        }
                    }
                    other => tracing::debug!(?other, "a peers walk ended for another query"),
                }
            }
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => match VerifiedRecord::from_wire(record.key.as_ref(), &record.value) {
                Ok(verified) => {
                    if let Err(e) = self.store_record(&verified, Some(source), record.expires) {
                        tracing::info!(%source, "DHT record refused: {e}");
                    }
                }
                Err(e) => tracing::info!(%source, "DHT record refused: {e}"),
            },
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::PutRecord(result),
                ..
            } => {
                if let Some(Query::Put(reply)) = self.queries.remove(&id) {
                    let _ = reply.send(
                        result
                            .map(|_| ())
                            .map_err(|e| NetError::NotStored(e.to_string())),
                    );
                }
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetRecord(result),
                step,
                stats,
            } => self.on_get_record_progress(id, result, step.last, &stats),
            kad::Event::RoutingUpdated { peer, .. } => {
                tracing::debug!(%peer, "DHT routing table updated");
            }
            _ => {}
        }
    }

    /// Takes back the records held before a reload, through the same checks as any record
    /// sent by another peer (signature, replacement, limits); expired ones stay dropped.
    fn restore(&mut self, persisted: Vec<PersistedRecord>) {
        let (now, wall) = (web_time::Instant::now(), web_time::SystemTime::now());
        let mut restored = 0;
        for record in persisted {
            let stored = match record.expires(now, wall) {
                Some(expires) => VerifiedRecord::from_wire(&record.key, &record.value)
                    .and_then(|verified| self.store_record(&verified, None, Some(expires))),
                None => Err(RecordError::Malformed("expired".into())),
            };
            match stored {
                Ok(()) => restored += 1,
                Err(e) => {
                    tracing::info!("a kept DHT record was not restored: {e}");
                    let key = kad::RecordKey::new(&record.key);
                    self.swarm.behaviour_mut().kad.store_mut().forget(&key);
                }
            }
        }
        if restored > 0 {
            tracing::info!(restored, "DHT records held before the reload are back");
        }
    }

    /// Stores a verified record if it may replace what is held under its key and the record
    /// limits let it in. `sender`: the peer that sent it (`None`: this peer's own, or one a
    /// lookup found); `expires`: when the sender says it expires.
    fn store_record(
        &mut self,
        record: &VerifiedRecord,
        sender: Option<PeerId>,
        expires: Option<web_time::Instant>,
    ) -> Result<(), RecordError> {
        use kad::store::RecordStore;
        let now = web_time::Instant::now();
        let key = kad::RecordKey::new(&record.record().key());
        let expires = RecordLimits::expiry(expires, now);
        let local = kad::KBucketKey::from(*self.swarm.local_peer_id());
        let target = kad::KBucketKey::new(key.to_vec());
        let distance = target.distance(&local);
        let closer_known = match sender {
            Some(_) => self
                .swarm
                .behaviour_mut()
                .kad
                .get_closest_local_peers(&target)
                .take(20)
                .filter(|peer| peer.distance(&target) < distance)
                .count(),
            None => 0,
        };
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let held = store.get(&key).map(|held| held.into_owned());
        if !record_policy::may_store(record, held.as_ref().map(|h| h.value.as_slice()))? {
            // The same record again: its owner (or a holder passing it on) keeps it alive.
            if let Some(mut held) = held.filter(|h| h.expires.is_some_and(|at| at < expires)) {
                held.expires = Some(expires);
                let _ = store.put(held);
            }
            return Ok(());
        }
        let candidate = Candidate {
            key: key.clone(),
            owner: crate::crypto::sha256(&record.record().owner),
            sender,
            closer_known,
            distance,
            replaces: held.is_some(),
        };
        let count = store.records().count();
        let farthest = (count >= super::record_limits::MAX_RECORDS)
            .then(|| {
                store
                    .records()
                    .map(|r| {
                        let d = kad::KBucketKey::new(r.key.to_vec()).distance(&local);
                        (r.key.clone(), d)
                    })
                    .max_by_key(|(_, d)| *d)
            })
            .flatten();
        let admit = {
            let exists = |k: &kad::RecordKey| store.get(k).is_some();
            let held = HeldRecords {
                exists: &exists,
                count,
                farthest,
            };
            self.record_limits.admit(&candidate, &held, now)?
        };
        if let Admit::EvictThenStore(farthest) = admit {
            store.remove(&farthest);
        }
        let mut stored = kad::Record::new(key.clone(), record.wire().to_vec());
        stored.expires = Some(expires);
        store
            .put(stored)
            .map_err(|e| RecordError::Malformed(format!("the local store refused it: {e}")))?;
        let exists = |k: &kad::RecordKey| store.get(k).is_some();
        self.record_limits.stored(key, candidate.owner, &exists);
        Ok(())
    }

    fn on_get_record_progress(
        &mut self,
        id: kad::QueryId,
        result: Result<kad::GetRecordOk, kad::GetRecordError>,
        last: bool,
        stats: &kad::QueryStats,
    ) {
        let Some(Query::Get(answers, _)) = self.queries.get_mut(&id) else {
            return;
        };
        match result {
            Ok(kad::GetRecordOk::FoundRecord(found)) => {
                // Checked against the key asked for, not the one the answer names.
                let record = &found.record;
                if let Err(e) = answers.offer(found.peer, record.key.as_ref(), &record.value) {
                    tracing::info!(peer = ?found.peer, "ignored a bad record: {e}");
                }
            }
            Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { cache_candidates }) => {
                answers.answered_without(cache_candidates.into_values());
            }
            Err(kad::GetRecordError::NotFound { closest_peers, .. }) => {
                answers.answered_without(closest_peers);
            }
            Err(e) => tracing::debug!("record lookup: {e}"),
        }
        if !last {
            return;
        }
        let Some(Query::Get(answers, reply)) = self.queries.remove(&id) else {
            return;
        };
        if answers.refused() > 0 {
            tracing::info!(
                refused = answers.refused(),
                "record lookup: answers refused"
            );
        }
        let unreachable = stats.num_failures() as usize;
        let found = match answers.finish(|peer| self.holds_records(peer), unreachable) {
            Ok(found) => found,
            Err(too_few) => {
                let _ = reply.send(Err(NetError::TooFewPeers {
                    heard: too_few.heard,
                    needed: too_few.needed,
                }));
                return;
            }
        };
        if let Some(first) = found.first() {
            // Keep a copy of the newest version most holders agree on: it spreads.
            let _ = self.store_record(&first.record, None, None);
        }
        let _ = reply.send(Ok(found));
    }

    /// Whether `peer` may hold records: not the relay, and (once identified) a Jellyfish peer.
    fn holds_records(&self, peer: &PeerId) -> bool {
        let rpc = RPC_PROTOCOL.to_string();
        !self.relays.is_relay(peer)
            && self
                .identified
                .get(peer)
                .is_none_or(|(_, protocols)| protocols.contains(&rpc))
    }

    fn on_rpc(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let Request::Hello { agent } = request else {
                    self.hand_to_application(peer, request, Asker::Remote(channel));
                    return;
                };
                self.emit(Event::HelloReceived {
                    peer_id: peer.to_string(),
                    agent,
                });
                let response = Response::Hello {
                    agent: self.agent.clone(),
                    connected_peers: self.swarm.connected_peers().count() as u32,
                };
                self.answer(channel, response);
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(outbound) = self.pending_requests.remove(&request_id) {
                    let _ = outbound.reply.send(Ok(response));
                } else {
                    tracing::debug!(%peer, "an answer nobody waits for");
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(outbound) = self.pending_requests.remove(&request_id) else {
                    return;
                };
                let now = web_time::Instant::now();
                let connected = self.swarm.is_connected(&peer);
                match outbound.on_failure(Failure::of(&error), connected, now) {
                    Next::Resend(at, outbound) => {
                        tracing::debug!(%peer, "request cut ({error}); sending it again soon");
                        self.to_resend.push((at, outbound));
                        self.arm_resend(now);
                    }
                    Next::LookUp(outbound) => {
                        // A dial that finds no address fails inside the swarm, with no event
                        // to tell it apart: ask the DHT where the peer is.
                        tracing::debug!(%peer, "dial failed; looking the peer up");
                        let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                        self.queries.insert(id, Query::Find(outbound));
                    }
                    Next::Fail(reply, error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, "inbound request refused: {error}");
                self.emit(Event::InboundRefused {
                    peer_id: peer.to_string(),
                    reason: error.to_string(),
                });
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn answer(&mut self, channel: request_response::ResponseChannel<Response>, response: Response) {
        if self
            .swarm
            .behaviour_mut()
            .rpc
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!("could not answer: the stream closed");
        }
    }

    /// Block requests need storage, which is async: the application answers them.
    /// A request to this peer itself goes the same way, answered by its own holder.
    fn hand_to_application(&mut self, peer: PeerId, request: Request, asker: Asker) {
        let waiting = self.inbound_per_peer.get(&peer).copied().unwrap_or(0);
        if waiting >= INBOUND_PER_PEER {
            let reason =
                format!("busy: {waiting} of your requests are waiting; send fewer at once");
            self.reply(asker, Response::Refused { reason });
            return;
        }
        let id = self.next_inbound_id;
        self.next_inbound_id += 1;
        match self.inbound.try_send(InboundRequest { id, peer, request }) {
            Ok(()) => {
                self.pending_inbound.insert(id, (peer, asker));
                *self.inbound_per_peer.entry(peer).or_insert(0) += 1;
            }
            Err(e) => {
                let reason = if e.is_full() {
                    "busy; try another peer"
                } else {
                    "not serving blocks"
                };
                self.reply(
                    asker,
                    Response::Refused {
                        reason: reason.into(),
                    },
                );
            }
        }
    }

    fn reply(&mut self, asker: Asker, response: Response) {
        match asker {
            Asker::Remote(channel) => self.answer(channel, response),
            Asker::Local(reply) => {
                let _ = reply.send(Ok(response));
            }
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
                self.queries.insert(id, Query::Discover(reply));
            }
            Command::PutRecord { record, reply } => {
                if let Err(e) = self.store_record(&record, None, None) {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                let kad_record = kad::Record::new(
                    kad::RecordKey::new(&record.record().key()),
                    record.wire().to_vec(),
                );
                match self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .put_record(kad_record, kad::Quorum::One)
                {
                    Ok(id) => {
                        self.queries.insert(id, Query::Put(reply));
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
                self.queries
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
                if let Some(outbound) = self
                    .upgrades
                    .hold(peer, Outbound::new(peer, request, reply))
                {
                    self.send_request(outbound);
                }
            }
            Command::Respond { id, response } => {
                if let Some((peer, asker)) = self.pending_inbound.remove(&id) {
                    if let Some(waiting) = self.inbound_per_peer.get_mut(&peer) {
                        *waiting = waiting.saturating_sub(1);
                        if *waiting == 0 {
                            self.inbound_per_peer.remove(&peer);
                        }
                    }
                    self.reply(asker, response);
                }
            }
            Command::Shutdown => {}
            Command::Connect { addr, reply } => self.connect(addr, reply),
            Command::Lookup { key, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(key);
                self.queries.insert(id, Query::Lookup(reply));
            }
            Command::PeerInfo { peer, reply } => {
                let _ = reply.send(self.peer_info(peer));
            }
            Command::ClosestPeers { key, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(key);
                self.queries.insert(id, Query::Closest(reply));
            }
        }
    }

    fn connect(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, NetError>>) {
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

    /// The peers that may hold blocks near `key`, nearest first: those the walk `found`, and
    /// those in the routing table it did not hear from this time (a walk that lost a peer to a
    /// closing connection must not leave it out of placement; asking it costs one request).
    /// Peers known not to hold blocks (the relay, any peer without the block protocol) are left
    /// out.
    fn storage_candidates(&mut self, key: Vec<u8>, found: Vec<PeerId>) -> Vec<PeerId> {
        const MAX: usize = 20;
        let target = kad::KBucketKey::new(key);
        let known: Vec<PeerId> = self
            .swarm
            .behaviour_mut()
            .kad
            .get_closest_local_peers(&target)
            .take(MAX)
            .map(|k| *k.preimage())
            .collect();
        let mut peers: Vec<PeerId> = found
            .into_iter()
            .chain(known)
            .filter(|p| self.holds_records(p))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        peers.sort_by_key(|p| kad::KBucketKey::from(*p).distance(&target));
        peers.truncate(MAX);
        peers
    }

    fn peer_info(&self, peer: PeerId) -> PeerInfo {
        let (agent, protocols) = self.identified.get(&peer).cloned().unzip();
        PeerInfo {
            peer_id: peer.to_string(),
            agent,
            protocols: protocols.unwrap_or_default(),
            rtt_ms: self.rtts.get(&peer).copied(),
            link: self.upgrades.link(&peer),
            connections: self
                .open
                .values()
                .filter(|(p, _)| *p == peer)
                .map(|(_, a)| a.to_string())
                .collect(),
        }
    }

    fn status(&mut self) -> Status {
        let mut listen_addrs: Vec<String> = self
            .swarm
            .listeners()
            .chain(self.swarm.external_addresses())
            .map(ToString::to_string)
            .collect();
        listen_addrs.dedup();
        let (sent, received) = crate::webrtc::traffic();
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
        }
    }

    /// Peers in the routing table.
    fn known_peer_count(&mut self) -> usize {
        self.swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|bucket| bucket.num_entries())
            .sum()
    }

    fn known_peers(&mut self) -> Vec<KnownPeer> {
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

/// Whether a dial failed only because the relay holds no reservation for the peer (circuit
/// relay v2's NO_RESERVATION): a browser tab is reachable only through its reservation, so it
/// has left.
fn departed(error: &libp2p::swarm::DialError) -> bool {
    match error {
        libp2p::swarm::DialError::Transport(attempts) => {
            !attempts.is_empty()
                && attempts.iter().all(|(_, e)| {
                    error_chain(e).contains("Relay has no reservation for destination")
                })
        }
        _ => false,
    }
}
