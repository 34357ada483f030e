//! The network: a cheap [`Client`] handle and an [`EventLoop`] that alone owns the libp2p swarm.
//!
//! Who talks to whom:
//! - the application (browser bindings or a native test) calls async methods on [`Client`];
//!   each sends a [`Command`](client::Command) carrying a oneshot for its answer;
//! - the [`EventLoop`] owns the `Swarm`, turns commands into libp2p calls, keeps the map from
//!   query and request ids to the waiting oneshots, answers inbound requests, keeps two relay
//!   connections and reservations up ([`relay_links`], reconnecting with backoff),
//!   and reports what happened as [`Event`]s on a bounded channel;
//! - block requests need async storage, so the loop hands them out as [`InboundRequest`]s
//!   (bounded; refused as "busy" when full) and the holder answers with [`Client::respond`];
//! - [`direct`] decides when a relayed connection is upgraded to direct WebRTC and holds
//!   requests meanwhile.
//!
//! Nothing outside this module names `Swarm`.

mod behaviour;
mod client;
mod dial_gate;
pub mod direct;
mod direct_first;
mod event_loop;
mod identify;
mod inbound;
pub mod journaled_store;
mod network;
mod outbound;
mod peer_book;
mod prefer_direct;
mod queries;
pub mod record_limits;
#[cfg(not(test))]
mod record_policy;
/// Open to the crate's tests: the in-memory fakes apply the same policy as a peer.
#[cfg(test)]
pub(crate) mod record_policy;
pub(crate) mod relay_links;
mod rewalk;
mod swarm;
mod table_answer;
mod tuning;
mod wrapper;

use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};
use serde::Serialize;

pub(crate) use behaviour::Behaviour;
pub use behaviour::{
    MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER, MAX_INBOUND, MAX_PENDING_INBOUND,
    MAX_STREAMS_PER_CONNECTION,
};
pub use client::{Client, HelloReply};
use event_loop::EventLoop;
pub use network::{with_deadline, Network};
pub use record_policy::SILENCE_QUORUM;
pub use tuning::Tuning;

/// How a peer joins the network.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The relays to hold reservations on, so peers that cannot dial us directly can reach us
    /// through them; they are also the first DHT contacts. [`Tuning::relays_kept`] of them
    /// (2) are kept connected, the first on the list first. Each must end in
    /// `/p2p/<relay peer id>`.
    pub relays: Vec<Multiaddr>,
    /// Further DHT contacts, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses to listen on directly (native peers only; browsers cannot listen).
    pub listen: Vec<Multiaddr>,
    /// Free text naming this software, sent in identify and hello.
    pub agent: String,
    /// Upgrade relayed connections to direct WebRTC ones (browsers only: natively there is
    /// no WebRTC transport).
    pub direct: bool,
    /// ICE servers for WebRTC (STUN or TURN URLs).
    pub ice_servers: Vec<String>,
    /// How long a connection with nothing to do stays open; `None`: 60 s.
    pub idle_timeout: Option<std::time::Duration>,
    /// How often connected peers ping each other; `None`: libp2p's 15 s.
    pub ping_interval: Option<std::time::Duration>,
    /// How often the peer refreshes its DHT routing table by walking it; `None`: libp2p's 5 min.
    pub bootstrap_interval: Option<std::time::Duration>,
    /// Whether this peer's holder answers transport probes ([`crate::probe`]): only on
    /// networks run for benchmarks (the relay's `--allow-probes`). Elsewhere a 20-byte request
    /// for 1 MiB of zeros is an amplifier, and probes are refused.
    pub answer_probes: bool,
    /// Where record changes go to be kept across reloads ([`journaled_store`]); `None`: kept
    /// in memory only.
    pub record_journal: Option<futures::channel::mpsc::UnboundedSender<journaled_store::Change>>,
    /// The records kept before this start, taken back through the usual checks.
    pub persisted_records: Vec<journaled_store::PersistedRecord>,
    /// Schedules and limits ([`Tuning::default`]: the documented defaults).
    pub tuning: Tuning,
}

