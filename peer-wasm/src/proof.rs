//! Proofs of storage. A block's address is the root of a SHA-256 Merkle tree over its sealed
//! bytes in [`LEAF`]-byte leaves, so anyone who knows only the address can challenge a holder
//! for one leaf, chosen at random, and check the answer: the leaf and the hashes along its path
//! to the root. A holder that dropped the block cannot answer (it would need the leaf), and the
//! challenger needs neither the block nor its key. One proof of a 1 MiB block is one 4 KiB
//! leaf and 8 hashes (4,352 bytes with its envelope), about 0.4 % of the block.
//!
//! The tree: leaves hash as `SHA-256(0x00 || leaf)`, inner nodes as `SHA-256(0x01 || left ||
//! right)`; a last node without a partner moves up unchanged. The address commits to the size
//! as well, so the shape of the tree is fixed by the address: `SHA-256("jellyfish/block/v2" ||
//! size as u64 little-endian || tree root)`. Pure, and checked against a plain recomputation.

use serde::{Deserialize, Serialize};

use crate::crypto::aead::serde_bytes_vec;

/// Bytes per leaf: small enough that a proof is cheap, large enough that the tree is shallow
/// (8 levels for a 1 MiB block).
pub const LEAF: usize = 4096;

/// Most levels a proof may have: enough for [`MAX_SIZE`] (a sealed block of 1 MiB is 257
/// leaves, so 9 levels).
const MAX_DEPTH: usize = 16;

/// Largest tree a proof may claim: 2^(16 - 1) leaves of [`LEAF`] bytes (128 MiB), far above any
/// block a holder accepts (`block` checks at compile time that its largest block fits), so a
/// forged size cannot make the checker walk a tree deeper than [`MAX_DEPTH`].
pub const MAX_SIZE: u64 = (1 << (MAX_DEPTH - 1)) * LEAF as u64;

/// A holder's answer to a challenge: one leaf and the hashes that take it to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The block's size in bytes (committed to by its address).
    pub size: u64,
    /// Which leaf this is.
    pub leaf: u32,
    /// The leaf's bytes.
    #[serde(with = "serde_bytes_vec")]
    pub data: Vec<u8>,
    /// The partner hashes from the leaf up (levels where the node has no partner are skipped).
    pub path: Vec<[u8; 32]>,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The proof answers another leaf than the one asked for.
    #[error("the proof is for leaf {got}, not the leaf {asked} asked for")]
    WrongLeaf {
        /// The leaf the challenge names.
        asked: u32,
        /// The leaf the proof gives.
        got: u32,
    },
    /// Its size, leaf length or path length cannot belong to any block.
    #[error("the proof is malformed: {0}")]
    Malformed(&'static str),
    /// The hashes do not lead to the address.
    #[error("the proof does not lead to the block's address")]
    Mismatch,
}

fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn leaf_hash(data: &[u8]) -> [u8; 32] {
    sha256_parts(&[&[0], data])
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    sha256_parts(&[&[1], left, right])
}

fn address(size: u64, tree_root: &[u8; 32]) -> [u8; 32] {
    sha256_parts(&[b"jellyfish/block/v2", &size.to_le_bytes(), tree_root])
}

/// How many leaves a block of `size` bytes has (an empty block has one, empty).
pub fn leaves(size: u64) -> u32 {
    u32::try_from(size.div_ceil(LEAF as u64).max(1)).unwrap_or(u32::MAX)
}

/// The leaf a challenge names, for a block of `size` bytes: challenges are any `u32`, so the
/// challenger need not know the size.
pub fn leaf_for(challenge: u32, size: u64) -> u32 {
    challenge % leaves(size)
}

/// The leaf hashes of `bytes`: what a holder keeps beside a block so that a challenge reads
/// one leaf of it, not all of it ([`prove_from_leaves`]).
pub fn leaf_hashes(bytes: &[u8]) -> Vec<[u8; 32]> {
    if bytes.is_empty() {
        return vec![leaf_hash(&[])];
    }
    bytes.chunks(LEAF).map(leaf_hash).collect()
}

/// The level above `level`: pairs hashed, a last node without a partner moved up unchanged.
fn up(level: &[[u8; 32]]) -> Vec<[u8; 32]> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node_hash(left, right),
            _ => pair.first().copied().unwrap_or_default(),
        })
        .collect()
}

/// The address of `bytes`.
pub fn root(bytes: &[u8]) -> [u8; 32] {
    let leaves = leaf_hashes(bytes);
    address_from_level(bytes.len() as u64, leaves)
}

fn address_from_level(size: u64, mut level: Vec<[u8; 32]>) -> [u8; 32] {
    while level.len() > 1 {
        level = up(&level);
    }
    address(size, level.first().unwrap_or(&[0; 32]))
}

