//! Storage receipts, and what a holder learns from them: which other peers were given the
//! blocks it holds.
//!
//! A holder that stores a block answers with a receipt, "I, peer P, hold block X for owner O",
//! signed by its libp2p key. After an upload the owner hands each holder the receipts of the
//! other holders of the same blocks ([`crate::protocol::Request::Witness`]); each co-holder
//! thus knows a sample of what its fellow holders were given, and can ask them to prove it
//! ([`crate::audit`]). An inventory is what a peer says it holds, so a peer that threw away
//! what it was given could answer "nothing" and pass; a receipt is what it said when it took
//! the block, and a co-holder that still holds the same block for the same owner knows it was
//! neither freed nor lost by the owner. Pure: the holder records receipts and picks blocks to
//! challenge with `now`.

use std::collections::{HashMap, VecDeque};

use libp2p::{
    identity::{Keypair, PublicKey},
    PeerId,
};
use serde::{Deserialize, Serialize};
use web_time::{Duration, Instant};

use crate::{
    block::BlockId,
    crypto::{aead::serde_bytes_vec, OwnerHash},
};

/// Most blocks one witness request names: a sample of one upload's blocks is enough to catch
/// a holder that drops them, and keeps the request small (64 × ~250 bytes).
pub const MAX_WITNESSED_BLOCKS: usize = 64;
/// Most receipts one witnessed block carries (its other holders).
pub const MAX_RECEIPTS_PER_BLOCK: usize = 4;
/// Blocks remembered per peer: the newest are kept, a sample of what it was given.
pub const PER_PEER: usize = 16;
/// Peers remembered (about 16 × 80 bytes each); the least recently witnessed go first.
pub const MAX_PEERS: usize = 1024;
/// How old a receipt must be before its block is challenged: an owner that frees a block asks
/// all its holders at once, so a block freed at one holder is freed at this one within
/// seconds, and is then no longer held here to be challenged.
pub const SETTLE: Duration = Duration::from_secs(5);

/// Why a receipt does not count.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The key is not a libp2p public key.
    #[error("receipt refused: unusable peer key")]
    BadKey,
    /// The signature does not cover this block and owner.
    #[error("receipt refused: bad signature")]
    BadSignature,
}

/// A holder's signed word that it holds a block for an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The holder's public key, libp2p protobuf encoding.
    #[serde(with = "serde_bytes_vec")]
    pub holder_key: Vec<u8>,
    /// Its signature over [`statement`].
    #[serde(with = "serde_bytes_vec")]
    pub signature: Vec<u8>,
}

fn statement(id: &BlockId, owner: &OwnerHash) -> Vec<u8> {
    [b"jellyfish/receipt/v1/".as_slice(), &id.0, owner].concat()
}

impl Receipt {
    /// `keypair`'s receipt for block `id` held for `owner`.
    pub fn sign(keypair: &Keypair, id: &BlockId, owner: &OwnerHash) -> Result<Self, ReceiptError> {
        Ok(Self {
            holder_key: keypair.public().encode_protobuf(),
            signature: keypair
                .sign(&statement(id, owner))
                .map_err(|_| ReceiptError::BadKey)?,
        })
    }

    /// The peer that signed this receipt for block `id` and `owner`.
    pub fn verify(&self, id: &BlockId, owner: &OwnerHash) -> Result<PeerId, ReceiptError> {
        let key =
            PublicKey::try_decode_protobuf(&self.holder_key).map_err(|_| ReceiptError::BadKey)?;
        match key.verify(&statement(id, owner), &self.signature) {
            true => Ok(key.to_peer_id()),
            false => Err(ReceiptError::BadSignature),
        }
    }
}

/// One block of a witness request: the block, its owner, and its other holders' receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witnessed {
    /// The block's address.
    pub id: BlockId,
    /// The owner it is held for.
    pub owner: OwnerHash,
    /// The receipts of its other holders.
    pub receipts: Vec<Receipt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Given {
    id: BlockId,
    owner: OwnerHash,
    at: Instant,
}

/// What a holder knows other peers were given, from their receipts.
#[derive(Debug, Default)]
pub struct Witnesses {
    peers: HashMap<PeerId, (Instant, VecDeque<Given>)>,
}

