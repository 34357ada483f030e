//! Blocks: how a file becomes sealed, content-addressed pieces, and back.
//!
//! A file is cut into [`BLOCK_SIZE`] plaintext pieces. Each is sealed with the file's own
//! AES-256-GCM key and a fresh random nonce, with associated data naming the file and the
//! piece's position, so a holder cannot swap pieces between files or positions unnoticed. A
//! sealed block is `nonce || ciphertext || tag`, and its address ([`BlockId`]) is the root of a
//! SHA-256 Merkle tree over those bytes ([`crate::proof`]): whoever fetches it checks the
//! address before anything else, and anyone can challenge a holder to prove it still holds it.

use serde::{Deserialize, Serialize};

use crate::crypto::{
    aead::{Sealed, NONCE_LEN},
    fast, random_bytes, CryptoError, SymmetricKey,
};

/// Plaintext bytes per block (the last block of a file may be shorter).
pub const BLOCK_SIZE: usize = 1024 * 1024;
/// Sealing overhead per block: the nonce and the GCM tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + 16;
/// Largest sealed block a holder accepts.
pub const MAX_SEALED_BLOCK: usize = BLOCK_SIZE + SEAL_OVERHEAD;
// Proofs of storage cover every block a holder accepts.
const _: () = assert!(MAX_SEALED_BLOCK as u64 <= crate::proof::MAX_SIZE);

/// A block's address: the Merkle root of its sealed bytes ([`crate::proof::root`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockId(pub [u8; 32]);

impl BlockId {
    /// The address of sealed bytes.
    pub fn of(sealed: &[u8]) -> Self {
        Self(crate::proof::root(sealed))
    }

    /// Lower-case hex, as stored in IndexedDB.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses [`BlockId::to_hex`].
    pub fn from_hex(text: &str) -> Option<Self> {
        from_hex(text).map(Self)
    }
}

impl std::fmt::Debug for BlockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockId({}…)", &self.to_hex()[..12])
    }
}

/// `N` bytes from exactly `2 N` hex digits.
fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// A file's random identity, part of every block's associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId(pub [u8; 16]);

impl FileId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(random_bytes())
    }

    /// Lower-case hex, for the JS API.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses [`FileId::to_hex`].
    pub fn from_hex(text: &str) -> Option<Self> {
        from_hex(text).map(Self)
    }
}

/// Why a block could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    /// The bytes do not hash to the address asked for: the holder altered or swapped them.
    #[error("block {0:?} was altered: its bytes do not match its address")]
    Altered(BlockId),
    /// The bytes hash right but do not open: sealed under another key, file or position.
    #[error("block {0:?} does not open: it belongs to another file or position")]
    Foreign(BlockId),
    /// Too short to be a sealed block, or too long.
    #[error("block {0:?} has an impossible size")]
    BadSize(BlockId),
    /// Crypto failed for another reason.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn aad(file: &FileId, index: u64) -> Vec<u8> {
    [
        b"jellyfish/block/v1/".as_slice(),
        &file.0,
        &index.to_be_bytes(),
    ]
    .concat()
}

/// Seals piece `index` of `file` and returns its bytes and address.
pub async fn seal_block(
    key: &SymmetricKey,
    file: &FileId,
    index: u64,
    plaintext: &[u8],
) -> Result<(BlockId, Vec<u8>), BlockError> {
    let sealed = fast::seal(key, &aad(file, index), plaintext).await?;
    let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.ciphertext.len());
    bytes.extend_from_slice(&sealed.nonce);
    bytes.extend_from_slice(&sealed.ciphertext);
    Ok((BlockId::of(&bytes), bytes))
}

/// Checks a fetched block against its address, then opens it as piece `index` of `file`.
pub async fn open_block(
    key: &SymmetricKey,
    file: &FileId,
    index: u64,
    id: &BlockId,
    bytes: &[u8],
) -> Result<Vec<u8>, BlockError> {
    if BlockId::of(bytes) != *id {
        return Err(BlockError::Altered(*id));
    }
    if bytes.len() < SEAL_OVERHEAD || bytes.len() > MAX_SEALED_BLOCK {
        return Err(BlockError::BadSize(*id));
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let sealed = Sealed {
        nonce: nonce.try_into().map_err(|_| BlockError::BadSize(*id))?,
        ciphertext: ciphertext.to_vec(),
    };
    fast::open(key, &aad(file, index), &sealed)
        .await
        .map_err(|e| match e {
            CryptoError::Decrypt => BlockError::Foreign(*id),
            other => BlockError::Crypto(other),
        })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn blocks_round_trip_and_detect_tampering_and_swaps() {
        let key = SymmetricKey::random();
        let file = FileId::random();
        let (id, bytes) = seal_block(&key, &file, 3, b"piece three").await.unwrap();
        assert_eq!(
            open_block(&key, &file, 3, &id, &bytes).await.unwrap(),
            b"piece three"
        );

        let mut altered = bytes.clone();
        altered[20] ^= 1;
        assert_eq!(
            open_block(&key, &file, 3, &id, &altered).await,
            Err(BlockError::Altered(id))
        );
        // The right bytes at the wrong position, or of another file, do not open.
        assert_eq!(
            open_block(&key, &file, 4, &id, &bytes).await,
            Err(BlockError::Foreign(id))
        );
        let other = FileId::random();
        assert_eq!(
            open_block(&key, &other, 3, &id, &bytes).await,
            Err(BlockError::Foreign(id))
        );
        // Sealing the same piece twice gives different blocks (fresh nonces).
        let (id2, _) = seal_block(&key, &file, 3, b"piece three").await.unwrap();
        assert_ne!(id, id2);
    }

    #[test]
    fn file_ids_round_trip_through_hex() {
        let id = FileId::random();
        assert_eq!(FileId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(FileId::from_hex("zz"), None);
    }
}