/// The address of a block of `size` bytes with these [`leaf_hashes`], or `None` if there are
/// not as many as such a block has.
pub fn address_of_leaves(size: u64, leaves: &[[u8; 32]]) -> Option<[u8; 32]> {
    (size <= MAX_SIZE && leaves.len() == self::leaves(size) as usize)
        .then(|| address_from_level(size, leaves.to_vec()))
}

/// The proof of leaf `leaf_for(challenge, bytes.len())` of `bytes`.
pub fn prove(bytes: &[u8], challenge: u32) -> Proof {
    proof_and_address(bytes, challenge).0
}

/// [`prove`] if `bytes` are the block at `block_address`, else `None` (a block stored before
/// addresses were tree roots). One pass over the tree for both: a challenged holder reads and
/// hashes each 1 MiB block once, not twice (about 5 ms of SHA-256 in wasm a pass; a holder is
/// challenged by every fellow holder's check of each block it was given).
pub fn prove_at(block_address: &[u8; 32], bytes: &[u8], challenge: u32) -> Option<Proof> {
    let (proof, address) = proof_and_address(bytes, challenge);
    (address == *block_address).then_some(proof)
}

/// [`prove`], and the address of `bytes` ([`root`]) from the same tree.
fn proof_and_address(bytes: &[u8], challenge: u32) -> (Proof, [u8; 32]) {
    let size = bytes.len() as u64;
    let leaf = leaf_for(challenge, size);
    let start = leaf as usize * LEAF;
    let data = bytes
        .get(start..(start + LEAF).min(bytes.len()))
        .unwrap_or_default()
        .to_vec();
    path_and_address(size, leaf_hashes(bytes), leaf, data)
}

/// The proof of leaf `leaf_for(challenge, size)` of a block of `size` bytes from its
/// [`leaf_hashes`] and that one leaf's bytes (`data`), if the leaf hashes to its place among
/// them and they lead to `block_address`: a holder that kept a block's leaf hashes answers a
/// challenge by reading 4 KiB of it and hashing about 256 inner nodes, not by reading and
/// hashing the whole 1 MiB.
pub fn prove_from_leaves(
    block_address: &[u8; 32],
    size: u64,
    leaves: &[[u8; 32]],
    challenge: u32,
    data: Vec<u8>,
) -> Option<Proof> {
    let leaf = leaf_for(challenge, size);
    if size > MAX_SIZE
        || leaves.len() != self::leaves(size) as usize
        || leaves.get(leaf as usize) != Some(&leaf_hash(&data))
    {
        return None;
    }
    let (proof, address) = path_and_address(size, leaves.to_vec(), leaf, data);
    (address == *block_address).then_some(proof)
}

/// The proof of `leaf` (whose bytes are `data`) from the leaf level of a block of `size`
/// bytes, and the block's address.
fn path_and_address(
    size: u64,
    mut level: Vec<[u8; 32]>,
    leaf: u32,
    data: Vec<u8>,
) -> (Proof, [u8; 32]) {
    let mut index = leaf as usize;
    let mut path = Vec::new();
    while level.len() > 1 {
        if let Some(partner) = level.get(index ^ 1) {
            path.push(*partner);
        }
        level = up(&level);
        index /= 2;
    }
    let proof = Proof {
        size,
        leaf,
        data,
        path,
    };
    (proof, address(size, level.first().unwrap_or(&[0; 32])))
}

