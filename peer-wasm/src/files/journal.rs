//! The journal of unfinished uploads: the addresses of the blocks an upload is about to place,
//! noted before each goes out and forgotten once the file is in the index (or its blocks were
//! freed). A tab closed mid-upload leaves its entry behind, and the owner's next log-in frees
//! those blocks ([`Drive::finish_uploads`]): nothing an upload placed is left counted against
//! the owner, held (and repaired) for nobody. One more entry per owner keeps the blobs of
//! index records whose puts were lost ([`UploadJournal::note_lost_index_put`]), until a log-in
//! reads an index newer than them.
//!
//! In the browser the journal is an IndexedDB object store (`uploads`) of the profile's
//! database, so it outlives the tab; natively it is a map in memory (tests).

#[cfg(not(target_arch = "wasm32"))]
use std::collections::BTreeMap;

use super::*;

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the journal of unfinished uploads failed: {0}")]
pub struct JournalError(String);

/// The owner's key hash in hex: how each key of its entries starts.
fn owner_hex(owner: &OwnerHash) -> String {
    hex::encode(owner)
}

/// The key of one upload's entry: the owner's key hash and the file, in hex.
fn entry_key(owner: &OwnerHash, file: &FileId) -> String {
    format!("{}/{}", owner_hex(owner), file.to_hex())
}

/// One upload's entry: when it last noted a block (ms since the epoch), and the blocks.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Entry {
    noted_ms: u64,
    ids: Vec<BlockId>,
    /// In the entry of lost index puts ([`UploadJournal::note_lost_index_put`]): the highest
    /// sequence number among them. Absent in an upload's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

/// The key of `owner`'s entry of lost index puts. Not a file's hex id:
/// [`UploadJournal::unfinished`] (and that of builds before it, which would free it as an
/// upload's) passes it over.
fn lost_puts_key(owner: &OwnerHash) -> String {
    format!("{}/lost-index-puts", owner_hex(owner))
}

/// The blobs of the account's lost index puts ([`UploadJournal::lost_index_puts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostIndexPuts {
    /// The highest sequence number among the puts.
    pub seq: u64,
    /// The blobs placed for them (roots, and pages that changed).
    pub ids: Vec<BlockId>,
}

