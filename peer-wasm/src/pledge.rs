//! Pledges: what a browser donates to the network, signed by that browser's peer key, on behalf
//! of one user.
//!
//! A user's quota is what their browsers donate divided by the copies each block takes. The
//! uploading browser checks it from the user's own (sealed) index, but a holder cannot read
//! that index, so every store request carries the user's pledges instead: each one says "peer P
//! donates B bytes for the owner of key K" and is signed by P's libp2p key. A holder checks the
//! signatures, counts each donating peer once, and refuses to hold more for one owner than that
//! owner's pledges earn ([`allowance`]). A freeloader with no pledge gets nothing stored, and one
//! cannot borrow another user's pledge (it names the owner's key) or inflate it (it is signed).
//!
//! A pledge alone does not prove that the donating peer keeps anything: holders count each one
//! by the audits of its peer ([`crate::donor_audit`]), so a key minted for a pledge, with no
//! browser behind it, counts nothing.

use libp2p::{
    identity::{Keypair, PublicKey},
    PeerId,
};
use serde::{Deserialize, Serialize};

use crate::crypto::{aead::serde_bytes_vec, OwnerHash};

/// Most pledges one store request may carry (one per browser of the user).
pub const MAX_PLEDGES: usize = 32;
/// Most one pledge counts for, whatever it claims: the largest donation a browser offers.
pub const MAX_PLEDGE_BYTES: u64 = 64 * 1024 * 1024 * 1024;
/// Copies each block takes across the network, which a holder divides pledges by.
pub const NETWORK_REPLICAS: u64 = 3;
/// Room a holder gives each owner beyond pledges / copies, for sealing overhead, manifests and
/// the index blobs, so an owner at exactly their quota is not refused by a holder that happens
/// to hold every one of their blocks.
pub const ALLOWANCE_SLACK: u64 = 8 * 1024 * 1024;

/// Why a pledge does not count.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PledgeError {
    /// The key is not a libp2p public key.
    #[error("pledge refused: unusable peer key")]
    BadKey,
    /// The signature does not verify.
    #[error("pledge refused: bad signature")]
    BadSignature,
    /// It names another owner than the request.
    #[error("pledge refused: it was made for another user")]
    OtherOwner,
    /// Too many pledges in one request.
    #[error("at most {MAX_PLEDGES} pledges per request")]
    TooMany,
}

/// One browser's signed donation for one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pledge {
    /// The owner's key hash (SHA-256 of the RSA public key, SPKI DER).
    pub owner: OwnerHash,
    /// Bytes the peer donates.
    pub bytes: u64,
    /// The donating peer's public key, libp2p protobuf encoding.
    #[serde(with = "serde_bytes_vec")]
    pub peer_key: Vec<u8>,
    /// The peer key's signature over [`Pledge::signed_bytes`].
    #[serde(with = "serde_bytes_vec")]
    pub signature: Vec<u8>,
}

impl Pledge {
    /// `keypair`'s pledge of `bytes` to `owner`.
    pub fn sign(keypair: &Keypair, owner: OwnerHash, bytes: u64) -> Result<Self, PledgeError> {
        let mut pledge = Self {
            owner,
            bytes,
            peer_key: keypair.public().encode_protobuf(),
            signature: Vec::new(),
        };
        pledge.signature = keypair
            .sign(&pledge.signed_bytes())
            .map_err(|_| PledgeError::BadKey)?;
        Ok(pledge)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        [
            b"jellyfish/pledge/v1/".as_slice(),
            &self.owner,
            &self.bytes.to_be_bytes(),
            &self.peer_key,
        ]
        .concat()
    }

    /// The donating peer and the bytes this pledge counts for, once checked for `owner`.
    pub fn verify(&self, owner: &OwnerHash) -> Result<(PeerId, u64), PledgeError> {
        if &self.owner != owner {
            return Err(PledgeError::OtherOwner);
        }
        let key =
            PublicKey::try_decode_protobuf(&self.peer_key).map_err(|_| PledgeError::BadKey)?;
        if !key.verify(&self.signed_bytes(), &self.signature) {
            return Err(PledgeError::BadSignature);
        }
        Ok((key.to_peer_id(), self.bytes.min(MAX_PLEDGE_BYTES)))
    }
}

