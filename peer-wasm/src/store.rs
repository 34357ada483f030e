//! What this peer holds for others: sealed blocks, up to the space its user donated.
//!
//! One type, [`BlockStore`], with the same methods on both targets: in the browser the blocks
//! live in IndexedDB (they survive reloads and restarts), natively in memory (tests and
//! simulations). The store never holds more than its capacity, nor more for one owner than the
//! allowance their pledges earn ([`crate::pledge`]).
//!
//! A block is held once however many owners stored it, with one claim per owner (the hash of
//! the owner's key). Each claim counts against its owner's allowance; a delete drops only the
//! caller's claim, and the bytes go when the last claim does. So storing someone else's sealed
//! bytes first and then deleting them takes nothing from the other owner.

use serde::Serialize;

/// Hash of an owner's RSA public key (SPKI DER), as the store records it.
pub type OwnerHash = [u8; 32];

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

#[cfg(target_arch = "wasm32")]
pub use browser::BlockStore;
#[cfg(not(target_arch = "wasm32"))]
pub use native::BlockStore;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::{collections::HashMap, sync::Mutex};

    use super::{OwnerHash, Release, StoreError, Usage};
    use crate::block::BlockId;

    /// Blocks in memory, for native peers.
    #[derive(Debug, Default)]
    pub struct BlockStore {
        inner: Mutex<Inner>,
    }

    #[derive(Debug, Default)]
    struct Inner {
        capacity: u64,
        used: u64,
        /// Each block's bytes and the owners with a claim on it.
        blocks: HashMap<BlockId, (Vec<u8>, Vec<OwnerHash>)>,
        /// Bytes claimed per owner.
        owners: HashMap<OwnerHash, u64>,
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
        /// owner it adds their claim (counted against their allowance, not the donation).
        pub async fn put(
            &self,
            id: BlockId,
            bytes: Vec<u8>,
            owner: OwnerHash,
            allowance: u64,
        ) -> Result<(), StoreError> {
            let mut inner = self.lock()?;
            let size = bytes.len() as u64;
            let held = inner.owners.get(&owner).copied().unwrap_or(0);
            match inner
                .blocks
                .get(&id)
                .map(|(_, claims)| claims.contains(&owner))
            {
                Some(true) => return Ok(()),
                Some(false) => {
                    super::check_claim(held, allowance, size)?;
                    if let Some((_, claims)) = inner.blocks.get_mut(&id) {
                        claims.push(owner);
                    }
                }
                None => {
                    super::check_room(inner.used, inner.capacity, held, allowance, size)?;
                    inner.used += size;
                    inner.blocks.insert(id, (bytes, vec![owner]));
                }
            }
            *inner.owners.entry(owner).or_insert(0) += size;
            Ok(())
        }

        /// Bytes held for `owner`.
        pub async fn held_for(&self, owner: &OwnerHash) -> Result<u64, StoreError> {
            Ok(self.lock()?.owners.get(owner).copied().unwrap_or(0))
        }

        /// A held block's bytes.
        pub async fn get(&self, id: &BlockId) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.lock()?.blocks.get(id).map(|(bytes, _)| bytes.clone()))
        }

        /// The owners with a claim on a held block (empty if it is not held).
        pub async fn claims(&self, id: &BlockId) -> Result<Vec<OwnerHash>, StoreError> {
            Ok(self
                .lock()?
                .blocks
                .get(id)
                .map(|(_, claims)| claims.clone())
                .unwrap_or_default())
        }

        /// Drops `owner`'s claim on a block, and the block with the last claim.
        pub async fn release(
            &self,
            id: &BlockId,
            owner: &OwnerHash,
        ) -> Result<Release, StoreError> {
            let mut inner = self.lock()?;
            let Some((bytes, claims)) = inner.blocks.get_mut(id) else {
                return Ok(Release::NotHeld);
            };
            let Some(at) = claims.iter().position(|c| c == owner) else {
                return Ok(Release::NotClaimed);
            };
            claims.swap_remove(at);
            let size = bytes.len() as u64;
            let last = claims.is_empty();
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
            for (bytes, _) in inner.blocks.values_mut() {
                if let Some(first) = bytes.first_mut() {
                    *first ^= 1;
                    altered += 1;
                }
            }
            altered
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
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use js_sys::{Object, Reflect, Uint8Array};
    use rexie::{Rexie, TransactionMode};
    use wasm_bindgen::{JsCast, JsValue};

    use super::{OwnerHash, Release, StoreError, Usage};
    use crate::block::BlockId;

    const BLOCKS: &str = "blocks";
    const META: &str = "meta";
    const USAGE_KEY: &str = "usage";

    fn backend(e: impl std::error::Error) -> StoreError {
        StoreError::Backend(crate::error_chain::error_chain(&e))
    }

    /// Blocks in this profile's IndexedDB: they survive reloads and browser restarts.
    pub struct BlockStore {
        db: Rexie,
        /// Why the browser refused the last block write, until one succeeds (a full disk or
        /// origin quota: the page tells the person, who can free space or donate less).
        write_refused: std::sync::Mutex<Option<String>>,
    }

    fn get_field(value: &JsValue, name: &str) -> Option<JsValue> {
        Reflect::get(value, &name.into())
            .ok()
            .filter(|v| !v.is_undefined())
    }

    fn read_usage(value: Option<JsValue>) -> Usage {
        let number =
            |v: &JsValue, k| get_field(v, k).and_then(|x| x.as_f64()).unwrap_or(0.0) as u64;
        value.map_or_else(Usage::default, |v| Usage {
            capacity: number(&v, "capacity"),
            used: number(&v, "used"),
            blocks: number(&v, "blocks"),
        })
    }

    fn usage_value(usage: &Usage) -> Result<JsValue, StoreError> {
        let object = Object::new();
        for (k, v) in [
            ("capacity", usage.capacity),
            ("used", usage.used),
            ("blocks", usage.blocks),
        ] {
            Reflect::set(&object, &k.into(), &JsValue::from_f64(v as f64))
                .map_err(|e| StoreError::Backend(format!("{e:?}")))?;
        }
        Ok(object.into())
    }

    async fn load_usage(meta: &rexie::Store) -> Result<Usage, StoreError> {
        Ok(read_usage(
            meta.get(USAGE_KEY.into()).await.map_err(backend)?,
        ))
    }

    async fn save_usage(meta: &rexie::Store, usage: &Usage) -> Result<(), StoreError> {
        meta.put(&usage_value(usage)?, Some(&USAGE_KEY.into()))
            .await
            .map(|_| ())
            .map_err(backend)
    }

    fn held_key(owner: &OwnerHash) -> JsValue {
        let hex: String = owner.iter().map(|b| format!("{b:02x}")).collect();
        JsValue::from_str(&format!("held/{hex}"))
    }

    /// Bytes held for one owner, kept beside the usage counters.
    async fn load_held(meta: &rexie::Store, owner: &OwnerHash) -> Result<u64, StoreError> {
        Ok(meta
            .get(held_key(owner))
            .await
            .map_err(backend)?
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0) as u64)
    }

    async fn save_held(
        meta: &rexie::Store,
        owner: &OwnerHash,
        held: u64,
    ) -> Result<(), StoreError> {
        meta.put(&JsValue::from_f64(held as f64), Some(&held_key(owner)))
            .await
            .map(|_| ())
            .map_err(backend)
    }

    fn bytes_field(value: &JsValue, name: &str) -> Option<Vec<u8>> {
        get_field(value, name)
            .and_then(|v| v.dyn_into::<Uint8Array>().ok())
            .map(|a| a.to_vec())
    }

    /// The owners with a claim on a stored block value: its `owners` array, or the single
    /// `owner` that blocks stored before claims existed carry.
    fn claims_of(value: &JsValue) -> Vec<OwnerHash> {
        let listed = get_field(value, "owners")
            .and_then(|v| v.dyn_into::<js_sys::Array>().ok())
            .map(|owners| {
                owners
                    .iter()
                    .filter_map(|o| o.dyn_into::<Uint8Array>().ok())
                    .filter_map(|o| o.to_vec().try_into().ok())
                    .collect()
            });
        listed.unwrap_or_else(|| {
            bytes_field(value, "owner")
                .and_then(|o| o.try_into().ok())
                .into_iter()
                .collect()
        })
    }

    fn set_claims(value: &JsValue, claims: &[OwnerHash]) -> Result<(), StoreError> {
        let owners: js_sys::Array = claims
            .iter()
            .map(|c| JsValue::from(Uint8Array::from(&c[..])))
            .collect();
        Reflect::set(value, &"owners".into(), &owners)
            .map_err(|e| StoreError::Backend(format!("{e:?}")))?;
        Reflect::delete_property(value.unchecked_ref(), &"owner".into())
            .map_err(|e| StoreError::Backend(format!("{e:?}")))?;
        Ok(())
    }

    impl BlockStore {
        /// One read-write transaction over the blocks and the usage counters, so both change
        /// together or not at all.
        fn write_blocks_and_meta(
            &self,
        ) -> Result<(rexie::Transaction, rexie::Store, rexie::Store), StoreError> {
            let tx = self
                .db
                .transaction(&[BLOCKS, META], TransactionMode::ReadWrite)
                .map_err(backend)?;
            let blocks = tx.store(BLOCKS).map_err(backend)?;
            let meta = tx.store(META).map_err(backend)?;
            Ok((tx, blocks, meta))
        }

        /// Opens the profile's block store; `capacity` applies only when none was set before.
        pub async fn open(capacity: u64) -> Result<Self, StoreError> {
            let db = crate::identity_store::open().await.map_err(backend)?;
            let store = Self {
                db,
                write_refused: Default::default(),
            };
            if store.usage().await?.capacity == 0 {
                store.set_capacity(capacity).await?;
            }
            Ok(store)
        }

        /// Holds a block for `owner`, unless it would not fit in the donation or in the
        /// owner's `allowance`. Holding it again for the same owner is a no-op; for another
        /// owner it adds their claim (counted against their allowance, not the donation).
        pub async fn put(
            &self,
            id: BlockId,
            bytes: Vec<u8>,
            owner: OwnerHash,
            allowance: u64,
        ) -> Result<(), StoreError> {
            let result = self.write_block(id, bytes, owner, allowance).await;
            let refused = match &result {
                Ok(()) => Some(None),
                Err(StoreError::Backend(why)) => Some(Some(why.clone())),
                Err(_) => None, // full donation or allowance: the store said no, not the browser
            };
            if let (Some(refused), Ok(mut slot)) = (refused, self.write_refused.lock()) {
                *slot = refused;
            }
            result
        }

        /// Why the browser refused the last block write, if the writes since have not
        /// succeeded.
        pub fn write_refused(&self) -> Option<String> {
            self.write_refused.lock().ok().and_then(|slot| slot.clone())
        }

        async fn write_block(
            &self,
            id: BlockId,
            bytes: Vec<u8>,
            owner: OwnerHash,
            allowance: u64,
        ) -> Result<(), StoreError> {
            let (tx, blocks, meta) = self.write_blocks_and_meta()?;
            let key = JsValue::from_str(&id.to_hex());
            let existing = blocks
                .get(key.clone())
                .await
                .map_err(backend)?
                .filter(|v| !v.is_undefined());
            let held = load_held(&meta, &owner).await?;
            let size = bytes.len() as u64;
            match existing {
                Some(value) => {
                    let mut claims = claims_of(&value);
                    if claims.contains(&owner) {
                        return tx.done().await.map(|_| ()).map_err(backend);
                    }
                    if let Err(refused) = super::check_claim(held, allowance, size) {
                        let _ = tx.abort().await;
                        return Err(refused);
                    }
                    claims.push(owner);
                    set_claims(&value, &claims)?;
                    blocks.put(&value, Some(&key)).await.map_err(backend)?;
                }
                None => {
                    let mut usage = load_usage(&meta).await?;
                    if let Err(refused) =
                        super::check_room(usage.used, usage.capacity, held, allowance, size)
                    {
                        let _ = tx.abort().await;
                        return Err(refused);
                    }
                    let value = Object::new();
                    Reflect::set(&value, &"bytes".into(), &Uint8Array::from(bytes.as_slice()))
                        .map_err(|e| StoreError::Backend(format!("{e:?}")))?;
                    set_claims(&value, &[owner])?;
                    blocks.add(&value, Some(&key)).await.map_err(backend)?;
                    usage.used += size;
                    usage.blocks += 1;
                    save_usage(&meta, &usage).await?;
                }
            }
            save_held(&meta, &owner, held + size).await?;
            tx.done().await.map(|_| ()).map_err(backend)
        }

        /// Bytes held for `owner`.
        pub async fn held_for(&self, owner: &OwnerHash) -> Result<u64, StoreError> {
            let tx = self
                .db
                .transaction(&[META], TransactionMode::ReadOnly)
                .map_err(backend)?;
            let held = load_held(&tx.store(META).map_err(backend)?, owner).await?;
            tx.done().await.map_err(backend)?;
            Ok(held)
        }

        async fn read(&self, id: &BlockId) -> Result<Option<JsValue>, StoreError> {
            let tx = self
                .db
                .transaction(&[BLOCKS], TransactionMode::ReadOnly)
                .map_err(backend)?;
            let value = tx
                .store(BLOCKS)
                .map_err(backend)?
                .get(id.to_hex().into())
                .await
                .map_err(backend)?;
            tx.done().await.map_err(backend)?;
            Ok(value.filter(|v| !v.is_undefined()))
        }

        /// A held block's bytes.
        pub async fn get(&self, id: &BlockId) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.read(id).await?.and_then(|v| bytes_field(&v, "bytes")))
        }

        /// The owners with a claim on a held block (empty if it is not held).
        pub async fn claims(&self, id: &BlockId) -> Result<Vec<OwnerHash>, StoreError> {
            Ok(self
                .read(id)
                .await?
                .map(|v| claims_of(&v))
                .unwrap_or_default())
        }

        /// Drops `owner`'s claim on a block, and the block with the last claim.
        pub async fn release(
            &self,
            id: &BlockId,
            owner: &OwnerHash,
        ) -> Result<Release, StoreError> {
            let (tx, blocks, meta) = self.write_blocks_and_meta()?;
            let key = JsValue::from_str(&id.to_hex());
            let held = blocks
                .get(key.clone())
                .await
                .map_err(backend)?
                .filter(|v| !v.is_undefined());
            let Some(value) = held else {
                tx.done().await.map_err(backend)?;
                return Ok(Release::NotHeld);
            };
            let mut claims = claims_of(&value);
            let Some(at) = claims.iter().position(|c| c == owner) else {
                tx.done().await.map_err(backend)?;
                return Ok(Release::NotClaimed);
            };
            claims.swap_remove(at);
            let size = bytes_field(&value, "bytes").map_or(0, |b| b.len() as u64);
            let before = load_held(&meta, owner).await?;
            save_held(&meta, owner, before.saturating_sub(size)).await?;
            let release = if claims.is_empty() {
                blocks.delete(key).await.map_err(backend)?;
                let mut usage = load_usage(&meta).await?;
                usage.used = usage.used.saturating_sub(size);
                usage.blocks = usage.blocks.saturating_sub(1);
                save_usage(&meta, &usage).await?;
                Release::Deleted
            } else {
                set_claims(&value, &claims)?;
                blocks.put(&value, Some(&key)).await.map_err(backend)?;
                Release::Released
            };
            tx.done().await.map_err(backend)?;
            Ok(release)
        }

        /// Up to `n` addresses of held blocks: the ones after a random address (wrapping
        /// round to the first), so a sample is a random run of the store's key order.
        pub async fn sample(&self, n: usize) -> Result<Vec<BlockId>, StoreError> {
            let tx = self
                .db
                .transaction(&[BLOCKS], TransactionMode::ReadOnly)
                .map_err(backend)?;
            let blocks = tx.store(BLOCKS).map_err(backend)?;
            let limit = u32::try_from(n).unwrap_or(u32::MAX);
            let start = BlockId(crate::crypto::random_bytes()).to_hex();
            let from = rexie::KeyRange::lower_bound(&start.into(), Some(false)).map_err(backend)?;
            let mut keys = blocks
                .get_all_keys(Some(from), Some(limit))
                .await
                .map_err(backend)?;
            if keys.len() < n {
                let rest = u32::try_from(n - keys.len()).unwrap_or(u32::MAX);
                keys.extend(
                    blocks
                        .get_all_keys(None, Some(rest))
                        .await
                        .map_err(backend)?,
                );
            }
            tx.done().await.map_err(backend)?;
            let mut ids: Vec<BlockId> = keys
                .iter()
                .filter_map(|k| k.as_string().and_then(|hex| BlockId::from_hex(&hex)))
                .collect();
            ids.sort();
            ids.dedup();
            Ok(ids)
        }

        /// Changes the donated space. Blocks already held stay, even over the new limit.
        pub async fn set_capacity(&self, capacity: u64) -> Result<(), StoreError> {
            let tx = self
                .db
                .transaction(&[META], TransactionMode::ReadWrite)
                .map_err(backend)?;
            let meta = tx.store(META).map_err(backend)?;
            let mut usage = load_usage(&meta).await?;
            usage.capacity = capacity;
            save_usage(&meta, &usage).await?;
            tx.done().await.map(|_| ()).map_err(backend)
        }

        /// What is donated and held.
        pub async fn usage(&self) -> Result<Usage, StoreError> {
            let tx = self
                .db
                .transaction(&[META], TransactionMode::ReadOnly)
                .map_err(backend)?;
            let value = tx
                .store(META)
                .map_err(backend)?
                .get(USAGE_KEY.into())
                .await
                .map_err(backend)?;
            tx.done().await.map_err(backend)?;
            Ok(read_usage(value.filter(|v| !v.is_undefined())))
        }
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests {
    #![allow(clippy::unwrap_used)]

    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;
    use crate::block::BlockId;

    #[wasm_bindgen_test]
    async fn blocks_persist_and_the_donation_is_never_exceeded() {
        let store = BlockStore::open(1000).await.unwrap();
        store.set_capacity(1000).await.unwrap();
        let start = store.usage().await.unwrap();
        let a = vec![1u8; 600];
        let id_a = BlockId::of(&a);
        let owner = [7; 32];
        let held = store.held_for(&owner).await.unwrap();
        store.put(id_a, a.clone(), owner, u64::MAX).await.unwrap();
        store.put(id_a, a.clone(), owner, u64::MAX).await.unwrap(); // again: no double count
        assert_eq!(store.held_for(&owner).await.unwrap(), held + 600);
        let b = vec![2u8; 600];
        let full = store.put(BlockId::of(&b), b.clone(), owner, u64::MAX).await;
        assert!(matches!(full, Err(StoreError::Full { .. })), "{full:?}");
        let small = vec![3u8; 10];
        let over = store
            .put(BlockId::of(&small), small, owner, held + 605)
            .await;
        assert!(
            matches!(over, Err(StoreError::OverAllowance { .. })),
            "{over:?}"
        );

        // A new handle on the same database (a reload) sees the same blocks.
        let reopened = BlockStore::open(5).await.unwrap();
        assert_eq!(reopened.get(&id_a).await.unwrap(), Some(a.clone()));
        assert_eq!(reopened.claims(&id_a).await.unwrap(), vec![[7; 32]]);
        let usage = reopened.usage().await.unwrap();
        assert_eq!(usage.capacity, 1000, "an existing donation is kept");
        assert_eq!(usage.used, start.used + 600);

        // A second owner of the same bytes: a claim of their own, no second copy on disk.
        let other = [8; 32];
        let other_held = reopened.held_for(&other).await.unwrap();
        reopened
            .put(id_a, a.clone(), other, u64::MAX)
            .await
            .unwrap();
        assert_eq!(reopened.usage().await.unwrap().used, start.used + 600);
        assert_eq!(reopened.held_for(&other).await.unwrap(), other_held + 600);
        assert_eq!(
            reopened.release(&id_a, &[9; 32]).await.unwrap(),
            Release::NotClaimed
        );
        assert_eq!(
            reopened.release(&id_a, &owner).await.unwrap(),
            Release::Released
        );
        assert_eq!(reopened.get(&id_a).await.unwrap(), Some(a));
        assert_eq!(reopened.held_for(&owner).await.unwrap(), held);
        assert_eq!(
            reopened.release(&id_a, &other).await.unwrap(),
            Release::Deleted
        );
        assert_eq!(
            reopened.release(&id_a, &other).await.unwrap(),
            Release::NotHeld
        );
        assert_eq!(reopened.usage().await.unwrap().used, start.used);
        assert_eq!(reopened.held_for(&other).await.unwrap(), other_held);
    }
}
