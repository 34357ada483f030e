//! An owner's signed word that a block may be stored, and how many copies of it to keep.
//!
//! Every store request carries one, and every holder keeps it beside the block: with it, a
//! holder can hand the sealed bytes to another peer while the owner is offline (repair,
//! [`crate::repair`]), and the new holder checks exactly what it checks on an upload (the
//! owner's signature over the address and the copies, the pledges that earn the owner an
//! allowance) without trusting the holder that forwards it. A forwarder can change nothing:
//! the copies are signed, and another owner's pledges do not count for this one.

use serde::{Deserialize, Serialize};

use crate::{
    block::BlockId,
    crypto::{aead::serde_bytes_vec, rsa_keys::PublicKey, sha256, OwnerHash},
    pledge::Pledge,
};

/// Most copies an owner may ask the network to keep of one block: a forwarder cannot spread a
/// block wider, and a careless owner cannot ask every peer to hold theirs.
pub const MAX_COPIES: u8 = 8;

/// How far a fresh warrant's signing time may be from the holder's clock: a day (clocks are
/// often minutes off, rarely a day).
pub const CLOCK_SLACK_SECS: u64 = 24 * 60 * 60;

/// Most warrants a holder keeps per block (one per owner who stored the same sealed bytes):
/// a popular block brings no unbounded list.
pub const MAX_WARRANTS_PER_BLOCK: usize = 4;

/// What an owner signs to have a block stored and kept at `copies` copies, signed at Unix
/// time `signed_at` (warrants from before signing times existed have none).
pub fn statement(id: &BlockId, copies: u8, signed_at: Option<u64>) -> Vec<u8> {
    match signed_at {
        None => [b"jellyfish/store/v2/".as_slice(), &id.0, &[copies]].concat(),
        Some(at) => [
            b"jellyfish/store/v3/".as_slice(),
            &id.0,
            &[copies],
            &at.to_be_bytes(),
        ]
        .concat(),
    }
}

/// Why a warrant is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarrantError {
    /// The owner's key is not a usable RSA key.
    #[error("owner key: {0}")]
    BadKey(String),
    /// The signature does not cover this block and these copies.
    #[error("the owner's signature does not cover this block")]
    BadSignature,
    /// Copies out of range.
    #[error("copies must be 1 to {MAX_COPIES}, not {0}")]
    Copies(u8),
}

/// The owner's signed word for one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warrant {
    /// The owner's RSA public key, SPKI DER.
    #[serde(with = "serde_bytes_vec")]
    pub owner: Vec<u8>,
    /// The owner's RSA-PSS signature over [`statement`] of the block's address and `copies`.
    #[serde(with = "serde_bytes_vec")]
    pub signature: Vec<u8>,
    /// Copies the owner wants kept (1 to [`MAX_COPIES`]).
    pub copies: u8,
    /// What the owner's browsers donate: a holder stores no more for this owner than these
    /// earn ([`crate::pledge::allowance`]).
    pub pledges: Vec<Pledge>,
    /// When the owner signed it (Unix seconds): until [`crate::repair::Settings::keep_unrenewed`]
    /// after it, the block is kept without asking for the owner's lease. `None` on warrants
    /// from before signing times existed: those blocks never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<u64>,
}