impl Witnesses {
    /// Remembers that `peer` took block `id` for `owner`.
    pub fn note(&mut self, peer: PeerId, id: BlockId, owner: OwnerHash, now: Instant) {
        let (last, given) = self
            .peers
            .entry(peer)
            .or_insert_with(|| (now, VecDeque::new()));
        *last = now;
        if given.iter().any(|g| g.id == id && g.owner == owner) {
            return;
        }
        given.push_back(Given { id, owner, at: now });
        if given.len() > PER_PEER {
            given.pop_front();
        }
        if self.peers.len() > MAX_PEERS {
            if let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, (last, _))| *last)
                .map(|(p, _)| *p)
            {
                self.peers.remove(&oldest);
            }
        }
    }

    /// Up to `n` blocks `peer` was given at least [`SETTLE`] ago, starting at `start` (a random
    /// number, so the peer cannot tell which it will be asked for), with their owners.
    pub fn to_challenge(
        &self,
        peer: &PeerId,
        n: usize,
        start: usize,
        now: Instant,
    ) -> Vec<(BlockId, OwnerHash)> {
        let Some((_, given)) = self.peers.get(peer) else {
            return Vec::new();
        };
        let settled: Vec<&Given> = given
            .iter()
            .filter(|g| now.saturating_duration_since(g.at) >= SETTLE)
            .collect();
        let start = start % settled.len().max(1);
        (0..n.min(settled.len()))
            .map(|i| settled[(start + i) % settled.len()])
            .map(|g| (g.id, g.owner))
            .collect()
    }

    /// Forgets that `peer` was given `id` for `owner` (its owner freed it).
    pub fn forget(&mut self, peer: &PeerId, id: &BlockId, owner: &OwnerHash) {
        if let Some((_, given)) = self.peers.get_mut(peer) {
            given.retain(|g| !(g.id == *id && g.owner == *owner));
        }
    }

    /// Every peer known to have been given blocks, with those blocks' addresses.
    pub fn given(&self) -> Vec<(PeerId, Vec<BlockId>)> {
        self.peers
            .iter()
            .map(|(peer, (_, given))| (*peer, given.iter().map(|g| g.id).collect()))
            .collect()
    }

    /// How many blocks `peer` is known to have been given (at most [`PER_PEER`]).
    pub fn count(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |(_, g)| g.len())
    }
}

/// A placed block's holders and their receipts.
pub type Placed = (BlockId, Vec<(PeerId, Receipt)>);