/// Errors of network operations, each with a message a person can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The event loop is gone: the peer was stopped or crashed.
    #[error("the peer has stopped; start it again")]
    Stopped,
    /// An address lacks its `/p2p/<peer id>` suffix or cannot be used.
    #[error("address {addr} is not usable: {reason}")]
    BadAddress {
        /// The address given.
        addr: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The swarm could not be built or could not listen.
    #[error("could not start networking: {0}")]
    Setup(String),
    /// A DHT lookup needs at least one known peer.
    #[error("not connected to the network yet: no relay or bootstrap peer has been reached")]
    NoKnownPeers,
    /// A DHT query failed.
    #[error("DHT query failed: {0}")]
    Query(String),
    /// A record was refused before it left this peer.
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    /// A lookup found nothing, but heard from too few peers for that to mean there is
    /// nothing: the tab is still joining, or the network is in churn.
    #[error("can't reach enough peers to check (heard from {heard}, {needed} needed); try again")]
    TooFewPeers {
        /// Peers holding the protocol that answered.
        heard: usize,
        /// Peers that had to answer ([`SILENCE_QUORUM`], or every peer the lookup tried).
        needed: usize,
    },
    /// No other peer took a copy of a record.
    #[error("no other peer stored the record ({0}); the network may be too small or unreachable")]
    NotStored(String),
    /// A peer did not answer in time.
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// A request to another peer failed (unreachable, timed out, refused, malformed answer).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
}

/// The state of this peer's link to its relay.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RelayState {
    /// No relay configured.
    None,
    /// Dialling the relay.
    Connecting,
    /// Connected to the relay.
    Connected,
    /// The relay was lost; the next attempt comes after the delay (0: dialling now).
    Reconnecting {
        /// Milliseconds until the next attempt, when the state was read.
        retry_in_ms: u64,
        /// Failed attempts so far.
        attempts: u32,
    },
}

/// A snapshot of the peer, for the page and the tests.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// This peer's id.
    pub peer_id: String,
    /// The link to the relay.
    pub relay: RelayState,
    /// Whether a relay holds a reservation for us (other peers can reach us through it).
    pub reservation: bool,
    /// The relays connected now (at most [`Tuning::relays_kept`]).
    pub relays_connected: Vec<String>,
    /// Addresses other peers can use to reach us.
    pub listen_addrs: Vec<String>,
    /// Peers with an open connection.
    pub connected_peers: Vec<String>,
    /// Peers in the DHT routing table.
    pub known_peers: usize,
    /// DHT records this peer holds (its own and others'), at most
    /// [`record_limits::MAX_RECORDS`].
    pub records_held: usize,
    /// Bytes sent over direct WebRTC connections since start.
    pub direct_bytes_sent: u64,
    /// Bytes received over direct WebRTC connections since start.
    pub direct_bytes_received: u64,
    /// Data channels opened on direct WebRTC connections since start, by either side.
    pub direct_channels_opened: u64,
    /// Streams carried over direct WebRTC connections since start, both ways: more than
    /// [`Status::direct_channels_opened`] when channels carry one stream after another.
    pub direct_streams: u64,
    /// Messages sent on direct WebRTC data channels since start (one `send` each, however many
    /// frames it carries).
    pub direct_messages_sent: u64,
    /// Block placements answered from the routing table since start, each a walk saved
    /// ([`table_answer`]).
    pub placements_from_table: u64,
}

/// A peer in the DHT routing table.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct KnownPeer {
    /// Its id.
    pub peer_id: String,
    /// Addresses it can be reached at.
    pub addrs: Vec<String>,
    /// Whether a connection to it is open.
    pub connected: bool,
    /// How it is connected, when it is.
    pub link: Option<direct::Link>,
}

/// What a record lookup found: per owner the newest record, and the peers nearest the key that
/// answered, nearest first (at most k = 20; peers that do not keep records, such as relays,
/// left out).
#[derive(Debug, Default)]
pub struct RecordLookup {
    /// The records, as [`Client::find_record`] gives them.
    pub found: Vec<crate::record::FoundRecord>,
    /// The peers heard nearest the key: a lookup asks those it converges on, so these are the
    /// holders a walk for the key would find, less those that did not answer.
    pub near: Vec<PeerId>,
}