fn encode(entry: &Entry) -> Vec<u8> {
    cbor4ii::serde::to_vec(Vec::new(), entry).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Entry {
    cbor4ii::serde::from_slice(bytes).unwrap_or_default()
}

/// This browser's journal of unfinished uploads.
pub struct UploadJournal {
    /// Held across a note's read and write: an upload notes its blocks from several
    /// placements at once, and two read-modify-writes of one entry would lose a block.
    writing: futures::lock::Mutex<()>,
    #[cfg(not(target_arch = "wasm32"))]
    entries: std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
    #[cfg(target_arch = "wasm32")]
    db: std::rc::Rc<rexie::Rexie>,
}

impl UploadJournal {
    /// A journal in memory (natively: tests and simulations).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn in_memory() -> Self {
        Self {
            writing: Default::default(),
            entries: Default::default(),
        }
    }

    /// The journal in this profile's IndexedDB.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn in_profile(db: rexie::Rexie) -> Self {
        Self {
            writing: Default::default(),
            db: std::rc::Rc::new(db),
        }
    }

    /// Notes that upload `file` of `owner` is about to place block `id`, at `now_ms`.
    pub async fn note(
        &self,
        owner: &OwnerHash,
        file: &FileId,
        id: BlockId,
        now_ms: u64,
    ) -> Result<(), JournalError> {
        self.add(&entry_key(owner, file), &[id], None, now_ms).await
    }

    /// Notes the blobs `ids` placed for an index record of `owner` whose put at `seq` failed
    /// and was not found after: kept, with the highest such `seq`, until a log-in reads an
    /// index newer than it ([`Drive::finish_uploads`]).
    pub async fn note_lost_index_put(
        &self,
        owner: &OwnerHash,
        ids: &[BlockId],
        seq: u64,
        now_ms: u64,
    ) -> Result<(), JournalError> {
        self.add(&lost_puts_key(owner), ids, Some(seq), now_ms)
            .await
    }

    /// Adds `ids` (each once) and `seq` (the highest kept) to the entry under `key`.
    async fn add(
        &self,
        key: &str,
        ids: &[BlockId],
        seq: Option<u64>,
        now_ms: u64,
    ) -> Result<(), JournalError> {
        let _writing = self.writing.lock().await;
        let mut entry = self
            .read(key)
            .await?
            .map(|b| decode(&b))
            .unwrap_or_default();
        for id in ids {
            if !entry.ids.contains(id) {
                entry.ids.push(*id);
            }
        }
        entry.seq = entry.seq.max(seq);
        entry.noted_ms = now_ms;
        self.write(key, Some(encode(&entry))).await
    }

    /// The blobs of `owner`'s lost index puts, if the last was noted before `quiet_since_ms`.
    pub async fn lost_index_puts(
        &self,
        owner: &OwnerHash,
        quiet_since_ms: u64,
    ) -> Result<Option<LostIndexPuts>, JournalError> {
        let Some(bytes) = self.read(&lost_puts_key(owner)).await? else {
            return Ok(None);
        };
        let entry = decode(&bytes);
        Ok(match entry.seq {
            Some(seq) if entry.noted_ms <= quiet_since_ms => Some(LostIndexPuts {
                seq,
                ids: entry.ids,
            }),
            _ => None,
        })
    }

    /// Forgets `ids` among `owner`'s lost index puts (freed, or named by a newer index);
    /// blobs noted since they were read stay.
    pub async fn forget_lost_index_puts(
        &self,
        owner: &OwnerHash,
        ids: &[BlockId],
    ) -> Result<(), JournalError> {
        let key = lost_puts_key(owner);
        let _writing = self.writing.lock().await;
        let Some(bytes) = self.read(&key).await? else {
            return Ok(());
        };
        let mut entry = decode(&bytes);
        entry.ids.retain(|id| !ids.contains(id));
        let left = (!entry.ids.is_empty()).then(|| encode(&entry));
        self.write(&key, left).await
    }

    /// Forgets upload `file` of `owner`: it is in the index, or its blocks were freed.
    pub async fn done(&self, owner: &OwnerHash, file: &FileId) -> Result<(), JournalError> {
        let _writing = self.writing.lock().await;
        self.write(&entry_key(owner, file), None).await
    }

    /// The uploads of `owner` that noted no block after `quiet_since_ms`, with the blocks
    /// each noted.
    pub async fn unfinished(
        &self,
        owner: &OwnerHash,
        quiet_since_ms: u64,
    ) -> Result<Vec<(FileId, Vec<BlockId>)>, JournalError> {
        let prefix = entry_key(owner, &FileId([0; 16]));
        let prefix = &prefix[..prefix.len() - 32];
        Ok(self
            .all()
            .await?
            .into_iter()
            .filter_map(|(key, bytes)| {
                // Not an upload's entry (the lost index puts') unless a file id follows.
                let file = FileId::from_hex(key.strip_prefix(prefix)?)?;
                let entry = decode(&bytes);
                (entry.noted_ms <= quiet_since_ms).then_some((file, entry.ids))
            })
            .collect())
    }

    #[cfg(not(target_arch = "wasm32"))]
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, JournalError> {
        let entries = self
            .entries
            .lock()
            .map_err(|e| JournalError(e.to_string()))?;
        Ok(entries.get(key).cloned())
    }

    #[cfg(not(target_arch = "wasm32"))]
    async fn write(&self, key: &str, value: Option<Vec<u8>>) -> Result<(), JournalError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|e| JournalError(e.to_string()))?;
        match value {
            Some(value) => entries.insert(key.to_owned(), value),
            None => entries.remove(key),
        };
        Ok(())
    }

    #[cfg(not(target_arch = "wasm32"))]
    async fn all(&self) -> Result<Vec<(String, Vec<u8>)>, JournalError> {
        let entries = self
            .entries
            .lock()
            .map_err(|e| JournalError(e.to_string()))?;
        Ok(entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    // In the browser each transaction runs in a task of its own ([`crate::platform::own_task`]):
    // an upload notes its blocks from deep inside a pipeline that can leave it unpolled for
    // seconds, long enough for the transaction's one `complete` event to pass unheard.
    #[cfg(target_arch = "wasm32")]
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, JournalError> {
        use wasm_bindgen::JsCast;
        let (db, key) = (self.db.clone(), key.to_owned());
        in_own_task(async move {
            let tx = db
                .transaction(&[UPLOADS], rexie::TransactionMode::ReadOnly)
                .map_err(failed)?;
            let value = tx
                .store(UPLOADS)
                .map_err(failed)?
                .get(wasm_bindgen::JsValue::from_str(&key))
                .await
                .map_err(failed)?;
            tx.done().await.map_err(failed)?;
            Ok(value
                .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
                .map(|a| a.to_vec()))
        })
        .await
    }

    #[cfg(target_arch = "wasm32")]
    async fn write(&self, key: &str, value: Option<Vec<u8>>) -> Result<(), JournalError> {
        let (db, key) = (self.db.clone(), key.to_owned());
        in_own_task(async move {
            let tx = db
                .transaction(&[UPLOADS], rexie::TransactionMode::ReadWrite)
                .map_err(failed)?;
            let store = tx.store(UPLOADS).map_err(failed)?;
            let key = wasm_bindgen::JsValue::from_str(&key);
            match value {
                Some(value) => {
                    let value =
                        wasm_bindgen::JsValue::from(js_sys::Uint8Array::from(value.as_slice()));
                    store.put(&value, Some(&key)).await.map_err(failed)?;
                }
                None => store.delete(key).await.map_err(failed)?,
            }
            tx.done().await.map(|_| ()).map_err(failed)
        })
        .await
    }

    #[cfg(target_arch = "wasm32")]
    async fn all(&self) -> Result<Vec<(String, Vec<u8>)>, JournalError> {
        use wasm_bindgen::JsCast;
        let db = self.db.clone();
        let entries = in_own_task(async move {
            let tx = db
                .transaction(&[UPLOADS], rexie::TransactionMode::ReadOnly)
                .map_err(failed)?;
            let entries = tx
                .store(UPLOADS)
                .map_err(failed)?
                .scan(None, None, None, None)
                .await
                .map_err(failed)?;
            tx.done().await.map_err(failed)?;
            Ok::<_, JournalError>(entries)
        })
        .await?;
        Ok(entries
            .into_iter()
            .filter_map(|(k, v)| {
                let key = k.as_string()?;
                let bytes = v.dyn_into::<js_sys::Uint8Array>().ok()?.to_vec();
                Some((key, bytes))
            })
            .collect())
    }
}

/// The object store of unfinished uploads in the profile's database.
#[cfg(target_arch = "wasm32")]
pub(crate) const UPLOADS: &str = "uploads";

/// Runs a journal transaction in a task of its own (see `read`): a task dropped before it
/// finished (the tab closing) is a failed note, not a hang.
#[cfg(target_arch = "wasm32")]
async fn in_own_task<T: 'static>(
    transaction: impl std::future::Future<Output = Result<T, JournalError>> + 'static,
) -> Result<T, JournalError> {
    crate::platform::own_task(transaction)
        .await
        .unwrap_or_else(|| Err(JournalError("its task was dropped".into())))
}

