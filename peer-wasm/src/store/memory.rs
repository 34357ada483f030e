//! The block store in memory, for native peers (tests and simulations).

use std::{collections::HashMap, sync::Mutex};

use super::{OwnerHash, Proving, Release, StoreError, Usage};
use crate::{block::BlockId, warrant::Warrant};

/// Blocks in memory, for native peers.
#[derive(Debug, Default)]
pub struct BlockStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    capacity: u64,
    used: u64,
    /// Each block's bytes, the owners with a claim on it, and their warrants.
    blocks: HashMap<BlockId, Held>,
    /// Bytes claimed per owner.
    owners: HashMap<OwnerHash, u64>,
}

#[derive(Debug)]
struct Held {
    bytes: Vec<u8>,
    claims: Vec<OwnerHash>,
    warrants: Vec<Warrant>,
}

impl BlockStore {
    /// An empty store donating `capacity` bytes.
    pub async fn open(capacity: u64) -> Result<Self, StoreError> {
        Ok(Self {
            inner: Mutex::new(Inner {
                capacity,
                ..Default::default()
            }),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("store lock poisoned".into()))
    }

    /// Holds a block for `owner`, unless it would not fit in the donation or in the
    /// owner's `allowance`. Holding it again for the same owner is a no-op; for another
    /// owner it adds their claim (counted against their allowance, not the donation). The
    /// owner's `warrant`, when given, is kept beside the block for repair (one per owner, at
    /// most [`crate::warrant::MAX_WARRANTS_PER_BLOCK`]).
    pub async fn put(
        &self,
        id: BlockId,
        bytes: Vec<u8>,
        owner: OwnerHash,
        allowance: u64,
        warrant: Option<&Warrant>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let size = bytes.len() as u64;
        let held = inner.owners.get(&owner).copied().unwrap_or(0);
        match inner.blocks.get_mut(&id) {
            Some(block) if block.claims.contains(&owner) => {
                super::keep_warrant(&mut block.warrants, warrant);
                return Ok(());
            }
            Some(block) => {
                super::check_claim(held, allowance, size)?;
                block.claims.push(owner);
                super::keep_warrant(&mut block.warrants, warrant);
            }
            None => {
                super::check_room(inner.used, inner.capacity, held, allowance, size)?;
                inner.used += size;
                let mut warrants = Vec::new();
                super::keep_warrant(&mut warrants, warrant);
                inner.blocks.insert(
                    id,
                    Held {
                        bytes,
                        claims: vec![owner],
                        warrants,
                    },
                );
            }
        }
        *inner.owners.entry(owner).or_insert(0) += size;
        Ok(())
    }

    /// [`BlockStore::put`] of a block whose [`crate::proof::leaf_hashes`] the caller computed:
    /// in memory a challenge hashes the bytes at hand, so they are not kept.
    pub async fn put_with_leaves(
        &self,
        id: BlockId,
        bytes: Vec<u8>,
        _leaves: &[[u8; 32]],
        owner: OwnerHash,
        allowance: u64,
        warrant: Option<&Warrant>,
    ) -> Result<(), StoreError> {
        self.put(id, bytes, owner, allowance, warrant).await
    }

    /// The answer to a storage challenge for block `id` ([`crate::proof`]).
    pub async fn prove(&self, id: &BlockId, challenge: u32) -> Result<Proving, StoreError> {
        Ok(match self.get(id).await? {
            Some(bytes) => crate::proof::prove_at(&id.0, &bytes, challenge).into(),
            None => Proving::NotHeld,
        })
    }

    /// Bytes held for `owner`.
    pub async fn held_for(&self, owner: &OwnerHash) -> Result<u64, StoreError> {
        Ok(self.lock()?.owners.get(owner).copied().unwrap_or(0))
    }

    /// A held block's bytes.
    pub async fn get(&self, id: &BlockId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock()?.blocks.get(id).map(|held| held.bytes.clone()))
    }

    /// Whether a block is held.
    pub async fn has(&self, id: &BlockId) -> Result<bool, StoreError> {
        Ok(self.lock()?.blocks.contains_key(id))
    }

    /// The owners' warrants kept for a held block (empty if it is not held, or was stored
    /// before warrants existed).
    pub async fn warrants(&self, id: &BlockId) -> Result<Vec<Warrant>, StoreError> {
        Ok(self
            .lock()?
            .blocks
            .get(id)
            .map(|held| held.warrants.clone())
            .unwrap_or_default())
    }

