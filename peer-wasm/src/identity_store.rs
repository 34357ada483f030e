//! This browser profile's peer identity, kept in IndexedDB so a reloaded tab is the same peer.
//!
//! The key is the peer's transport identity (what other peers see), not a user secret: user
//! keys never come here. It is read and, if absent, written in one read-write transaction, so
//! two tabs of one profile starting together still agree on a single identity.

use libp2p::identity::Keypair;
use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::JsValue;

const DATABASE: &str = "jellyfish";
const STORE: &str = "peer";
/// Object stores of the block store (crate::store), created here with the database.
const BLOCKS: &str = "blocks";
const META: &str = "meta";
/// The DHT records this peer holds (crate::record_journal).
pub(crate) const RECORDS: &str = "records";
const IDENTITY_KEY: &str = "identity";

/// Why the identity could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    #[error(
        "this browser does not let the page keep data (IndexedDB refused: {0}); Jellyfish keeps \
         this tab's identity and the space it donates there: allow site data for this page, or \
         open it outside private browsing"
    )]
    Storage(String),
    #[error("the stored peer identity is corrupt ({0}); clear this site's data to make a new one")]
    Corrupt(String),
}

impl From<rexie::Error> for IdentityError {
    fn from(e: rexie::Error) -> Self {
        Self::Storage(crate::error_chain::error_chain(&e))
    }
}

/// Opens (creating or upgrading if needed) the peer's database.
pub(crate) async fn open() -> Result<Rexie, IdentityError> {
    // Version 2 added the block store's object stores, version 3 the DHT records, version 4
    // the journal of unfinished uploads.
    Ok(Rexie::builder(DATABASE)
        .version(4)
        .add_object_store(ObjectStore::new(STORE))
        .add_object_store(ObjectStore::new(BLOCKS))
        .add_object_store(ObjectStore::new(META))
        .add_object_store(ObjectStore::new(RECORDS))
        .add_object_store(ObjectStore::new(crate::files::UPLOADS))
        .build()
        .await?)
}

/// Returns this profile's identity, creating and storing one on first use.
pub(crate) async fn load_or_create(db: &Rexie) -> Result<Keypair, IdentityError> {
    // Made before the transaction opens: nothing but IndexedDB may be awaited inside it.
    let fresh = Keypair::generate_ed25519();
    let fresh_bytes = fresh
        .to_protobuf_encoding()
        .map_err(|e| IdentityError::Corrupt(e.to_string()))?;

    let tx = db.transaction(&[STORE], TransactionMode::ReadWrite)?;
    let store = tx.store(STORE)?;
    let key = JsValue::from_str(IDENTITY_KEY);
    let keypair = match store.get(key.clone()).await? {
        Some(value) if !value.is_undefined() => {
            let bytes = js_sys::Uint8Array::new(&value).to_vec();
            Keypair::from_protobuf_encoding(&bytes)
                .map_err(|e| IdentityError::Corrupt(e.to_string()))?
        }
        _ => {
            let value = js_sys::Uint8Array::from(fresh_bytes.as_slice());
            store.add(&value, Some(&key)).await?;
            fresh
        }
    };
    tx.done().await?;
    Ok(keypair)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    #[wasm_bindgen_test]
    async fn the_identity_survives_reopening_the_database() {
        let db = open().await.unwrap();
        let first = load_or_create(&db).await.unwrap();
        db.close();
        let db = open().await.unwrap();
        let again = load_or_create(&db).await.unwrap();
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
    }

    #[wasm_bindgen_test]
    async fn a_corrupt_identity_is_reported_not_replaced() {
        let db = Rexie::builder("jellyfish-corrupt-test")
            .version(1)
            .add_object_store(ObjectStore::new(STORE))
            .build()
            .await
            .unwrap();
        let tx = db
            .transaction(&[STORE], TransactionMode::ReadWrite)
            .unwrap();
        tx.store(STORE)
            .unwrap()
            .put(
                &js_sys::Uint8Array::from(&b"garbage"[..]),
                Some(&JsValue::from_str(IDENTITY_KEY)),
            )
            .await
            .unwrap();
        tx.done().await.unwrap();
        assert!(matches!(
            load_or_create(&db).await,
            Err(IdentityError::Corrupt(_))
        ));
    }
}