/// The donating peers of valid pledges for `owner`, each once with its largest pledge.
pub fn donors(
    pledges: &[Pledge],
    owner: &OwnerHash,
) -> Result<std::collections::BTreeMap<PeerId, u64>, PledgeError> {
    if pledges.len() > MAX_PLEDGES {
        return Err(PledgeError::TooMany);
    }
    let mut donors = std::collections::BTreeMap::new();
    for pledge in pledges {
        let (peer, bytes) = pledge.verify(owner)?;
        let counted = donors.entry(peer).or_insert(0u64);
        *counted = (*counted).max(bytes);
    }
    Ok(donors)
}

/// What a holder may hold for `owner`: the pledges, each counted in full, divided by the copies
/// each block takes, plus [`ALLOWANCE_SLACK`]; nothing without a pledge. Every pledge must be
/// valid and the owner's, or the request is refused. Holders count pledges by their peers'
/// audits instead ([`crate::donor_audit::Book::donated`], then [`allowance_of`]).
pub fn allowance(pledges: &[Pledge], owner: &OwnerHash) -> Result<u64, PledgeError> {
    Ok(allowance_of(donors(pledges, owner)?.values().sum()))
}

/// What `donated` bytes (as counted) let a holder hold for their owner.
pub fn allowance_of(donated: u64) -> u64 {
    if donated == 0 {
        0
    } else {
        donated / NETWORK_REPLICAS + ALLOWANCE_SLACK
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn pledges_add_up_once_per_peer() {
        let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let owner = [1; 32];
        let pledges = [
            Pledge::sign(&a, owner, 3 * GIB).unwrap(),
            Pledge::sign(&a, owner, 3 * GIB).unwrap(), // the same browser twice counts once
            Pledge::sign(&b, owner, 6 * GIB).unwrap(),
        ];
        assert_eq!(
            allowance(&pledges, &owner),
            Ok(3 * GIB + ALLOWANCE_SLACK),
            "(3 + 6) GiB / 3 copies"
        );
        assert_eq!(allowance(&[], &owner), Ok(0), "no pledge, no storage");
    }

    #[test]
    fn forged_borrowed_or_inflated_pledges_are_refused() {
        let donor = Keypair::generate_ed25519();
        let (alice, mallory) = ([1; 32], [2; 32]);
        let honest = Pledge::sign(&donor, alice, GIB).unwrap();

        assert_eq!(
            allowance(std::slice::from_ref(&honest), &mallory),
            Err(PledgeError::OtherOwner)
        );
        let mut inflated = honest.clone();
        inflated.bytes = 100 * GIB;
        assert_eq!(
            allowance(&[inflated], &alice),
            Err(PledgeError::BadSignature)
        );
        let mut relabelled = honest.clone();
        relabelled.owner = mallory;
        assert_eq!(
            allowance(&[relabelled], &mallory),
            Err(PledgeError::BadSignature)
        );
        let mut garbage = honest.clone();
        garbage.peer_key = vec![0xff; 10];
        assert_eq!(allowance(&[garbage], &alice), Err(PledgeError::BadKey));
        let many = vec![honest; MAX_PLEDGES + 1];
        assert_eq!(allowance(&many, &alice), Err(PledgeError::TooMany));
    }

    #[test]
    fn one_pledge_counts_for_at_most_the_largest_donation() {
        let donor = Keypair::generate_ed25519();
        let huge = Pledge::sign(&donor, [1; 32], u64::MAX).unwrap();
        assert_eq!(
            allowance(&[huge], &[1; 32]),
            Ok(MAX_PLEDGE_BYTES / NETWORK_REPLICAS + ALLOWANCE_SLACK)
        );
    }
}
