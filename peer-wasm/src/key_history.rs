//! Key rotation: how an account hands over from one RSA key to the next.
//!
//! A password change rotates the account's keys (the old sealed private key is public and never
//! expires, so anyone who kept a copy and knows the old password would otherwise still hold the
//! account). The old key signs a [`KeyLink`] naming the new one; every record the new key signs
//! carries the chain of links from the account's earlier keys to it. A holder of a record signed
//! by an earlier key accepts a replacement signed by a later one ([`crate::record`]), and a holder
//! of a block claimed by an earlier key accepts a delete signed by a later one
//! ([`crate::holder`]). Nothing else trusts an earlier key: log-in never opens a key that a later
//! one superseded.
//!
//! Pure: no I/O, verified with the same RSA-PSS checks as records.

use serde::{Deserialize, Serialize};

use crate::crypto::{
    aead::serde_bytes_vec,
    rsa_keys::{PrivateKey, PublicKey},
    sha256, CryptoError,
};

/// Most links a chain keeps: a chain grows by one per password change and travels with every
/// record (about 800 bytes per link with 3,072-bit keys; 8 links take 6.5 KiB of a record's
/// 16 KiB, which [`crate::account::Session::record_room`] and [`crate::account::MAX_INDEX_PIN`]
/// leave room for). Older links are dropped: a holder still keeping a record from more than 8
/// changes ago refuses the newest, which then lives beside it until that record expires (90
/// days) and log-in never picks it (it is not a descendant's head, see `account`).
pub const MAX_KEY_LINKS: usize = 8;

/// One hand-over: an earlier key, and its signature naming the key that comes after it (the
/// next link's key, or the record's owner after the last link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLink {
    /// The earlier key, SPKI DER.
    #[serde(with = "serde_bytes_vec")]
    pub previous: Vec<u8>,
    /// RSA-PSS-SHA256 by `previous` over [`handover_statement`].
    #[serde(with = "serde_bytes_vec")]
    pub signature: Vec<u8>,
}

/// What an earlier key signs to hand the account over to `next` (both SPKI DER).
pub fn handover_statement(previous: &[u8], next: &[u8]) -> Vec<u8> {
    [
        b"jellyfish/handover/v1/".as_slice(),
        &sha256(previous),
        &sha256(next),
    ]
    .concat()
}

/// Why a chain of links was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// More links than [`MAX_KEY_LINKS`].
    #[error("key history refused: {0} links is over the limit of {MAX_KEY_LINKS}")]
    TooLong(usize),
    /// A link's key is unusable or its signature does not name the key after it.
    #[error("key history refused: link {at} is not signed by its key for the next one ({cause})")]
    BadLink {
        /// Which link, from the oldest (0).
        at: usize,
        /// What failed.
        cause: CryptoError,
    },
    /// A key appears twice: a chain must only go forward.
    #[error("key history refused: a key appears twice")]
    Loop,
}

impl KeyLink {
    /// `previous` hands over to `next`.
    pub fn sign(previous: &PrivateKey, next: &PublicKey) -> Result<Self, CryptoError> {
        let previous_der = previous.public().to_der()?;
        let signature = previous.sign(&handover_statement(&previous_der, &next.to_der()?));
        Ok(Self {
            previous: previous_der,
            signature,
        })
    }
}

/// Checks that `links` (oldest first) hand over, each to the next, and the last to `owner`
/// (SPKI DER). An empty chain is valid: the account never rotated.
pub fn verify(links: &[KeyLink], owner: &[u8]) -> Result<(), HistoryError> {
    if links.len() > MAX_KEY_LINKS {
        return Err(HistoryError::TooLong(links.len()));
    }
    for (at, link) in links.iter().enumerate() {
        let next = links.get(at + 1).map_or(owner, |l| l.previous.as_slice());
        if links[..at].iter().any(|l| l.previous == link.previous) || link.previous == owner {
            return Err(HistoryError::Loop);
        }
        let key = PublicKey::from_der(&link.previous)
            .map_err(|cause| HistoryError::BadLink { at, cause })?;
        key.verify(&handover_statement(&link.previous, next), &link.signature)
            .map_err(|cause| HistoryError::BadLink { at, cause })?;
    }
    Ok(())
}