/// What an owner hands out after placing `placed` for `owner`: to each holder, up to
/// [`MAX_WITNESSED_BLOCKS`] of the blocks it holds (spread over the upload, from `start`),
/// each with the receipts of the block's other holders.
pub fn witness_requests(
    owner: OwnerHash,
    placed: &[Placed],
    start: usize,
) -> Vec<(PeerId, Vec<Witnessed>)> {
    let mut per_holder: HashMap<PeerId, Vec<&Placed>> = HashMap::new();
    for block in placed.iter().filter(|(_, receipts)| receipts.len() > 1) {
        for (holder, _) in &block.1 {
            per_holder.entry(*holder).or_default().push(block);
        }
    }
    per_holder
        .into_iter()
        .map(|(holder, blocks)| {
            let n = blocks.len().min(MAX_WITNESSED_BLOCKS);
            let start = start % blocks.len();
            let witnessed = (0..n)
                .map(|i| blocks[(start + i * blocks.len() / n) % blocks.len()])
                .map(|(id, receipts)| Witnessed {
                    id: *id,
                    owner,
                    receipts: receipts
                        .iter()
                        .filter(|(other, _)| *other != holder)
                        .take(MAX_RECEIPTS_PER_BLOCK)
                        .map(|(_, receipt)| receipt.clone())
                        .collect(),
                })
                .collect();
            (holder, witnessed)
        })
        .collect()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_receipt_names_its_signer_for_exactly_its_block_and_owner() {
        let holder = Keypair::generate_ed25519();
        let (id, owner) = (BlockId([1; 32]), [2; 32]);
        let receipt = Receipt::sign(&holder, &id, &owner).unwrap();
        assert_eq!(
            receipt.verify(&id, &owner),
            Ok(holder.public().to_peer_id())
        );
        assert_eq!(
            receipt.verify(&BlockId([9; 32]), &owner),
            Err(ReceiptError::BadSignature),
            "another block"
        );
        assert_eq!(
            receipt.verify(&id, &[3; 32]),
            Err(ReceiptError::BadSignature),
            "another owner"
        );
        // A receipt cannot be passed off as another peer's: the key is what signed.
        let mut borrowed = receipt.clone();
        borrowed.holder_key = Keypair::generate_ed25519().public().encode_protobuf();
        assert_eq!(
            borrowed.verify(&id, &owner),
            Err(ReceiptError::BadSignature)
        );
        let mut garbage = receipt;
        garbage.holder_key = vec![0xff; 7];
        assert_eq!(garbage.verify(&id, &owner), Err(ReceiptError::BadKey));
    }

    #[test]
    fn blocks_are_challenged_once_settled_and_never_once_freed() {
        let mut witnesses = Witnesses::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        for i in 0..3u8 {
            witnesses.note(peer, BlockId([i; 32]), [0; 32], t0);
        }
        witnesses.note(peer, BlockId([0; 32]), [0; 32], t0); // noted twice, kept once
        assert_eq!(witnesses.count(&peer), 3);
        assert!(
            witnesses.to_challenge(&peer, 2, 0, t0).is_empty(),
            "too new"
        );
        let later = t0 + SETTLE;
        assert_eq!(
            witnesses.to_challenge(&peer, 2, 1, later),
            vec![(BlockId([1; 32]), [0; 32]), (BlockId([2; 32]), [0; 32])]
        );
        assert_eq!(
            witnesses.to_challenge(&peer, 5, 0, later).len(),
            3,
            "never more than it holds"
        );
        witnesses.forget(&peer, &BlockId([1; 32]), &[0; 32]);
        assert!(!witnesses
            .to_challenge(&peer, 5, 0, later)
            .contains(&(BlockId([1; 32]), [0; 32])));
        assert!(witnesses
            .to_challenge(&PeerId::random(), 2, 0, later)
            .is_empty());
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let mut witnesses = Witnesses::default();
        let now = Instant::now();
        let busy = PeerId::random();
        for i in 0..(PER_PEER as u8 + 5) {
            witnesses.note(busy, BlockId([i; 32]), [0; 32], now);
        }
        assert_eq!(witnesses.count(&busy), PER_PEER);
        for i in 0..MAX_PEERS + 10 {
            let at = now + Duration::from_millis(i as u64 + 1);
            witnesses.note(PeerId::random(), BlockId([0; 32]), [0; 32], at);
        }
        assert_eq!(witnesses.peers.len(), MAX_PEERS);
        assert_eq!(witnesses.count(&busy), 0, "the least recent went first");
    }

    #[test]
    fn each_holder_hears_of_the_other_holders_of_its_blocks_and_no_more() {
        let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate_ed25519()).collect();
        let owner = [5; 32];
        let holders_of = |block: u8, who: &[usize]| -> Placed {
            let id = BlockId([block; 32]);
            let receipts = who
                .iter()
                .map(|&k| {
                    let receipt = Receipt::sign(&keys[k], &id, &owner).unwrap();
                    (keys[k].public().to_peer_id(), receipt)
                })
                .collect();
            (id, receipts)
        };
        // 100 blocks on holders 0, 1, 2 and one on 3 alone (nobody to witness it).
        let mut placed: Vec<Placed> = (0..100).map(|b| holders_of(b, &[0, 1, 2])).collect();
        placed.push(holders_of(200, &[3]));
        let requests = witness_requests(owner, &placed, 7);
        assert_eq!(requests.len(), 3, "holder 3 shares no block");
        for (holder, blocks) in &requests {
            assert_eq!(blocks.len(), MAX_WITNESSED_BLOCKS, "a sample, bounded");
            for block in blocks {
                let signers: Vec<PeerId> = block
                    .receipts
                    .iter()
                    .map(|r| r.verify(&block.id, &owner).unwrap())
                    .collect();
                assert_eq!(signers.len(), 2);
                assert!(!signers.contains(holder), "never its own receipt");
            }
            let distinct: std::collections::HashSet<_> = blocks.iter().map(|b| b.id).collect();
            assert_eq!(distinct.len(), blocks.len(), "spread, not repeated");
        }
    }
}
