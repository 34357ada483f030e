//! What this peer holds for others: sealed blocks, up to the space its user donated.
//!
//! One type, [`BlockStore`], with the same methods on both targets: in the browser the blocks
//! live in IndexedDB (`indexeddb.rs`: they survive reloads and restarts), natively in memory
//! (`memory.rs`: tests and simulations). One test body (`contract.rs`) runs against both. The store
//! never holds more than its capacity, nor more for one owner than the allowance their pledges earn
//! ([`crate::pledge`]).
//!
//! A block is held once however many owners stored it, with one claim per owner (the hash of
//! the owner's key). Each claim counts against its owner's allowance; a delete drops only the
//! caller's claim, and the bytes go when the last claim does. So storing someone else's sealed
//! bytes first and then deleting them takes nothing from the other owner.

use serde::Serialize;

pub use crate::crypto::OwnerHash;

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Storing would exceed the donated space.
    #[error("this peer's donated space is full ({used} of {capacity} bytes used)")]
    Full {
        /// Bytes held.
        used: u64,
        /// Bytes donated.
        capacity: u64,
    },
    /// Storing would give one owner more than their pledges earn.
    #[error("the owner's donations do not cover this block: {held} bytes held here for them, {allowance} allowed; donate more space or delete files")]
    OverAllowance {
        /// Bytes held here for the owner.
        held: u64,
        /// Bytes their pledges allow here.
        allowance: u64,
    },
    /// The browser's storage failed.
    #[error("storage failed: {0}")]
    Backend(String),
}

/// How much is donated and held.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    /// Bytes donated.
    pub capacity: u64,
    /// Bytes held for others.
    pub used: u64,
    /// Blocks held.
    pub blocks: u64,
}

/// What this browser donates and holds for others, as the page shows it.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[cfg_attr(all(test, not(target_arch = "wasm32")), ts(rename = "Storage"))]
#[derive(Debug, Clone, Serialize)]
pub struct StorageInfo {
    /// Donated, used, blocks.
    #[serde(flatten)]
    pub usage: Usage,
    /// The browser's storage quota for the site, when it says.
    pub browser_quota: Option<f64>,
    /// Whether the browser granted persistent storage.
    pub persisted: bool,
    /// Whether the person agreed to a donation in this browser (until then it donates 0).
    pub agreed: bool,
    /// The donation to propose: 10 % of the browser's quota, 64 MiB to 5 GiB.
    pub suggested: u64,
    /// Why the browser refused the last block write (its storage is full), until one succeeds.
    pub write_refused: Option<String>,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The block is not held here.
    NotHeld,
    /// The block is held, but the caller has no claim on it: nothing changed.
    NotClaimed,
    /// The caller's claim is gone; the block stays for its other owners.
    Released,
    /// The caller's claim was the last: the block is gone.
    Deleted,
}

/// Refuses a second claim of `size` that would exceed the owner's allowance (the bytes are
/// held already, so the donation is not touched).
fn check_claim(held: u64, allowance: u64, size: u64) -> Result<(), StoreError> {
    if held.saturating_add(size) > allowance {
        return Err(StoreError::OverAllowance { held, allowance });
    }
    Ok(())
}

/// A store's answer to a storage challenge ([`BlockStore::prove`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proving {
    /// The proof of the leaf the challenge names.
    Proof(crate::proof::Proof),
    /// The block is not held here.
    NotHeld,
    /// The bytes held do not lead to the block's address: a block stored before addresses
    /// were hash-tree roots (its address is the plain SHA-256), or bytes changed on disk.
    Unprovable,
}

impl From<Option<crate::proof::Proof>> for Proving {
    fn from(proof: Option<crate::proof::Proof>) -> Self {
        proof.map_or(Proving::Unprovable, Proving::Proof)
    }
}

/// Refuses a block of `size` that would overfill the donation or the owner's allowance.
fn check_room(
    used: u64,
    capacity: u64,
    held: u64,
    allowance: u64,
    size: u64,
) -> Result<(), StoreError> {
    if used.saturating_add(size) > capacity {
        return Err(StoreError::Full { used, capacity });
    }
    check_claim(held, allowance, size)
}

/// Adds `warrant` to a block's `warrants` unless its owner has one there already or the list is
/// full ([`crate::warrant::MAX_WARRANTS_PER_BLOCK`]).
fn keep_warrant(
    warrants: &mut Vec<crate::warrant::Warrant>,
    warrant: Option<&crate::warrant::Warrant>,
) {
    let Some(warrant) = warrant else { return };
    let owner = warrant.owner_hash();
    if warrants.len() < crate::warrant::MAX_WARRANTS_PER_BLOCK
        && !warrants.iter().any(|w| w.owner_hash() == owner)
    {
        warrants.push(warrant.clone());
    }
}

#[cfg(target_arch = "wasm32")]
mod indexeddb;
#[cfg(not(target_arch = "wasm32"))]
mod memory;

#[cfg(target_arch = "wasm32")]
pub use indexeddb::BlockStore;
#[cfg(not(target_arch = "wasm32"))]
pub use memory::BlockStore;

#[cfg(test)]
mod contract;