/// What one DHT lookup cost.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LookupStats {
    /// Peers it returned (at most k = 20).
    pub found: usize,
    /// Requests it sent.
    pub requests: u32,
    /// Requests answered.
    pub successes: u32,
    /// Requests failed.
    pub failures: u32,
    /// How long it took, in milliseconds.
    pub millis: f64,
}

/// What this peer knows of another, for diagnostics.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerInfo {
    /// Its id.
    pub peer_id: String,
    /// Its software, as identify announced it.
    pub agent: Option<String>,
    /// The protocols it announced.
    pub protocols: Vec<String>,
    /// The last ping's round trip, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// How it is connected, when it is.
    pub link: Option<direct::Link>,
    /// The addresses of its open connections.
    pub connections: Vec<String>,
}

/// Something that happened, for the page's log and the tests.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[cfg_attr(all(test, not(target_arch = "wasm32")), ts(rename = "PeerEvent"))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Connected to the relay.
    RelayConnected,
    /// Lost the relay, or failed to reach it; the next attempt comes after the delay.
    RelayDisconnected {
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
    /// The relay accepted our reservation: other peers can reach us.
    ReservationAccepted,
    /// A connection to another peer opened.
    PeerConnected {
        /// The peer.
        peer_id: String,
    },
    /// The last connection to another peer closed.
    PeerDisconnected {
        /// The peer.
        peer_id: String,
    },
    /// How this peer reaches another changed: direct now, or relayed after a failed upgrade.
    Link {
        /// The peer.
        peer_id: String,
        /// The new link.
        link: direct::Link,
    },
    /// Another peer said hello.
    HelloReceived {
        /// The peer.
        peer_id: String,
        /// Its software.
        agent: String,
    },
    /// An inbound request failed after it was decoded (timed out, stream broke). Requests
    /// that never decode (malformed, oversized, other version) are dropped by libp2p without
    /// an event; the codec logs why.
    InboundRefused {
        /// The peer that sent it.
        peer_id: String,
        /// Why.
        reason: String,
    },
}

/// A request from another peer that the application answers (block storage), with the id
/// to pass to [`Client::respond`].
#[derive(Debug)]
pub struct InboundRequest {
    /// Pass to [`Client::respond`].
    pub id: u64,
    /// Who asked.
    pub peer: PeerId,
    /// What they asked.
    pub request: crate::protocol::Request,
}

/// What [`start`] returns: the handle, what happens, and the requests to answer.
pub struct Started {
    /// The handle that drives the peer.
    pub client: Client,
    /// Events, for the page's log and the tests.
    pub events: futures::channel::mpsc::Receiver<Event>,
    /// Requests the application answers (see [`crate::holder`]).
    pub inbound: futures::channel::mpsc::Receiver<InboundRequest>,
}

/// Splits `<addr>/p2p/<id>` into the peer id, refusing addresses without one.
pub(crate) fn peer_id_of(addr: &Multiaddr) -> Result<PeerId, NetError> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(NetError::BadAddress {
            addr: addr.to_string(),
            reason: "it must end in /p2p/<peer id>",
        }),
    }
}

// Native only: the browser test runner runs #[wasm_bindgen_test]s.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn peer_id_of_needs_the_suffix() {
        let id = PeerId::random();
        let with: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{id}").parse().unwrap();
        assert_eq!(peer_id_of(&with).unwrap(), id);
        let without: Multiaddr = "/ip4/127.0.0.1/tcp/1/ws".parse().unwrap();
        assert!(matches!(
            peer_id_of(&without),
            Err(NetError::BadAddress { .. })
        ));
    }
}

/// Starts the network side of a peer with `keypair` as `config` says, in the background.
/// Natively this needs a running tokio runtime. [`crate::node::start`] adds the block holder.
pub fn start(keypair: libp2p::identity::Keypair, config: Config) -> Result<Started, NetError> {
    let swarm = swarm::build(keypair, &config)?;
    let (event_loop, started) = EventLoop::new(swarm, config)?;
    crate::platform::spawn(event_loop.run());
    Ok(started)
}