impl Warrant {
    /// A warrant for block `id`, signed at Unix time `signed_at` by `sign` (the owner's
    /// RSA-PSS signing).
    pub fn new(
        id: &BlockId,
        owner: Vec<u8>,
        copies: u8,
        pledges: Vec<Pledge>,
        signed_at: u64,
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Self {
        let signature = sign(&statement(id, copies, Some(signed_at)));
        Self::with_signature(owner, copies, pledges, signed_at, signature)
    }

    /// A warrant from the owner's `signature` over [`statement`]`(id, copies, Some(signed_at))`,
    /// made apart (an upload signs in WebCrypto, which is asynchronous).
    pub fn with_signature(
        owner: Vec<u8>,
        copies: u8,
        pledges: Vec<Pledge>,
        signed_at: u64,
        signature: Vec<u8>,
    ) -> Self {
        Self {
            signature,
            owner,
            copies,
            pledges,
            signed_at: Some(signed_at),
        }
    }

    /// The hash of the owner's key, as stores record claims.
    pub fn owner_hash(&self) -> OwnerHash {
        sha256(&self.owner)
    }

    /// Checks that the owner signed for block `id` and these copies; returns the owner's hash.
    /// The pledges are checked by the holder, which counts them ([`crate::pledge::donors`]).
    pub fn verify(&self, id: &BlockId) -> Result<OwnerHash, WarrantError> {
        if !(1..=MAX_COPIES).contains(&self.copies) {
            return Err(WarrantError::Copies(self.copies));
        }
        let key =
            PublicKey::from_der(&self.owner).map_err(|e| WarrantError::BadKey(e.to_string()))?;
        key.verify(&statement(id, self.copies, self.signed_at), &self.signature)
            .map_err(|_| WarrantError::BadSignature)?;
        Ok(self.owner_hash())
    }

    /// [`Warrant::verify`] on the platform's fastest engine ([`crate::crypto::fast::verify`]:
    /// WebCrypto in the browser, each owner's key imported once): a holder checks one warrant
    /// per stored copy.
    pub async fn verify_fast(&self, id: &BlockId) -> Result<OwnerHash, WarrantError> {
        if !(1..=MAX_COPIES).contains(&self.copies) {
            return Err(WarrantError::Copies(self.copies));
        }
        let statement = statement(id, self.copies, self.signed_at);
        match crate::crypto::fast::verify(&self.owner, &statement, &self.signature).await {
            Ok(()) => Ok(self.owner_hash()),
            Err(crate::crypto::CryptoError::BadSignature) => Err(WarrantError::BadSignature),
            Err(e) => Err(WarrantError::BadKey(e.to_string())),
        }
    }

    /// The warrant as kept on disk (CBOR).
    pub fn to_bytes(&self) -> Vec<u8> {
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    /// A warrant read back from disk; `None` if the bytes are not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        cbor4ii::serde::from_slice(bytes).ok()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crypto::rsa_keys::PrivateKey;

    #[test]
    fn a_warrant_covers_its_block_and_copies_and_nothing_else() {
        let key = PrivateKey::generate_bits(2048).unwrap();
        let der = key.public().to_der().unwrap();
        let id = BlockId::of(b"sealed bytes");
        let warrant = Warrant::new(&id, der.clone(), 3, Vec::new(), 1_800_000_000, |m| {
            key.sign(m)
        });
        assert_eq!(warrant.verify(&id), Ok(sha256(&der)));
        assert_eq!(
            Warrant::from_bytes(&warrant.to_bytes()),
            Some(warrant.clone())
        );

        // Another block, more copies than signed for, or someone else's key: refused.
        let other = BlockId::of(b"other bytes");
        assert_eq!(warrant.verify(&other), Err(WarrantError::BadSignature));
        let wider = Warrant {
            copies: 8,
            ..warrant.clone()
        };
        assert_eq!(wider.verify(&id), Err(WarrantError::BadSignature));
        // The fast check (a holder's, WebCrypto in the browser) agrees.
        for (w, block) in [(&warrant, &id), (&warrant, &other), (&wider, &id)] {
            let fast = futures::executor::block_on(w.verify_fast(block));
            assert_eq!(fast, w.verify(block));
        }
        // Nor a later signing time (it would put off the block's expiry), nor none.
        for signed_at in [Some(1_900_000_000), None] {
            let later = Warrant {
                signed_at,
                ..warrant.clone()
            };
            assert_eq!(later.verify(&id), Err(WarrantError::BadSignature));
        }
        // A warrant from before signing times still verifies as it did.
        let old = Warrant {
            signature: key.sign(&statement(&id, 3, None)),
            signed_at: None,
            ..warrant.clone()
        };
        assert_eq!(old.verify(&id), Ok(sha256(&der)));
        assert_eq!(Warrant::from_bytes(&old.to_bytes()), Some(old));
        let thief = PrivateKey::generate_bits(2048).unwrap();
        let stolen = Warrant {
            owner: thief.public().to_der().unwrap(),
            ..warrant.clone()
        };
        assert_eq!(stolen.verify(&id), Err(WarrantError::BadSignature));
        let too_many = Warrant::new(&id, der, MAX_COPIES + 1, Vec::new(), 0, |m| key.sign(m));
        assert_eq!(
            too_many.verify(&id),
            Err(WarrantError::Copies(MAX_COPIES + 1))
        );
        assert_eq!(Warrant::from_bytes(b"not cbor"), None);
    }
}
