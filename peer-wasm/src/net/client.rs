//! The handle the application holds: async methods that become [`Command`]s for the event loop.

use std::num::NonZeroUsize;

use futures::{
    channel::{mpsc, oneshot},
    SinkExt,
};
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;

use super::{KnownPeer, LookupStats, NetError, PeerInfo, RecordLookup, Status};
use crate::{
    protocol::{Request, Response},
    record::{FoundRecord, SignedRecord, VerifiedRecord},
};

/// Kademlia's k: how many peers a walk confirms unless told fewer.
const K_RESULTS: NonZeroUsize = match NonZeroUsize::new(super::behaviour::K_VALUE as usize) {
    Some(k) => k,
    None => NonZeroUsize::MIN,
};

/// A request for the event loop, with the oneshot its answer goes to.
#[derive(Debug)]
pub(crate) enum Command {
    Status(oneshot::Sender<Status>),
    Peers(oneshot::Sender<Vec<KnownPeer>>),
    Discover(oneshot::Sender<Result<Vec<PeerId>, NetError>>),
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, NetError>>,
    },
    Respond {
        id: u64,
        response: Response,
    },
    Shutdown,
    ClosestPeers {
        key: Vec<u8>,
        /// How many peers the walk must confirm: Kademlia's k, or fewer for a placement.
        results: NonZeroUsize,
        reply: oneshot::Sender<Result<Vec<PeerId>, NetError>>,
    },
    /// [`Command::ClosestPeers`] for a placement: answered from the routing table when a walk
    /// could learn nothing new ([`super::table_answer`]).
    PlacementPeers {
        key: Vec<u8>,
        results: NonZeroUsize,
        reply: oneshot::Sender<Result<Vec<PeerId>, NetError>>,
    },
    NearbyPeers {
        key: Vec<u8>,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    PutRecord {
        record: VerifiedRecord,
        /// The peers to store it on, found by a walk already; `None`: walk first.
        to: Option<Vec<PeerId>>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    GetRecord {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<RecordLookup, NetError>>,
    },
    Connect {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, NetError>>,
    },
    PeerInfo {
        peer: PeerId,
        reply: oneshot::Sender<PeerInfo>,
    },
    Lookup {
        key: Vec<u8>,
        results: NonZeroUsize,
        reply: oneshot::Sender<LookupStats>,
    },
}

/// Another peer's answer to hello.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelloReply {
    /// The peer that answered.
    pub peer_id: String,
    /// Its software.
    pub agent: String,
    /// How many peers it was connected to.
    pub connected_peers: u32,
}

/// A cheap, cloneable handle on a running peer. Dropping every handle stops the event loop.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) peer_id: PeerId,
}

impl Client {
    /// This peer's id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// A snapshot of the peer's state.
    pub async fn status(&self) -> Result<Status, NetError> {
        self.ask(Command::Status).await
    }

    /// The peers in the DHT routing table.
    pub async fn peers(&self) -> Result<Vec<KnownPeer>, NetError> {
        self.ask(Command::Peers).await
    }

    /// Walks the DHT towards our own id and returns the peers it met (never ourselves). The
    /// peers found join the routing table, so they can be dialled by id afterwards.
    pub async fn discover(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(Command::Discover).await?
    }

    /// Says hello to a peer (dialling it through what the DHT knows) and returns its answer.
    pub async fn hello(&self, peer: PeerId) -> Result<HelloReply, NetError> {
        let request = Request::Hello {
            agent: crate::AGENT.to_owned(),
        };
        match self.request(peer, request).await? {
            Response::Hello {
                agent,
                connected_peers,
            } => Ok(HelloReply {
                peer_id: peer.to_string(),
                agent,
                connected_peers,
            }),
            Response::Refused { reason } => Err(NetError::Request {
                peer,
                reason: format!("refused: {}", crate::protocol::quote(&reason)),
            }),
            other => Err(NetError::Request {
                peer,
                reason: format!("unexpected answer: {}", other.kind()),
            }),
        }
    }

