//! What every [`BlockStore`] must do, as one test body run against both: the memory store
//! natively (`cargo test`) and the IndexedDB store in Chromium (`wasm-bindgen-test`), so the
//! two cannot drift apart. The browser test adds what only it has: a reload keeps everything.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::block::BlockId;

/// Capacity the contract sets.
const CAPACITY: u64 = 1000;

/// Runs the contract on `store`, which may already hold blocks (IndexedDB is shared by every
/// test of a profile): every check is relative to what it held before. Leaves the store as it
/// found it apart from [`CAPACITY`]; returns the one block it leaves behind for `owner` (for
/// the browser's reload check).
pub(crate) async fn holds_within_donation_and_allowance(
    store: &BlockStore,
    owner: OwnerHash,
) -> (BlockId, Vec<u8>) {
    store.set_capacity(CAPACITY).await.unwrap();
    let start = store.usage().await.unwrap();
    assert_eq!(start.capacity, CAPACITY);

    // A put counts once, however often it is repeated.
    let a = vec![1u8; 600];
    let id_a = BlockId::of(&a);
    let held = store.held_for(&owner).await.unwrap();
    store
        .put(id_a, a.clone(), owner, u64::MAX, None)
        .await
        .unwrap();
    store
        .put(id_a, a.clone(), owner, u64::MAX, None)
        .await
        .unwrap();
    assert_eq!(store.held_for(&owner).await.unwrap(), held + 600);
    assert_eq!(store.get(&id_a).await.unwrap(), Some(a.clone()));
    assert_eq!(store.claims(&id_a).await.unwrap(), vec![owner]);
    let usage = store.usage().await.unwrap();
    assert_eq!(
        (usage.used, usage.blocks),
        (start.used + 600, start.blocks + 1)
    );

    // Never more than the donation, nor more for one owner than their allowance; a refusal
    // changes nothing.
    let b = vec![2u8; 600];
    let full = store
        .put(BlockId::of(&b), b.clone(), owner, u64::MAX, None)
        .await;
    assert!(matches!(full, Err(StoreError::Full { .. })), "{full:?}");
    let small = vec![3u8; 10];
    let over = store
        .put(BlockId::of(&small), small.clone(), owner, held + 605, None)
        .await;
    assert!(
        matches!(over, Err(StoreError::OverAllowance { .. })),
        "{over:?}"
    );
    assert_eq!(store.get(&BlockId::of(&small)).await.unwrap(), None);
    assert_eq!(store.usage().await.unwrap(), usage);

    // A second owner of the same bytes: a claim of their own, no second copy. Their claim
    // counts against their allowance, even though the bytes are held already.
    let other = [owner[0].wrapping_add(1); 32];
    let other_held = store.held_for(&other).await.unwrap();
    let refused = store
        .put(id_a, a.clone(), other, other_held + 599, None)
        .await;
    assert!(
        matches!(refused, Err(StoreError::OverAllowance { .. })),
        "{refused:?}"
    );
    store
        .put(id_a, a.clone(), other, u64::MAX, None)
        .await
        .unwrap();
    assert_eq!(store.usage().await.unwrap(), usage);
    assert_eq!(store.held_for(&other).await.unwrap(), other_held + 600);

    // A delete drops only the caller's claim; the bytes go with the last one.
    let stranger = [owner[0].wrapping_add(2); 32];
    assert_eq!(
        store.release(&id_a, &stranger).await.unwrap(),
        Release::NotClaimed
    );
    assert_eq!(
        store.release(&id_a, &owner).await.unwrap(),
        Release::Released
    );
    assert_eq!(store.get(&id_a).await.unwrap(), Some(a.clone()));
    assert_eq!(store.held_for(&owner).await.unwrap(), held);
    assert_eq!(
        store.release(&id_a, &other).await.unwrap(),
        Release::Deleted
    );
    assert_eq!(
        store.release(&id_a, &other).await.unwrap(),
        Release::NotHeld
    );
    assert_eq!(store.get(&id_a).await.unwrap(), None);
    assert_eq!(store.usage().await.unwrap(), start);
    assert_eq!(store.held_for(&other).await.unwrap(), other_held);

    // Lowering the donation below what is held keeps the blocks and refuses new ones.
    store
        .put(id_a, a.clone(), owner, u64::MAX, None)
        .await
        .unwrap();
    store.set_capacity(start.used + 100).await.unwrap();
    assert_eq!(store.get(&id_a).await.unwrap(), Some(a.clone()));
    let refused = store
        .put(BlockId::of(&small), small, owner, u64::MAX, None)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Full { .. })),
        "{refused:?}"
    );
    store.set_capacity(CAPACITY).await.unwrap();
    (id_a, a)
}