#[cfg(target_arch = "wasm32")]
fn failed(e: impl std::error::Error) -> JournalError {
    JournalError(crate::error_chain::error_chain(&e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What every journal must do: natively in memory, in the browser in IndexedDB (where a
    /// second handle, as after a reload, sees the same entries). The owners are random, so
    /// entries left by other tests of the same profile do not interfere.
    async fn keeps_each_owners_abandoned_uploads_apart(journal: &UploadJournal) -> OwnerHash {
        let (alice, bob) = (crate::crypto::random_bytes(), crate::crypto::random_bytes());
        let (one, two) = (FileId::random(), FileId::random());
        let (a, b) = (BlockId::of(b"a"), BlockId::of(b"b"));
        let t0 = 1_000_000;
        journal.note(&alice, &one, a, t0).await.unwrap();
        journal.note(&alice, &one, b, t0).await.unwrap();
        journal.note(&alice, &one, b, t0).await.unwrap();
        journal.note(&bob, &two, a, t0).await.unwrap();
        // An upload that noted a block since (another tab's, maybe) is not abandoned.
        assert_eq!(journal.unfinished(&alice, t0 - 1).await.unwrap(), vec![]);
        assert_eq!(
            journal.unfinished(&alice, t0).await.unwrap(),
            vec![(one, vec![a, b])]
        );
        assert_eq!(
            journal.unfinished(&bob, t0).await.unwrap(),
            vec![(two, vec![a])]
        );
        journal.done(&alice, &one).await.unwrap();
        assert_eq!(journal.unfinished(&alice, t0).await.unwrap(), vec![]);
        assert_eq!(journal.unfinished(&bob, t0).await.unwrap().len(), 1);

        // Lost index puts: one entry per owner, with the highest sequence number, never
        // listed as an upload's.
        let (root, page) = (BlockId::of(b"root"), BlockId::of(b"page"));
        journal
            .note_lost_index_put(&alice, &[root], 5, t0)
            .await
            .unwrap();
        journal
            .note_lost_index_put(&alice, &[root, page], 4, t0)
            .await
            .unwrap();
        assert_eq!(journal.unfinished(&alice, t0).await.unwrap(), vec![]);
        let lost = |owner, quiet_since| journal.lost_index_puts(owner, quiet_since);
        assert_eq!(lost(&alice, t0 - 1).await.unwrap(), None, "noted since");
        let both = LostIndexPuts {
            seq: 5,
            ids: vec![root, page],
        };
        assert_eq!(lost(&alice, t0).await.unwrap(), Some(both));
        assert_eq!(lost(&bob, t0).await.unwrap(), None);
        // Forgetting what was read keeps what was noted since.
        journal
            .forget_lost_index_puts(&alice, &[root])
            .await
            .unwrap();
        let left = lost(&alice, t0).await.unwrap().unwrap();
        assert_eq!(left.ids, [page]);
        journal
            .forget_lost_index_puts(&alice, &[page])
            .await
            .unwrap();
        assert_eq!(lost(&alice, t0).await.unwrap(), None);
        bob
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test]
    async fn the_journal_keeps_each_owners_abandoned_uploads_apart() {
        keeps_each_owners_abandoned_uploads_apart(&UploadJournal::in_memory()).await;
    }

    /// A note polled once and then left alone for longer than its transaction takes (as the
    /// upload pipeline leaves its reader while every slot is busy) still finishes: before
    /// each transaction had a task of its own, its `complete` event passed unheard and the
    /// note, and the upload, waited forever.
    #[cfg(target_arch = "wasm32")]
    #[wasm_bindgen_test::wasm_bindgen_test]
    async fn a_note_polled_late_still_finishes() {
        let journal = UploadJournal::in_profile(crate::identity_store::open().await.unwrap());
        let (owner, file) = (crate::crypto::random_bytes(), FileId::random());
        for round in 0..3u8 {
            let mut note = std::pin::pin!(journal.note(&owner, &file, BlockId::of(&[round]), 1));
            assert!(futures::poll!(note.as_mut()).is_pending());
            futures_timer::Delay::new(std::time::Duration::from_millis(300)).await;
            let deadline = futures_timer::Delay::new(std::time::Duration::from_secs(5));
            match futures::future::select(note, deadline).await {
                futures::future::Either::Left((noted, _)) => noted.unwrap(),
                futures::future::Either::Right(_) => panic!("the note never finished"),
            }
        }
        let left = journal.unfinished(&owner, u64::MAX).await.unwrap();
        assert_eq!(
            left,
            vec![(file, (0..3u8).map(|r| BlockId::of(&[r])).collect())]
        );
        journal.done(&owner, &file).await.unwrap();
    }

    /// An upload notes each block as it goes out, several at once: every one is kept (two
    /// read-modify-writes of one entry in IndexedDB transactions of their own would each
    /// write what it read, and the entry would lose blocks).
    #[cfg(target_arch = "wasm32")]
    #[wasm_bindgen_test::wasm_bindgen_test]
    async fn notes_made_at_once_are_all_kept() {
        let journal = UploadJournal::in_profile(crate::identity_store::open().await.unwrap());
        let (owner, file) = (crate::crypto::random_bytes(), FileId::random());
        let ids: Vec<BlockId> = (0..8u8).map(|i| BlockId::of(&[i, 7])).collect();
        let notes = ids.iter().map(|id| journal.note(&owner, &file, *id, 1));
        for noted in futures::future::join_all(notes).await {
            noted.unwrap();
        }
        let left = journal.unfinished(&owner, u64::MAX).await.unwrap();
        assert_eq!(left.len(), 1);
        let mut kept = left[0].1.clone();
        kept.sort();
        let mut wanted = ids.clone();
        wanted.sort();
        assert_eq!(kept, wanted);
        journal.done(&owner, &file).await.unwrap();
    }

    #[cfg(target_arch = "wasm32")]
    #[wasm_bindgen_test::wasm_bindgen_test]
    async fn the_journal_in_indexeddb_keeps_uploads_apart_and_outlives_the_tab() {
        let open =
            || async { UploadJournal::in_profile(crate::identity_store::open().await.unwrap()) };
        let bob = keeps_each_owners_abandoned_uploads_apart(&open().await).await;
        let reopened = open().await;
        let left = reopened.unfinished(&bob, u64::MAX).await.unwrap();
        assert_eq!(left.len(), 1);
        reopened.done(&bob, &left[0].0).await.unwrap();
        assert_eq!(
            open().await.unfinished(&bob, u64::MAX).await.unwrap(),
            vec![]
        );
    }
}
