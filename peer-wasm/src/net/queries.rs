//! What each Kademlia query in flight is for: one map from query id to a [`Query`], in the
//! way libp2p-kad keeps its own `QueryInfo`, instead of one map per kind of query.

use futures::channel::oneshot;
use libp2p::PeerId;

use super::{outbound::Outbound, record_policy::GetAnswers, LookupStats, NetError, RecordLookup};

/// Who waits for a list of peers.
pub(crate) type PeersReply = oneshot::Sender<Result<Vec<PeerId>, NetError>>;

/// A Kademlia query in flight, by what it is for and who waits for it.
#[derive(Debug)]
pub(crate) enum Query {
    /// A walk towards this peer's own id ([`super::Client::discover`]).
    Discover(PeersReply),
    /// An extra walk towards this peer's own id while its table is thin ([`super::rewalk`]).
    Rewalk,
    /// The peers that may store blocks near a key ([`super::Client::closest_peers`]).
    Closest(PeersReply),
    /// A measured walk, for the simulation ([`super::Client::lookup`]).
    Lookup(oneshot::Sender<LookupStats>),
    /// Where a peer is: a request that could not dial it goes once more if the walk finds it.
    Find(Outbound),
    /// Storing a record on the peers closest to its key.
    Put(oneshot::Sender<Result<(), NetError>>),
    /// Reading the records under a key: the answers so far, and who waits for them.
    Get(GetAnswers, oneshot::Sender<Result<RecordLookup, NetError>>),
}