    /// Sends a request to a peer (dialling it through what the DHT knows) and returns its
    /// answer, whatever it is.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        self.ask(|reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Opens a connection to `addr` (which must end in `/p2p/<peer id>`), even when one to
    /// that peer exists already: for diagnostics and interoperability tests, such as dialling
    /// another libp2p implementation over `/webrtc`.
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.ask(|reply| Command::Connect { addr, reply }).await?
    }

    /// What this peer knows of another: what it announced (identify), the last ping's
    /// round trip, and how it is connected.
    pub async fn peer_info(&self, peer: PeerId) -> Result<PeerInfo, NetError> {
        self.ask(|reply| Command::PeerInfo { peer, reply }).await
    }

    /// Answers an inbound request handed out as an [`InboundRequest`](super::InboundRequest).
    pub async fn respond(&self, id: u64, response: Response) -> Result<(), NetError> {
        self.commands
            .clone()
            .send(Command::Respond { id, response })
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Stops the peer: its connections close and every handle's calls fail from then on.
    pub async fn shutdown(&self) {
        let _ = self.commands.clone().send(Command::Shutdown).await;
    }

    /// The peers closest to `key` in the DHT (never this one), nearest first.
    pub async fn closest_peers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, NetError> {
        self.closest_peers_for(key, K_RESULTS).await
    }

    /// [`Client::closest_peers`], with a walk that ends once the `results` closest peers it
    /// knows have answered rather than Kademlia's k = 20: a placement needs its copies and a
    /// few spares, and a walk confirming 20 peers costs at least 20 requests (45 at 1,000
    /// peers in the simulation). The candidates returned are as many as before: the walk's,
    /// then the nearest this peer knows.
    pub async fn closest_peers_for(
        &self,
        key: Vec<u8>,
        results: NonZeroUsize,
    ) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::ClosestPeers {
            key,
            results,
            reply,
        })
        .await?
    }

    /// The peers to place a block at `key` on, nearest first: [`Client::closest_peers_for`]
    /// `results`, without the walk when this peer's routing table already lists every peer
    /// the walk could find (a network of fewer than about k peers, [`super::table_answer`]).
    pub async fn placement_peers(
        &self,
        key: Vec<u8>,
        results: NonZeroUsize,
    ) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::PlacementPeers {
            key,
            results,
            reply,
        })
        .await?
    }

    /// The peers in this peer's own routing table closest to `key`, nearest first, at most
    /// Kademlia's k: no walk, so no wait on peers that left (they are still listed until a
    /// request to them fails).
    pub async fn nearby_peers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::NearbyPeers { key, reply }).await
    }

    /// Walks the DHT towards `key` and reports what the walk cost (for the simulation).
    pub async fn lookup(&self, key: Vec<u8>) -> Result<LookupStats, NetError> {
        self.lookup_for(key, K_RESULTS).await
    }

    /// [`Client::lookup`] of a walk that confirms `results` peers (a placement's walk).
    pub async fn lookup_for(
        &self,
        key: Vec<u8>,
        results: NonZeroUsize,
    ) -> Result<LookupStats, NetError> {
        self.ask(|reply| Command::Lookup {
            key,
            results,
            reply,
        })
        .await
    }

    /// Checks a record, stores it here and on the peers closest to its key.
    pub async fn put_record(&self, record: SignedRecord) -> Result<(), NetError> {
        self.put(record, None).await
    }

    /// [`Client::put_record`] on `peers`, the closest to the record's key as a walk just found
    /// them ([`Client::closest_peers`]): a caller that walks while it does something else (an
    /// index's pointer, walked for while its blob is placed) saves the put its own walk.
    /// The first [`K_RESULTS`] are asked; with none, the put walks as usual.
    pub async fn put_record_to(
        &self,
        record: SignedRecord,
        mut peers: Vec<PeerId>,
    ) -> Result<(), NetError> {
        peers.truncate(K_RESULTS.get());
        let to = (!peers.is_empty()).then_some(peers);
        self.put(record, to).await
    }

    async fn put(&self, record: SignedRecord, to: Option<Vec<PeerId>>) -> Result<(), NetError> {
        let record = VerifiedRecord::from_wire(&record.key(), &record.to_wire())?;
        self.ask(|reply| Command::PutRecord { record, to, reply })
            .await?
    }

    /// The valid records under `key` held by this peer and the peers closest to the key: for
    /// each owner the newest, ordered by how many holders vouch for that owner. Malformed and
    /// badly signed copies are dropped; a record by another owner (a forgery or a squatter)
    /// stays apart, so the caller can pick the one signed by the key it trusts.
    ///
    /// An empty answer means no record exists only because enough peers were heard
    /// ([`super::SILENCE_QUORUM`]); a lookup that heard too few fails with
    /// [`NetError::TooFewPeers`] instead.
    pub async fn get_record(&self, key: Vec<u8>) -> Result<Vec<VerifiedRecord>, NetError> {
        Ok(self
            .find_record(key)
            .await?
            .into_iter()
            .map(|found| found.record)
            .collect())
    }

    /// [`Client::get_record`], with how many other peers answered with each record.
    pub async fn find_record(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, NetError> {
        Ok(self.lookup_record(key).await?.found)
    }

    /// [`Client::get_record`], with the peers nearest the key that answered
    /// ([`RecordLookup::near`]): where the next version of the record goes
    /// ([`Client::put_record_to`]) without a walk of its own.
    pub async fn get_record_near(
        &self,
        key: Vec<u8>,
    ) -> Result<(Vec<VerifiedRecord>, Vec<PeerId>), NetError> {
        let lookup = self.lookup_record(key).await?;
        let found = lookup.found.into_iter().map(|found| found.record).collect();
        Ok((found, lookup.near))
    }

    async fn lookup_record(&self, key: Vec<u8>) -> Result<RecordLookup, NetError> {
        self.ask(|reply| Command::GetRecord { key, reply }).await?
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .clone()
            .send(command(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }
}