/// A warrant as the store sees it: the store keeps and hands back warrants, it does not check
/// them (the holder does, before it stores).
fn warrant(owner: &str, copies: u8) -> crate::warrant::Warrant {
    crate::warrant::Warrant {
        owner: owner.as_bytes().to_vec(),
        signature: vec![copies; 4],
        copies,
        pledges: Vec::new(),
        signed_at: Some(1_800_000_000),
    }
}

/// Warrants are kept per owner beside the block and go with the owner's claim; a block can be
/// listed page by page and handed on (evicted with every claim).
pub(crate) async fn keeps_warrants_and_hands_blocks_on(store: &BlockStore) {
    store.set_capacity(CAPACITY).await.unwrap();
    let start = store.usage().await.unwrap();
    let (alice, bob) = (warrant("alice-key", 3), warrant("bob-key", 5));
    let bytes = vec![9u8; 300];
    let id = BlockId::of(&bytes);
    assert!(!store.has(&id).await.unwrap());
    let (a, b) = (alice.owner_hash(), bob.owner_hash());
    let (held_a, held_b) = (
        store.held_for(&a).await.unwrap(),
        store.held_for(&b).await.unwrap(),
    );
    store
        .put(id, bytes.clone(), a, u64::MAX, Some(&alice))
        .await
        .unwrap();
    store
        .put(id, bytes.clone(), a, u64::MAX, Some(&alice))
        .await
        .unwrap();
    store
        .put(id, bytes.clone(), b, u64::MAX, Some(&bob))
        .await
        .unwrap();
    assert!(store.has(&id).await.unwrap());
    assert_eq!(
        store.warrants(&id).await.unwrap(),
        vec![alice.clone(), bob.clone()]
    );
    assert_eq!(store.release(&id, &a).await.unwrap(), Release::Released);
    assert_eq!(store.warrants(&id).await.unwrap(), vec![bob.clone()]);

    // Listed in address order, a page at a time.
    let other = vec![8u8; 200];
    let other_id = BlockId::of(&other);
    store
        .put(other_id, other, a, u64::MAX, Some(&alice))
        .await
        .unwrap();
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store.ids_after(after, 1).await.unwrap();
        let Some(last) = page.last().copied() else {
            break;
        };
        assert_eq!(page.len(), 1);
        walked.push(last);
        after = Some(last);
    }
    assert!(walked.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(walked.contains(&id) && walked.contains(&other_id));

    // Evicting drops the bytes and every claim's count.
    assert!(store.evict(&id).await.unwrap());
    assert!(!store.evict(&id).await.unwrap());
    assert!(!store.has(&id).await.unwrap());
    assert_eq!(store.warrants(&id).await.unwrap(), vec![]);
    assert_eq!(store.held_for(&b).await.unwrap(), held_b);
    assert!(store.evict(&other_id).await.unwrap());
    assert_eq!(store.held_for(&a).await.unwrap(), held_a);
    assert_eq!(store.usage().await.unwrap(), start);
}