    /// Up to `n` addresses of held blocks after `after` (from the first when `None`), in
    /// address order: a repairer walks its store with it, a page at a time.
    pub async fn ids_after(
        &self,
        after: Option<BlockId>,
        n: usize,
    ) -> Result<Vec<BlockId>, StoreError> {
        let inner = self.lock()?;
        let mut ids: Vec<BlockId> = inner
            .blocks
            .keys()
            .filter(|id| after.is_none_or(|after| **id > after))
            .copied()
            .collect();
        ids.sort();
        ids.truncate(n);
        Ok(ids)
    }

    /// Drops a block and every claim on it: its copies are kept by peers nearer its address
    /// (a holder hands a block on, [`crate::repair`]). Returns whether it was held.
    pub async fn evict(&self, id: &BlockId) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let Some(held) = inner.blocks.remove(id) else {
            return Ok(false);
        };
        let size = held.bytes.len() as u64;
        for owner in &held.claims {
            if let Some(count) = inner.owners.get_mut(owner) {
                *count = count.saturating_sub(size);
            }
        }
        inner.used = inner.used.saturating_sub(size);
        Ok(true)
    }

    /// The owners with a claim on a held block (empty if it is not held).
    pub async fn claims(&self, id: &BlockId) -> Result<Vec<OwnerHash>, StoreError> {
        Ok(self
            .lock()?
            .blocks
            .get(id)
            .map(|held| held.claims.clone())
            .unwrap_or_default())
    }

    /// Drops `owner`'s claim on a block, and the block with the last claim.
    pub async fn release(&self, id: &BlockId, owner: &OwnerHash) -> Result<Release, StoreError> {
        let mut inner = self.lock()?;
        let Some(block) = inner.blocks.get_mut(id) else {
            return Ok(Release::NotHeld);
        };
        let Some(at) = block.claims.iter().position(|c| c == owner) else {
            return Ok(Release::NotClaimed);
        };
        block.claims.swap_remove(at);
        block.warrants.retain(|w| w.owner_hash() != *owner);
        let size = block.bytes.len() as u64;
        let last = block.claims.is_empty();
        if let Some(held) = inner.owners.get_mut(owner) {
            *held = held.saturating_sub(size);
        }
        if !last {
            return Ok(Release::Released);
        }
        inner.blocks.remove(id);
        inner.used = inner.used.saturating_sub(size);
        Ok(Release::Deleted)
    }

    /// Changes the donated space. Blocks already held stay, even over the new limit.
    pub async fn set_capacity(&self, capacity: u64) -> Result<(), StoreError> {
        self.lock()?.capacity = capacity;
        Ok(())
    }

    /// What is donated and held.
    pub async fn usage(&self) -> Result<Usage, StoreError> {
        let inner = self.lock()?;
        Ok(Usage {
            capacity: inner.capacity,
            used: inner.used,
            blocks: inner.blocks.len() as u64,
        })
    }

    /// Up to `n` addresses of held blocks, picked at random.
    pub async fn sample(&self, n: usize) -> Result<Vec<BlockId>, StoreError> {
        let inner = self.lock()?;
        let mut ids: Vec<BlockId> = inner.blocks.keys().copied().collect();
        for i in (1..ids.len()).rev() {
            let j = u32::from_le_bytes(crate::crypto::random_bytes()) as usize % (i + 1);
            ids.swap(i, j);
        }
        ids.truncate(n);
        Ok(ids)
    }

    /// Flips a bit in every held block, as a dishonest holder would (for tests).
    /// Returns how many blocks were altered.
    #[doc(hidden)]
    pub fn tamper_all(&self) -> usize {
        let Ok(mut inner) = self.lock() else {
            return 0;
        };
        let mut altered = 0;
        for held in inner.blocks.values_mut() {
            if let Some(first) = held.bytes.first_mut() {
                *first ^= 1;
                altered += 1;
            }
        }
        altered
    }

    /// Flips the first byte of block `id`, as a holder whose copy rotted or who lies would (for
    /// tests). Returns whether it was held.
    #[doc(hidden)]
    pub fn tamper(&self, id: &BlockId) -> bool {
        let Ok(mut inner) = self.lock() else {
            return false;
        };
        match inner
            .blocks
            .get_mut(id)
            .and_then(|held| held.bytes.first_mut())
        {
            Some(first) => {
                *first ^= 1;
                true
            }
            None => false,
        }
    }

    /// Drops every held block while keeping the books as if they were held, as a holder
    /// that takes blocks and throws them away would (for tests). Returns how many.
    #[doc(hidden)]
    pub fn drop_all(&self) -> usize {
        let Ok(mut inner) = self.lock() else {
            return 0;
        };
        let dropped = inner.blocks.len();
        inner.blocks.clear();
        dropped
    }
}
