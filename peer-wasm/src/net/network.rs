//! What the storage layer asks of the network, as a trait: [`Client`] is the real network;
//! the files tests put an in-memory network of holders behind it, so placement, fallback,
//! cancel and free are tested in a fraction of a second each.

use std::future::Future;

use libp2p::PeerId;

use super::{Client, NetError};
use crate::{
    platform::MaybeSend,
    protocol::{Request, Response},
    record::{SignedRecord, VerifiedRecord},
};

/// `request`'s answer, or [`NetError::Timeout`] after `deadline`: a slow or silent peer costs
/// at most that.
pub async fn with_deadline(
    deadline: std::time::Duration,
    request: impl Future<Output = Result<Response, NetError>>,
) -> Result<Response, NetError> {
    let request = std::pin::pin!(request);
    match futures::future::select(request, futures_timer::Delay::new(deadline)).await {
        futures::future::Either::Left((answer, _)) => answer,
        futures::future::Either::Right(_) => Err(NetError::Timeout(deadline.as_secs())),
    }
}

/// Finding peers, asking them, and reading and writing DHT records. The futures are `Send`
/// natively (tasks may move between threads) and need not be in the browser.
pub trait Network: Clone + MaybeSend + 'static {
    /// The peers closest to `key`, nearest first (the holders a block at that address goes to).
    fn closest_peers(
        &self,
        key: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<PeerId>, NetError>> + MaybeSend;
    /// [`Network::closest_peers`] for placing `copies` copies: the walk confirms twice the
    /// copies (spares for holders that refuse) instead of Kademlia's k. The default walks in
    /// full.
    fn placement_peers(
        &self,
        key: Vec<u8>,
        copies: usize,
    ) -> impl Future<Output = Result<Vec<PeerId>, NetError>> + MaybeSend {
        let _ = copies;
        self.closest_peers(key)
    }

    /// The peers this peer already knows closest to `key`, nearest first, without a walk: a
    /// holder near an address knows its neighbourhood, as Kademlia's buckets are fullest
    /// near a peer's own id. The default walks ([`Network::closest_peers`]).
    fn nearby_peers(
        &self,
        key: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<PeerId>, NetError>> + MaybeSend {
        self.closest_peers(key)
    }
    /// Sends `request` to `peer` and waits for its answer.
    fn request(
        &self,
        peer: PeerId,
        request: Request,
    ) -> impl Future<Output = Result<Response, NetError>> + MaybeSend;
    /// The valid records under `key`, per owner the newest; empty only when enough peers were
    /// heard to say so.
    fn get_record(
        &self,
        key: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<VerifiedRecord>, NetError>> + MaybeSend;
    /// [`Network::get_record`], with the peers nearest `key` that answered, nearest first:
    /// where the next version of the record goes ([`Network::put_record_to`]) without a walk
    /// of its own. The default names none.
    fn get_record_near(
        &self,
        key: Vec<u8>,
    ) -> impl Future<Output = Result<(Vec<VerifiedRecord>, Vec<PeerId>), NetError>> + MaybeSend
    {
        let records = self.get_record(key);
        async move { Ok((records.await?, Vec::new())) }
    }

    /// Stores `record` on the peers responsible for it.
    fn put_record(
        &self,
        record: SignedRecord,
    ) -> impl Future<Output = Result<(), NetError>> + MaybeSend;
    /// [`Network::put_record`] on `peers`, the closest to the record's key as a walk just
    /// found them ([`Network::closest_peers`]), so the put needs no walk of its own. The
    /// default walks anyway.
    fn put_record_to(
        &self,
        record: SignedRecord,
        peers: Vec<PeerId>,
    ) -> impl Future<Output = Result<(), NetError>> + MaybeSend {
        let _ = peers;
        self.put_record(record)
    }
}

impl Network for Client {
    fn closest_peers(
        &self,
        key: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<PeerId>, NetError>> + MaybeSend {
        Client::closest_peers(self, key)
    }

    fn nearby_peers(
        &self,
        key: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<PeerId>, NetError>> + MaybeSend {
        Client::nearby_peers(self, key)
    }

    fn placement_peers(
        &self,
        key: Vec<u8>,
        copies: usize,
    ) -> impl Future<Output = Result<Vec<PeerId>, NetError>> + MaybeSend {
        let results =
            std::num::NonZeroUsize::new(2 * copies).unwrap_or(std::num::NonZeroUsize::MIN);
        Client::placement_peers(self, key, results)
    }

    fn request(
        &self,
        peer: PeerId,
        request: Request,
    ) -> impl Future<Output = Result<Response, NetError>> + MaybeSend {
        Client::request(self, peer, request)
    }

    fn get_record(
        &self,
        key: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<VerifiedRecord>, NetError>> + MaybeSend {
        Client::get_record(self, key)
    }

    fn get_record_near(
        &self,
        key: Vec<u8>,
    ) -> impl Future<Output = Result<(Vec<VerifiedRecord>, Vec<PeerId>), NetError>> + MaybeSend
    {
        Client::get_record_near(self, key)
    }

    fn put_record(
        &self,
        record: SignedRecord,
    ) -> impl Future<Output = Result<(), NetError>> + MaybeSend {
        Client::put_record(self, record)
    }

    fn put_record_to(
        &self,
        record: SignedRecord,
        peers: Vec<PeerId>,
    ) -> impl Future<Output = Result<(), NetError>> + MaybeSend {
        Client::put_record_to(self, record, peers)
    }
}
