//! The block store in the profile's IndexedDB: object stores `blocks` and `meta`, every put
//! and release one transaction that keeps the usage and the per-owner counts in step.

use js_sys::{Object, Reflect, Uint8Array};
use rexie::{Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

use super::{OwnerHash, Proving, Release, StoreError, Usage};
use crate::{block::BlockId, warrant::Warrant};

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
    let number = |v: &JsValue, k| get_field(v, k).and_then(|x| x.as_f64()).unwrap_or(0.0) as u64;
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
    JsValue::from_str(&format!("held/{}", hex::encode(owner)))
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

async fn save_held(meta: &rexie::Store, owner: &OwnerHash, held: u64) -> Result<(), StoreError> {
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

/// A stored block's bytes as the browser keeps them: a `Blob` for blocks stored since session
/// 30, so that reading a record for its claims or warrants (a receipt check, a release, a
/// sweep) leaves the 1 MiB in its blob file; a `Uint8Array` in blocks stored before, which
/// the browser reads whole with the record (docs/PERFORMANCE.md).
fn bytes_value(bytes: &[u8]) -> Result<JsValue, StoreError> {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    web_sys::Blob::new_with_u8_array_sequence(&parts)
        .map(Into::into)
        .map_err(|e| StoreError::Backend(format!("{e:?}")))
}

/// The length of a stored record's bytes, without reading them.
fn bytes_len(value: &JsValue) -> u64 {
    let Some(field) = get_field(value, "bytes") else {
        return 0;
    };
    match field.dyn_ref::<web_sys::Blob>() {
        Some(blob) => blob.size() as u64,
        None => field
            .dyn_ref::<Uint8Array>()
            .map_or(0, |a| a.byte_length() as u64),
    }
}

/// A stored record's bytes, read from its blob when they are one.
async fn read_bytes(value: &JsValue) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(field) = get_field(value, "bytes") else {
        return Ok(None);
    };
    if let Some(blob) = field.dyn_ref::<web_sys::Blob>() {
        let buffer = wasm_bindgen_futures::JsFuture::from(blob.array_buffer())
            .await
            .map_err(|e| StoreError::Backend(format!("reading a stored block: {e:?}")))?;
        return Ok(Some(Uint8Array::new(&buffer).to_vec()));
    }
    Ok(field.dyn_into::<Uint8Array>().ok().map(|a| a.to_vec()))
}

/// The proof of the leaf `challenge` names from a record's kept leaf hashes and that one leaf
/// of its blob (`Blob.slice`: 4 KiB read, not 1 MiB); `None` if the record has no leaf hashes,
/// its bytes are not a blob, or the leaf or hashes do not lead to `id`.
async fn prove_from_leaves(
    id: &BlockId,
    value: &JsValue,
    challenge: u32,
) -> Result<Option<crate::proof::Proof>, StoreError> {
    use crate::proof::{leaf_for, LEAF};
    let (Some(flat), Some(field)) = (bytes_field(value, "leaves"), get_field(value, "bytes"))
    else {
        return Ok(None);
    };
    let Some(blob) = field.dyn_ref::<web_sys::Blob>() else {
        return Ok(None);
    };
    let leaves: Vec<[u8; 32]> = flat
        .chunks_exact(32)
        .filter_map(|hash| hash.try_into().ok())
        .collect();
    let size = blob.size() as u64;
    let start = u64::from(leaf_for(challenge, size)) * LEAF as u64;
    let end = (start + LEAF as u64).min(size);
    let read_failed = |e| StoreError::Backend(format!("reading a stored leaf: {e:?}"));
    let leaf = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(read_failed)?;
    let buffer = wasm_bindgen_futures::JsFuture::from(leaf.array_buffer())
        .await
        .map_err(read_failed)?;
    let data = Uint8Array::new(&buffer).to_vec();
    Ok(crate::proof::prove_from_leaves(
        &id.0, size, &leaves, challenge, data,
    ))
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

/// The owners' warrants kept in a stored block value (its `warrants` array of CBOR bytes).
fn warrants_of(value: &JsValue) -> Vec<Warrant> {
    get_field(value, "warrants")
        .and_then(|v| v.dyn_into::<js_sys::Array>().ok())
        .map(|list| {
            list.iter()
                .filter_map(|w| w.dyn_into::<Uint8Array>().ok())
                .filter_map(|w| Warrant::from_bytes(&w.to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

fn set_warrants(value: &JsValue, warrants: &[Warrant]) -> Result<(), StoreError> {
    let list: js_sys::Array = warrants
        .iter()
        .map(|w| JsValue::from(Uint8Array::from(w.to_bytes().as_slice())))
        .collect();
    Reflect::set(value, &"warrants".into(), &list)
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
        let written = self
            .write_block(id, bytes, None, owner, allowance, warrant)
            .await;
        self.note_refusal(written)
    }

    /// [`BlockStore::put`] of a block whose [`crate::proof::leaf_hashes`] the caller computed
    /// (a holder does, to find the block's address): a new record keeps them beside the bytes,
    /// so that a storage challenge reads one 4 KiB leaf of the block's blob and hashes its path
    /// ([`BlockStore::prove`]), not the whole 1 MiB.
    pub async fn put_with_leaves(
        &self,
        id: BlockId,
        bytes: Vec<u8>,
        leaves: &[[u8; 32]],
        owner: OwnerHash,
        allowance: u64,
        warrant: Option<&Warrant>,
    ) -> Result<(), StoreError> {
        let written = self
            .write_block(id, bytes, Some(leaves), owner, allowance, warrant)
            .await;
        self.note_refusal(written)
    }

    /// Keeps why the browser refused a block write (cleared by one that succeeds).
    fn note_refusal(&self, result: Result<(), StoreError>) -> Result<(), StoreError> {
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
        leaves: Option<&[[u8; 32]]>,
        owner: OwnerHash,
        allowance: u64,
        warrant: Option<&Warrant>,
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
                let mut warrants = warrants_of(&value);
                let known = warrants.len();
                super::keep_warrant(&mut warrants, warrant);
                if claims.contains(&owner) {
                    if warrants.len() > known {
                        set_warrants(&value, &warrants)?;
                        blocks.put(&value, Some(&key)).await.map_err(backend)?;
                    }
                    return tx.done().await.map(|_| ()).map_err(backend);
                }
                if let Err(refused) = super::check_claim(held, allowance, size) {
                    let _ = tx.abort().await;
                    return Err(refused);
                }
                claims.push(owner);
                set_claims(&value, &claims)?;
                set_warrants(&value, &warrants)?;
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
                Reflect::set(&value, &"bytes".into(), &bytes_value(&bytes)?)
                    .map_err(|e| StoreError::Backend(format!("{e:?}")))?;
                if let Some(leaves) = leaves {
                    let flat = Uint8Array::from(leaves.as_flattened());
                    Reflect::set(&value, &"leaves".into(), &flat)
                        .map_err(|e| StoreError::Backend(format!("{e:?}")))?;
                }
                set_claims(&value, &[owner])?;
                let mut warrants = Vec::new();
                super::keep_warrant(&mut warrants, warrant);
                set_warrants(&value, &warrants)?;
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
        match self.read(id).await? {
            Some(value) => read_bytes(&value).await,
            None => Ok(None),
        }
    }

    /// The answer to a storage challenge for block `id` ([`crate::proof`]): from the one leaf
    /// the challenge names and the leaf hashes kept beside the block when it has them
    /// ([`BlockStore::put_with_leaves`]), else from the whole block.
    pub async fn prove(&self, id: &BlockId, challenge: u32) -> Result<Proving, StoreError> {
        let Some(value) = self.read(id).await? else {
            return Ok(Proving::NotHeld);
        };
        if let Some(proof) = prove_from_leaves(id, &value, challenge).await? {
            return Ok(Proving::Proof(proof));
        }
        // Blocks stored without their leaf hashes (before session 31, or inline, or by a
        // claim), and a leaf that no longer matches its hash: the whole block decides.
        Ok(match read_bytes(&value).await? {
            Some(bytes) => crate::proof::prove_at(&id.0, &bytes, challenge).into(),
            None => Proving::NotHeld,
        })
    }

    /// Whether a block is held (a key count: the bytes are not read).
    pub async fn has(&self, id: &BlockId) -> Result<bool, StoreError> {
        let tx = self
            .db
            .transaction(&[BLOCKS], TransactionMode::ReadOnly)
            .map_err(backend)?;
        let only = rexie::KeyRange::only(&id.to_hex().into()).map_err(backend)?;
        let count = tx
            .store(BLOCKS)
            .map_err(backend)?
            .count(Some(only))
            .await
            .map_err(backend)?;
        tx.done().await.map_err(backend)?;
        Ok(count > 0)
    }

    /// The owners' warrants kept for a held block (empty if it is not held, or was stored
    /// before warrants existed).
    pub async fn warrants(&self, id: &BlockId) -> Result<Vec<Warrant>, StoreError> {
        Ok(self
            .read(id)
            .await?
            .map(|v| warrants_of(&v))
            .unwrap_or_default())
    }

    /// Up to `n` addresses of held blocks after `after` (from the first when `None`), in
    /// address order: a repairer walks its store with it, a page at a time.
    pub async fn ids_after(
        &self,
        after: Option<BlockId>,
        n: usize,
    ) -> Result<Vec<BlockId>, StoreError> {
        let tx = self
            .db
            .transaction(&[BLOCKS], TransactionMode::ReadOnly)
            .map_err(backend)?;
        let range = match after {
            Some(after) => Some(
                rexie::KeyRange::lower_bound(&after.to_hex().into(), Some(true))
                    .map_err(backend)?,
            ),
            None => None,
        };
        let limit = u32::try_from(n).unwrap_or(u32::MAX);
        let keys = tx
            .store(BLOCKS)
            .map_err(backend)?
            .get_all_keys(range, Some(limit))
            .await
            .map_err(backend)?;
        tx.done().await.map_err(backend)?;
        Ok(keys
            .iter()
            .filter_map(|k| k.as_string().and_then(|hex| BlockId::from_hex(&hex)))
            .collect())
    }

    /// Drops a block and every claim on it: its copies are kept by peers nearer its address
    /// (a holder hands a block on, [`crate::repair`]). Returns whether it was held.
    pub async fn evict(&self, id: &BlockId) -> Result<bool, StoreError> {
        let (tx, blocks, meta) = self.write_blocks_and_meta()?;
        let key = JsValue::from_str(&id.to_hex());
        let Some(value) = blocks
            .get(key.clone())
            .await
            .map_err(backend)?
            .filter(|v| !v.is_undefined())
        else {
            tx.done().await.map_err(backend)?;
            return Ok(false);
        };
        let size = bytes_len(&value);
        for owner in claims_of(&value) {
            let before = load_held(&meta, &owner).await?;
            save_held(&meta, &owner, before.saturating_sub(size)).await?;
        }
        blocks.delete(key).await.map_err(backend)?;
        let mut usage = load_usage(&meta).await?;
        usage.used = usage.used.saturating_sub(size);
        usage.blocks = usage.blocks.saturating_sub(1);
        save_usage(&meta, &usage).await?;
        tx.done().await.map_err(backend)?;
        Ok(true)
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
    pub async fn release(&self, id: &BlockId, owner: &OwnerHash) -> Result<Release, StoreError> {
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
        let size = bytes_len(&value);
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
            let mut warrants = warrants_of(&value);
            warrants.retain(|w| w.owner_hash() != *owner);
            set_warrants(&value, &warrants)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A block stored with its leaf hashes answers a challenge from the named leaf alone: a
    /// leaf elsewhere in its blob changed on disk does not stop a proof of this one (the whole
    /// block was not read), while the changed leaf itself is declined, not proved wrong.
    #[wasm_bindgen_test::wasm_bindgen_test]
    async fn a_challenge_reads_one_leaf_of_a_block_stored_with_its_leaf_hashes() {
        use crate::proof::{leaf_for, leaf_hashes, prove, LEAF};
        let store = BlockStore::open(1 << 30).await.unwrap();
        let start = store.usage().await.unwrap();
        store.set_capacity(start.used + (1 << 20)).await.unwrap();
        let block: Vec<u8> = (0..4 * LEAF).map(|i| (i % 249) as u8).collect();
        let id = BlockId::of(&block);
        let mut on_disk = block.clone();
        on_disk[2 * LEAF + 5] ^= 1; // leaf 2 changed after the hashes were taken
        store
            .put_with_leaves(id, on_disk, &leaf_hashes(&block), [44; 32], u64::MAX, None)
            .await
            .unwrap();
        let size = block.len() as u64;
        let (intact, changed) = (1, 2);
        assert_eq!((leaf_for(intact, size), leaf_for(changed, size)), (1, 2));
        assert_eq!(
            store.prove(&id, intact).await.unwrap(),
            Proving::Proof(prove(&block, intact))
        );
        assert_eq!(
            store.prove(&id, changed).await.unwrap(),
            Proving::Unprovable
        );
        assert!(store.evict(&id).await.unwrap());
        store.set_capacity(start.capacity).await.unwrap();
    }

    /// A block stored before blocks were kept as blobs (its bytes a `Uint8Array` inside the
    /// record) is read, counted and released exactly as one stored since (its bytes a
    /// `Blob` beside it): profiles keep the blocks they held.
    #[wasm_bindgen_test::wasm_bindgen_test]
    async fn blocks_stored_inline_and_as_blobs_are_read_counted_and_released_alike() {
        let store = BlockStore::open(1 << 30).await.unwrap();
        let owner = [41; 32];
        let start = store.usage().await.unwrap();
        // The tests share one database: room for these two, whatever the others set.
        store.set_capacity(start.used + (1 << 30)).await.unwrap();
        let (inline, blob) = (vec![5u8; 300_000], vec![6u8; 400_000]);
        let (inline_id, blob_id) = (BlockId::of(&inline), BlockId::of(&blob));
        // Written as the store wrote every block before: the bytes inside the record.
        let (tx, blocks, meta) = store.write_blocks_and_meta().unwrap();
        let value = Object::new();
        Reflect::set(
            &value,
            &"bytes".into(),
            &Uint8Array::from(inline.as_slice()),
        )
        .unwrap();
        set_claims(&value, &[owner]).unwrap();
        set_warrants(&value, &[]).unwrap();
        let key = JsValue::from_str(&inline_id.to_hex());
        blocks.add(&value, Some(&key)).await.unwrap();
        let mut usage = load_usage(&meta).await.unwrap();
        usage.used += inline.len() as u64;
        usage.blocks += 1;
        save_usage(&meta, &usage).await.unwrap();
        save_held(&meta, &owner, inline.len() as u64).await.unwrap();
        tx.done().await.unwrap();

        store
            .put(blob_id, blob.clone(), owner, 1 << 30, None)
            .await
            .unwrap();
        let record = store.read(&blob_id).await.unwrap().unwrap();
        let bytes = get_field(&record, "bytes").unwrap();
        assert!(
            bytes.is_instance_of::<web_sys::Blob>(),
            "a new block's bytes are a blob"
        );

        assert_eq!(store.get(&inline_id).await.unwrap(), Some(inline.clone()));
        assert_eq!(store.get(&blob_id).await.unwrap(), Some(blob.clone()));
        assert_eq!(store.claims(&inline_id).await.unwrap(), vec![owner]);
        assert_eq!(store.claims(&blob_id).await.unwrap(), vec![owner]);
        assert_eq!(store.held_for(&owner).await.unwrap(), 700_000);
        assert_eq!(store.usage().await.unwrap().used, start.used + 700_000);

        // Another owner's claim re-writes the blob block's record: its bytes stay whole.
        let other = [42; 32];
        store
            .put(blob_id, blob.clone(), other, 1 << 30, None)
            .await
            .unwrap();
        assert_eq!(store.get(&blob_id).await.unwrap(), Some(blob.clone()));
        assert_eq!(store.held_for(&other).await.unwrap(), 400_000);

        assert_eq!(
            store.release(&inline_id, &owner).await.unwrap(),
            Release::Deleted
        );
        assert_eq!(
            store.release(&blob_id, &owner).await.unwrap(),
            Release::Released
        );
        assert_eq!(store.held_for(&owner).await.unwrap(), 0);
        assert!(store.evict(&blob_id).await.unwrap());
        assert_eq!(store.held_for(&other).await.unwrap(), 0);
        store.set_capacity(start.capacity).await.unwrap();
        assert_eq!(store.usage().await.unwrap(), start);
    }
}