/// Whether a (verified) chain hands over from `earlier` (SPKI DER).
pub fn descends_from(links: &[KeyLink], earlier: &[u8]) -> bool {
    links.iter().any(|l| l.previous == earlier)
}

/// `links` with `link` added last, the oldest dropped beyond [`MAX_KEY_LINKS`].
pub fn extended(links: &[KeyLink], link: KeyLink) -> Vec<KeyLink> {
    let mut all = links.to_vec();
    all.push(link);
    let excess = all.len().saturating_sub(MAX_KEY_LINKS);
    all.drain(..excess);
    all
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn keys(n: usize) -> Vec<PrivateKey> {
        (0..n)
            .map(|_| PrivateKey::generate_bits(2048).unwrap())
            .collect()
    }

    fn der(key: &PrivateKey) -> Vec<u8> {
        key.public().to_der().unwrap()
    }

    fn chain(keys: &[PrivateKey]) -> Vec<KeyLink> {
        keys.windows(2).fold(Vec::new(), |links, pair| {
            extended(&links, KeyLink::sign(&pair[0], &pair[1].public()).unwrap())
        })
    }

    #[test]
    fn a_chain_of_handovers_verifies_and_names_every_earlier_key() {
        let k = keys(4);
        let links = chain(&k);
        assert_eq!(links.len(), 3);
        assert_eq!(verify(&links, &der(&k[3])), Ok(()));
        assert!(k[..3].iter().all(|key| descends_from(&links, &der(key))));
        assert!(!descends_from(&links, &der(&k[3])));
        assert_eq!(verify(&[], &der(&k[0])), Ok(()));
    }

    #[test]
    fn a_chain_for_another_owner_or_with_a_forged_link_is_refused() {
        let k = keys(4);
        let links = chain(&k[..3]);
        // Ends at k[2], not at k[3]: a thief cannot graft his key onto someone's history.
        assert!(matches!(
            verify(&links, &der(&k[3])),
            Err(HistoryError::BadLink { at: 1, .. })
        ));
        // A link signed by the wrong key.
        let mut forged = links.clone();
        forged[0].signature = k[3].sign(&handover_statement(&forged[0].previous, &der(&k[1])));
        assert!(matches!(
            verify(&forged, &der(&k[2])),
            Err(HistoryError::BadLink { at: 0, .. })
        ));
        // Garbage key.
        let mut garbage = links.clone();
        garbage[1].previous = vec![1, 2, 3];
        assert!(matches!(
            verify(&garbage, &der(&k[2])),
            Err(HistoryError::BadLink { .. })
        ));
        // A loop back to the owner.
        let looped = vec![KeyLink::sign(&k[0], &k[0].public()).unwrap()];
        assert_eq!(verify(&looped, &der(&k[0])), Err(HistoryError::Loop));
    }

    #[test]
    fn chains_are_capped_and_drop_their_oldest_links() {
        let k = keys(MAX_KEY_LINKS + 3);
        let links = chain(&k);
        assert_eq!(links.len(), MAX_KEY_LINKS);
        let last = der(k.last().unwrap());
        assert_eq!(verify(&links, &last), Ok(()));
        assert!(!descends_from(&links, &der(&k[0])));
        assert!(descends_from(&links, &der(&k[3])));
        let mut long = links.clone();
        long.insert(0, KeyLink::sign(&k[1], &k[2].public()).unwrap());
        assert_eq!(
            verify(&long, &last),
            Err(HistoryError::TooLong(MAX_KEY_LINKS + 1))
        );
    }
}
