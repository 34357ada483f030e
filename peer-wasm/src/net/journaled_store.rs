//! Kademlia's record store with a journal: every record put or removed is also sent, as a
//! [`Change`], to whoever keeps the records across reloads (IndexedDB in the browser,
//! `crate::record_journal`). Kademlia's store interface is synchronous and IndexedDB is not, so
//! the store stays in memory and the journal is written behind it; at start the peer loads what
//! was journalled back through the same checks as any record it is sent
//! ([`PersistedRecord`]).
//!
//! A tab closed between a change and its write loses that change only: the record is still
//! held by the other peers closest to its key, and its owner republishes it.

use std::borrow::Cow;

use futures::channel::mpsc;
use libp2p::{
    kad::{self, store::MemoryStore, store::RecordStore, ProviderRecord, RecordKey},
    PeerId,
};
use web_time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One change to the records held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A record was stored or replaced.
    Put(PersistedRecord),
    /// The record under this key was dropped.
    Remove(Vec<u8>),
}

/// A record as kept across reloads: its key, its signed wire bytes and when it expires, in
/// wall-clock time (an `Instant` means nothing after a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedRecord {
    /// The DHT key.
    pub key: Vec<u8>,
    /// The signed record ([`crate::record::SignedRecord`] wire bytes).
    pub value: Vec<u8>,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

impl PersistedRecord {
    fn of(record: &kad::Record, now: Instant, wall: SystemTime) -> Self {
        let left = record
            .expires
            .map_or(super::record_limits::RECORD_TTL, |at| {
                at.saturating_duration_since(now)
            });
        let expires = wall + left;
        Self {
            key: record.key.to_vec(),
            value: record.value.clone(),
            expires_ms: expires
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    /// When it expires, as an `Instant` of this run; `None` if it has expired.
    pub fn expires(&self, now: Instant, wall: SystemTime) -> Option<Instant> {
        let at = UNIX_EPOCH + Duration::from_millis(self.expires_ms);
        let left = at.duration_since(wall).ok()?;
        (!left.is_zero()).then(|| now + left)
    }
}

/// A copy of a held record whose expiry moves by less than this is not written again: holders
/// and owners re-send records often, and each write is an IndexedDB transaction.
pub const REWRITE_AFTER: Duration = Duration::from_secs(60 * 60);

/// A [`MemoryStore`] that journals record changes (providers are not journalled: Jellyfish
/// publishes none).
pub struct JournaledStore {
    memory: MemoryStore,
    journal: Option<mpsc::UnboundedSender<Change>>,
}

impl JournaledStore {
    /// `memory`, journalling to `journal` if there is one.
    pub fn new(memory: MemoryStore, journal: Option<mpsc::UnboundedSender<Change>>) -> Self {
        Self { memory, journal }
    }

    fn note(&mut self, change: Change) {
        let closed = self
            .journal
            .as_ref()
            .is_some_and(|journal| journal.unbounded_send(change).is_err());
        if closed {
            // The writer is gone (its storage failed): carry on in memory alone.
            tracing::warn!("record journal closed: records are kept in memory only");
            self.journal = None;
        }
    }
}

impl JournaledStore {
    /// Drops a kept record that did not come back (expired, or refused by today's checks)
    /// from the journal, so it is not read again at every start.
    pub fn forget(&mut self, key: &RecordKey) {
        if self.memory.get(key).is_none() {
            self.note(Change::Remove(key.to_vec()));
        }
    }
}

impl RecordStore for JournaledStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, kad::Record>> {
        self.memory.get(k)
    }

    fn put(&mut self, r: kad::Record) -> kad::store::Result<()> {
        let refresh_only = self.memory.get(&r.key).is_some_and(|held| {
            held.value == r.value
                && match (held.expires, r.expires) {
                    (Some(old), Some(new)) => new.saturating_duration_since(old) < REWRITE_AFTER,
                    _ => false,
                }
        });
        let persisted = (self.journal.is_some() && !refresh_only)
            .then(|| PersistedRecord::of(&r, Instant::now(), SystemTime::now()));
        self.memory.put(r)?;
        if let Some(persisted) = persisted {
            self.note(Change::Put(persisted));
        }
        Ok(())
    }

    fn remove(&mut self, k: &RecordKey) {
        if self.memory.get(k).is_some() {
            self.memory.remove(k);
            self.note(Change::Remove(k.to_vec()));
        }
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.memory.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> kad::store::Result<()> {
        self.memory.add_provider(record)
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.memory.providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.memory.provided()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        self.memory.remove_provider(k, p)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::StreamExt;

    use super::*;

    #[test]
    fn every_put_and_remove_is_journalled_with_a_wall_clock_expiry() {
        let (journal, mut changes) = mpsc::unbounded();
        let memory = MemoryStore::new(PeerId::random());
        let mut store = JournaledStore::new(memory, Some(journal));
        let mut record = kad::Record::new(RecordKey::new(&b"alice"), b"signed".to_vec());
        let now = Instant::now();
        record.expires = Some(now + Duration::from_secs(3600));
        store.put(record.clone()).unwrap();
        store.remove(&RecordKey::new(&b"nobody")); // nothing held: nothing journalled
                                                   // The same record again, a minute later: held longer, not written again.
        let mut again = record.clone();
        again.expires = Some(now + Duration::from_secs(3660));
        store.put(again).unwrap();
        store.remove(&record.key);

        let wall = SystemTime::now();
        let Some(Change::Put(put)) = futures::executor::block_on(changes.next()) else {
            panic!("a put first");
        };
        assert_eq!(
            (put.key.as_slice(), put.value.as_slice()),
            (&b"alice"[..], &b"signed"[..])
        );
        // After a "restart" (a new Instant base), the expiry is still about an hour away.
        let later = Instant::now();
        let expires = put.expires(later, wall).unwrap();
        let left = expires.duration_since(later).as_secs();
        assert!((3590..=3600).contains(&left), "{left} s");
        assert_eq!(
            futures::executor::block_on(changes.next()),
            Some(Change::Remove(b"alice".to_vec()))
        );
        // An expired record comes back as nothing.
        let stale = PersistedRecord {
            expires_ms: 1_000,
            ..put
        };
        assert_eq!(stale.expires(later, wall), None);
    }

    #[test]
    fn a_closed_journal_leaves_the_store_working_in_memory() {
        let (journal, changes) = mpsc::unbounded();
        drop(changes);
        let mut store = JournaledStore::new(MemoryStore::new(PeerId::random()), Some(journal));
        let record = kad::Record::new(RecordKey::new(&b"k"), b"v".to_vec());
        store.put(record.clone()).unwrap();
        store.put(record.clone()).unwrap();
        assert_eq!(store.get(&record.key).unwrap().value, b"v");
        assert!(store.journal.is_none());
    }
}
