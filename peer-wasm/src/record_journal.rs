//! The DHT records this tab holds, kept in IndexedDB so that a reload or a browser restart
//! does not lose them ([`crate::net::journaled_store`] journals every change; this writes the
//! journal and reads it back at start). One object-store entry per record: key, the hex of
//! the DHT key; value, `{ value: Uint8Array, expires: ms since the epoch }`.
//!
//! Storage that fails (private browsing, a full disk) costs only this: the records are held in
//! memory as before, and the page keeps working.

use futures::{channel::mpsc, StreamExt};
use js_sys::{Object, Reflect, Uint8Array};
use rexie::{Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

use crate::{
    identity_store::RECORDS,
    net::journaled_store::{Change, PersistedRecord},
};

/// The records kept before this start (unreadable entries are skipped).
pub(crate) async fn load(db: &Rexie) -> Result<Vec<PersistedRecord>, rexie::Error> {
    let tx = db.transaction(&[RECORDS], TransactionMode::ReadOnly)?;
    let store = tx.store(RECORDS)?;
    let entries = store.scan(None, None, None, None).await?;
    let records = entries
        .into_iter()
        .filter_map(|(key, value)| {
            let key = hex::decode(key.as_string()?).ok()?;
            let bytes = Reflect::get(&value, &"value".into()).ok()?;
            let expires = Reflect::get(&value, &"expires".into()).ok()?.as_f64()?;
            Some(PersistedRecord {
                key,
                value: bytes.dyn_into::<Uint8Array>().ok()?.to_vec(),
                expires_ms: expires as u64,
            })
        })
        .collect();
    tx.done().await?;
    Ok(records)
}

async fn write(db: &Rexie, change: &Change) -> Result<(), rexie::Error> {
    let tx = db.transaction(&[RECORDS], TransactionMode::ReadWrite)?;
    let store = tx.store(RECORDS)?;
    match change {
        Change::Put(record) => {
            let value = Object::new();
            let bytes = Uint8Array::from(record.value.as_slice());
            // Setting a property on a fresh object does not fail.
            let _ = Reflect::set(&value, &"value".into(), &bytes);
            let _ = Reflect::set(
                &value,
                &"expires".into(),
                &JsValue::from_f64(record.expires_ms as f64),
            );
            store
                .put(&value, Some(&JsValue::from_str(&hex::encode(&record.key))))
                .await?;
        }
        Change::Remove(key) => store.delete(JsValue::from_str(&hex::encode(key))).await?,
    }
    tx.done().await.map(|_| ())
}

/// Writes every change until the network stops; a write that fails is reported and the next
/// one tried (the record is still in memory and at the other peers closest to its key).
pub(crate) async fn keep(db: Rexie, mut changes: mpsc::UnboundedReceiver<Change>) {
    let mut failures = 0u32;
    while let Some(change) = changes.next().await {
        if let Err(e) = write(&db, &change).await {
            failures += 1;
            // Said once, then every 100th time: a full disk fails every write.
            if failures % 100 == 1 {
                tracing::warn!(failures, "a DHT record was not kept across reloads: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    #[wasm_bindgen_test]
    async fn records_written_come_back_and_removed_ones_do_not() {
        let db = crate::identity_store::open().await.unwrap();
        let record = |key: &[u8], value: &[u8]| PersistedRecord {
            key: key.to_vec(),
            value: value.to_vec(),
            expires_ms: 1_900_000_000_000,
        };
        let (journal, changes) = mpsc::unbounded();
        let kept = record(b"/pk/alice", b"signed by alice");
        journal.unbounded_send(Change::Put(kept.clone())).unwrap();
        journal
            .unbounded_send(Change::Put(record(b"/pk/bob", b"v1")))
            .unwrap();
        journal
            .unbounded_send(Change::Remove(b"/pk/bob".to_vec()))
            .unwrap();
        drop(journal);
        keep(db, changes).await;

        let db = crate::identity_store::open().await.unwrap();
        let loaded = load(&db).await.unwrap();
        assert!(loaded.contains(&kept), "{loaded:?}");
        assert!(!loaded.iter().any(|r| r.key == b"/pk/bob"), "{loaded:?}");
    }
}