/// Checks that `proof` answers `challenge` for the block at `block_address`.
pub fn verify(block_address: &[u8; 32], challenge: u32, proof: &Proof) -> Result<(), ProofError> {
    if proof.size > MAX_SIZE {
        return Err(ProofError::Malformed("larger than any block"));
    }
    let asked = leaf_for(challenge, proof.size);
    if proof.leaf != asked {
        return Err(ProofError::WrongLeaf {
            asked,
            got: proof.leaf,
        });
    }
    let start = u64::from(proof.leaf) * LEAF as u64;
    let expected_len = proof.size.saturating_sub(start).min(LEAF as u64);
    if proof.data.len() as u64 != expected_len {
        return Err(ProofError::Malformed("the leaf has the wrong length"));
    }
    if proof.path.len() > MAX_DEPTH {
        return Err(ProofError::Malformed("the path is too long"));
    }
    let mut hash = leaf_hash(&proof.data);
    let mut index = proof.leaf as usize;
    let mut count = leaves(proof.size) as usize;
    let mut path = proof.path.iter();
    while count > 1 {
        let has_partner = (index ^ 1) < count;
        if has_partner {
            let partner = path
                .next()
                .ok_or(ProofError::Malformed("the path is too short"))?;
            hash = match index % 2 {
                0 => node_hash(&hash, partner),
                _ => node_hash(partner, &hash),
            };
        }
        index /= 2;
        count = count.div_ceil(2);
    }
    if path.next().is_some() {
        return Err(ProofError::Malformed("the path is too long"));
    }
    match address(proof.size, &hash) == *block_address {
        true => Ok(()),
        false => Err(ProofError::Mismatch),
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn every_leaf_of_every_shape_proves_against_the_address_alone() {
        for len in [
            0,
            1,
            LEAF - 1,
            LEAF,
            LEAF + 1,
            3 * LEAF,
            5 * LEAF + 7,
            1024 * 1024 + 28,
        ] {
            let block = bytes(len, 1);
            let address = root(&block);
            for leaf in 0..leaves(len as u64) {
                // Challenges beyond the leaf count wrap onto a leaf.
                for challenge in [leaf, leaf + 7 * leaves(len as u64)] {
                    let proof = prove(&block, challenge);
                    assert_eq!(verify(&address, challenge, &proof), Ok(()), "{len} {leaf}");
                }
            }
        }
    }

    #[test]
    fn a_holder_with_the_leaf_hashes_proves_from_one_leaf() {
        for len in [0, 1, LEAF, 3 * LEAF + 7, 257 * LEAF - 16] {
            let block = bytes(len, 9);
            let (size, address, leaves) = (len as u64, root(&block), leaf_hashes(&block));
            assert_eq!(address_of_leaves(size, &leaves), Some(address));
            for challenge in [0, 1, 77, u32::MAX] {
                let leaf = leaf_for(challenge, size) as usize * LEAF;
                let data = block[leaf..(leaf + LEAF).min(len)].to_vec();
                let proof = prove_from_leaves(&address, size, &leaves, challenge, data.clone());
                assert_eq!(proof, Some(prove(&block, challenge)));
                // A leaf changed on disk, hashes of another block, another address or size:
                // no proof.
                let mut changed = data.clone();
                changed.push(0);
                assert_eq!(
                    prove_from_leaves(&address, size, &leaves, challenge, changed),
                    None
                );
                let short = &leaves[..leaves.len() - 1];
                let other = root(b"other");
                for (a, s, l) in [
                    (&other, size, &leaves[..]),
                    (&address, size + 1, &leaves[..]),
                ] {
                    assert_eq!(prove_from_leaves(a, s, l, challenge, data.clone()), None);
                }
                if !short.is_empty() {
                    assert_eq!(
                        prove_from_leaves(&address, size, short, challenge, data),
                        None
                    );
                }
            }
        }
    }

    #[test]
    fn proving_at_an_address_checks_the_bytes_in_the_same_pass() {
        for len in [0, 1, LEAF, 3 * LEAF + 7, 257 * LEAF - 16] {
            let block = bytes(len, 5);
            let address = root(&block);
            for challenge in [0, 1, 77, u32::MAX] {
                let proof = prove_at(&address, &block, challenge).unwrap();
                assert_eq!(proof, prove(&block, challenge));
                verify(&address, challenge, &proof).unwrap();
            }
            // Other bytes under this address (a block stored under its plain hash, or one
            // changed on disk) give no proof at all.
            let mut other = block.clone();
            other.push(1);
            assert_eq!(prove_at(&address, &other, 9), None);
            assert_eq!(prove_at(&crate::crypto::sha256(&block), &block, 9), None);
        }
    }

    #[test]
    fn a_holder_without_the_block_cannot_answer() {
        let block = bytes(9 * LEAF + 100, 2);
        let address = root(&block);
        let honest = prove(&block, 4);

        // A different leaf, a flipped byte, a wrong partner hash, a lie about the size, or a
        // proof of another block: each refused.
        let other_leaf = prove(&block, 5);
        assert_eq!(
            verify(&address, 4, &other_leaf),
            Err(ProofError::WrongLeaf { asked: 4, got: 5 })
        );
        let mut flipped = honest.clone();
        flipped.data[0] ^= 1;
        assert_eq!(verify(&address, 4, &flipped), Err(ProofError::Mismatch));
        let mut bad_path = honest.clone();
        bad_path.path[1][0] ^= 1;
        assert_eq!(verify(&address, 4, &bad_path), Err(ProofError::Mismatch));
        let mut short = honest.clone();
        short.path.pop();
        assert!(matches!(
            verify(&address, 4, &short),
            Err(ProofError::Malformed(_))
        ));
        let mut resized = honest.clone();
        resized.size += LEAF as u64;
        assert!(verify(&address, 4, &resized).is_err());
        let elsewhere = prove(&bytes(9 * LEAF + 100, 3), 4);
        assert_eq!(verify(&address, 4, &elsewhere), Err(ProofError::Mismatch));
    }

    #[test]
    fn the_address_commits_to_every_byte_and_the_size() {
        let block = bytes(3 * LEAF, 4);
        let mut changed = block.clone();
        changed[2 * LEAF + 5] ^= 1;
        assert_ne!(root(&block), root(&changed));
        let mut longer = block.clone();
        longer.push(0);
        assert_ne!(root(&block), root(&longer));
        assert_ne!(root(&[]), root(&[0]));
    }
}