/// Answers storage challenges for any leaf of a block stored with its leaf hashes or without,
/// declines a block whose bytes do not lead to its address, and says so of one not held.
/// Leaves the store as it found it.
pub(crate) async fn proves_what_it_holds(store: &BlockStore) {
    use crate::proof::{leaf_hashes, prove, verify, LEAF};
    let start = store.usage().await.unwrap();
    store.set_capacity(start.used + (1 << 20)).await.unwrap();
    let owner = [43; 32];
    let hashed: Vec<u8> = (0..3 * LEAF + 7).map(|i| (i * 31 % 251) as u8).collect();
    let plain: Vec<u8> = (0..2 * LEAF).map(|i| (i * 17 % 253) as u8).collect();
    let (hashed_id, plain_id) = (BlockId::of(&hashed), BlockId::of(&plain));
    let leaves = leaf_hashes(&hashed);
    store
        .put_with_leaves(hashed_id, hashed.clone(), &leaves, owner, u64::MAX, None)
        .await
        .unwrap();
    store
        .put(plain_id, plain.clone(), owner, u64::MAX, None)
        .await
        .unwrap();
    for challenge in [0, 1, 2, 3, 1_000_003, u32::MAX] {
        for (id, bytes) in [(hashed_id, &hashed), (plain_id, &plain)] {
            let answer = store.prove(&id, challenge).await.unwrap();
            assert_eq!(answer, Proving::Proof(prove(bytes, challenge)));
            if let Proving::Proof(proof) = answer {
                verify(&id.0, challenge, &proof).unwrap();
            }
        }
    }
    // A block held under its plain SHA-256 (stored before addresses were tree roots).
    let legacy = crate::block::BlockId(crate::crypto::sha256(&plain));
    store
        .put(legacy, plain.clone(), owner, u64::MAX, None)
        .await
        .unwrap();
    assert_eq!(store.prove(&legacy, 5).await.unwrap(), Proving::Unprovable);
    let missing = BlockId::of(b"never stored");
    assert_eq!(store.prove(&missing, 5).await.unwrap(), Proving::NotHeld);
    for id in [hashed_id, plain_id, legacy] {
        assert!(store.evict(&id).await.unwrap());
    }
    store.set_capacity(start.capacity).await.unwrap();
    assert_eq!(store.usage().await.unwrap(), start);
}

#[cfg(not(target_arch = "wasm32"))]
#[tokio::test]
async fn the_memory_store_proves_what_it_holds() {
    proves_what_it_holds(&BlockStore::open(0).await.unwrap()).await;
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn the_indexeddb_store_proves_what_it_holds() {
    proves_what_it_holds(&BlockStore::open(CAPACITY).await.unwrap()).await;
}

#[cfg(not(target_arch = "wasm32"))]
#[tokio::test]
async fn the_memory_store_keeps_warrants_and_hands_blocks_on() {
    let store = BlockStore::open(0).await.unwrap();
    keeps_warrants_and_hands_blocks_on(&store).await;
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn the_indexeddb_store_keeps_warrants_and_hands_blocks_on() {
    let store = BlockStore::open(CAPACITY).await.unwrap();
    keeps_warrants_and_hands_blocks_on(&store).await;
}

#[cfg(not(target_arch = "wasm32"))]
#[tokio::test]
async fn the_memory_store_keeps_the_contract() {
    let store = BlockStore::open(0).await.unwrap();
    let (id, bytes) = holds_within_donation_and_allowance(&store, [7; 32]).await;
    assert_eq!(store.get(&id).await.unwrap(), Some(bytes));
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn the_indexeddb_store_keeps_the_contract_and_a_reload_keeps_everything() {
    let store = BlockStore::open(CAPACITY).await.unwrap();
    let (id, bytes) = holds_within_donation_and_allowance(&store, [7; 32]).await;
    let before = store.usage().await.unwrap();

    // A new handle on the same database (a reload) sees the same blocks, claims and donation.
    let reopened = BlockStore::open(5).await.unwrap();
    assert_eq!(reopened.get(&id).await.unwrap(), Some(bytes));
    assert_eq!(reopened.claims(&id).await.unwrap(), vec![[7; 32]]);
    assert_eq!(
        reopened.usage().await.unwrap(),
        before,
        "an existing donation is kept"
    );
    assert_eq!(
        reopened.release(&id, &[7; 32]).await.unwrap(),
        Release::Deleted
    );
}
