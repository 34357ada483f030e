//! An in-memory [`Directory`] with the DHT's rules and none of its network, so the account
//! workflows' decisions (name taken, unknown user, wrong password, stale or conflicting
//! writes, silence) are tested in a fraction of a second each instead of over a cluster.
//!
//! What it keeps of the real thing: every holder stores by the same policy as a peer
//! ([`crate::net::record_policy::may_store`]), the writer's own copy is checked first (a
//! refusal there is the caller's error, as `Client::put_record` reports it), a write succeeds
//! once one remote holder answered (`Quorum::One`: libp2p-kad acknowledges a put even when its
//! store filter then refuses the record, so a remote refusal is silent), and a lookup merges
//! answers per owner and
//! says "nothing" only when enough holders were heard ([`GetAnswers`]). Holders can be taken
//! offline, to check that silence never reads as absence.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use libp2p::PeerId;

use super::*;
use crate::{
    net::{
        record_policy::{may_store, GetAnswers},
        NetError,
    },
    record::{FoundRecord, SignedRecord, VerifiedRecord},
};

/// One holder's records, by DHT key.
type Held = HashMap<Vec<u8>, VerifiedRecord>;

/// A DHT of `holders` peers, seen from one of them (the writer, with its own copies).
pub(crate) struct MemoryDirectory {
    own: Mutex<Held>,
    /// Each remote holder: its id, whether it is online, its records. Shared with every
    /// [`MemoryDirectory::elsewhere`] view.
    holders: Arc<Mutex<Vec<(PeerId, bool, Held)>>>,
}

impl MemoryDirectory {
    /// A directory of `holders` online peers besides this one.
    pub(crate) fn new(holders: usize) -> Self {
        let holders = (0..holders)
            .map(|_| (PeerId::random(), true, Held::new()))
            .collect();
        Self {
            own: Mutex::new(Held::new()),
            holders: Arc::new(Mutex::new(holders)),
        }
    }

    /// Takes every remote holder offline (`false`) or back (`true`).
    pub(crate) fn set_online(&self, online: bool) {
        for holder in self.holders.lock().unwrap().iter_mut() {
            holder.1 = online;
        }
    }

    /// Another peer's view of the same remote holders (a second browser): its own copies start
    /// empty.
    pub(crate) fn elsewhere(&self) -> Self {
        Self {
            own: Mutex::new(Held::new()),
            holders: self.holders.clone(),
        }
    }

    /// Stores `record` on every online holder as a peer would take it unasked (a forger's or
    /// a replayer's put, not checked against this peer's own copy).
    pub(crate) fn plant(&self, record: &SignedRecord) -> usize {
        let record = VerifiedRecord::from_wire(&record.key(), &record.to_wire()).unwrap();
        let mut holders = self.holders.lock().unwrap();
        let mut took = 0;
        for (_, _, held) in holders.iter_mut().filter(|h| h.1) {
            if take(held, &record).is_ok() {
                took += 1;
            }
        }
        took
    }
}

/// A holder's decision on `record`, as a peer's record store makes it.
fn take(held: &mut Held, record: &VerifiedRecord) -> Result<(), RecordError> {
    let key = record.record().key();
    let stored = held.get(&key).map(|r| r.wire().to_vec());
    if may_store(record, stored.as_deref())? {
        held.insert(key, record.clone());
    }
    Ok(())
}

impl Directory for MemoryDirectory {
    async fn find(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, AccountError> {
        let mut answers = GetAnswers::new(key.clone());
        let mut verified = crate::net::record_policy::VerifiedValues::default();
        if let Some(own) = self.own.lock().unwrap().get(&key) {
            let _ = answers.offer(&mut verified, None, &key, own.wire());
        }
        let mut unreachable = 0;
        for (peer, online, held) in self.holders.lock().unwrap().iter() {
            match (online, held.get(&key)) {
                (false, _) => unreachable += 1,
                (true, Some(record)) => {
                    let _ = answers.offer(&mut verified, Some(*peer), &key, record.wire());
                }
                (true, None) => answers.answered_without([*peer]),
            }
        }
        answers.finish(|_| true, unreachable).map_err(|too_few| {
            NetError::TooFewPeers {
                heard: too_few.heard,
                needed: too_few.needed,
            }
            .into()
        })
    }

    async fn put(&self, record: SignedRecord) -> Result<(), AccountError> {
        let record = VerifiedRecord::from_wire(&record.key(), &record.to_wire())?;
        take(&mut self.own.lock().unwrap(), &record)?;
        let mut answered = 0;
        for (_, _, held) in self.holders.lock().unwrap().iter_mut().filter(|h| h.1) {
            // Refused or not, a remote holder answers the put.
            let _ = take(held, &record);
            answered += 1;
        }
        if answered == 0 {
            return Err(NetError::NotStored("no peer answered".into()).into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "violet tractor sings under seven moons";
    /// Small keys: key generation is most of what these tests cost.
    const BITS: usize = 2048;

    /// Alice, signed up with a key of the app's size (RSA-3072), where record sizes matter.
    async fn app_sized(dir: &MemoryDirectory) -> Session {
        let rsa = crate::crypto::rsa_keys::RSA_BITS;
        sign_up_with_key_bits(dir, "alice", PASSWORD, rsa)
            .await
            .unwrap()
    }

    /// [`Session::record_room`] is what a record's body may take: a body of exactly that size
    /// signs into a record within [`crate::record::MAX_RECORD_BYTES`] and close to it, with
    /// no key history and with the longest one kept; and with the app's RSA-3072 key and that
    /// history there is room for the largest index body a password change pins
    /// ([`MAX_INDEX_PIN`]), so a small index rides in its record after any password change.
    #[tokio::test]
    async fn a_body_the_size_of_the_record_room_fits_a_record_whatever_the_key_history() {
        let dir = MemoryDirectory::new(5);
        let mut session = app_sized(&dir).await;
        let link = KeyLink::sign(&session.private, &session.private.public()).unwrap();
        let max = crate::record::MAX_RECORD_BYTES;
        let mut rooms = Vec::new();
        for links in [0, crate::key_history::MAX_KEY_LINKS] {
            session.history = vec![link.clone(); links];
            let room = session.record_room(RecordKind::FileIndex);
            let record = session
                .sign_fast(RecordKind::FileIndex, u64::MAX, vec![7; room])
                .await
                .unwrap();
            let wire = record.to_wire().len();
            assert!(
                wire <= max && wire + 32 > max,
                "{links} links: {wire} bytes"
            );
            assert!(room >= MAX_INDEX_PIN, "{links} links: {room} bytes of room");
            rooms.push(room);
        }
        println!("room for a record's body: {rooms:?} bytes");
    }

    /// A password change pins the body of the account's index record in the new private-key
    /// record ([`IndexAtChange`]): a small index rides whole in that body, so it may be up to
    /// [`MAX_INDEX_PIN`] bytes. The worst case (the app's RSA-3072 keys, the longest key
    /// history kept and the most earlier user keys) must still fit a record, or the change
    /// would be refused (before its commit point) until the index grew or shrank.
    #[tokio::test]
    async fn a_password_change_pins_the_largest_index_body_after_the_most_changes() {
        let dir = MemoryDirectory::new(5);
        let mut session = app_sized(&dir).await;
        // Eight earlier keys, each handing over to the next, the last to the session's.
        let earlier: Vec<PrivateKey> = (0..MAX_KEY_LINKS)
            .map(|_| PrivateKey::generate_bits(crate::crypto::rsa_keys::RSA_BITS).unwrap())
            .collect();
        let nexts = earlier.iter().skip(1).map(PrivateKey::public);
        session.history = earlier
            .iter()
            .zip(nexts.chain([session.private.public()]))
            .map(|(previous, next)| KeyLink::sign(previous, &next).unwrap())
            .collect();
        session.earlier_user_keys = (0..MAX_KEY_LINKS).map(|_| SymmetricKey::random()).collect();
        let index = session
            .sign(RecordKind::FileIndex, 1, vec![7; MAX_INDEX_PIN])
            .unwrap();
        dir.put(index).await.unwrap();
        let next = change_password(&dir, &session, PASSWORD, "another long password for her")
            .await
            .unwrap();
        assert_eq!(
            next.index_at_change().map(|pin| pin.body.len()),
            Some(MAX_INDEX_PIN)
        );
        let wire = next.private_key_record.wire().len();
        assert!(wire + 256 < crate::record::MAX_RECORD_BYTES, "{wire} bytes");
        println!(
            "private-key record with a pin of {MAX_INDEX_PIN} bytes: {wire} bytes; room left {}",
            crate::record::MAX_RECORD_BYTES - wire
        );
    }

    #[tokio::test]
    async fn a_taken_name_is_refused_and_the_first_owner_keeps_it() {
        let dir = MemoryDirectory::new(5);
        let alice = sign_up_with_key_bits(&dir, "alice", PASSWORD, BITS)
            .await
            .unwrap();
        let elsewhere = dir.elsewhere();
        let again =
            sign_up_with_key_bits(&elsewhere, "Alice", "another long password for her", BITS).await;
        assert!(matches!(again, Err(AccountError::NameTaken)), "{again:?}");
        let back = log_in(&elsewhere, "alice", PASSWORD).await.unwrap();
        assert_eq!(back.public_key(), alice.public_key());
    }

    #[tokio::test]
    async fn unknown_user_and_wrong_password_come_from_peers_that_answered() {
        let dir = MemoryDirectory::new(5);
        let missing = log_in(&dir, "nobody", PASSWORD).await;
        assert!(
            matches!(missing, Err(AccountError::UnknownUser)),
            "{missing:?}"
        );
        sign_up_with_key_bits(&dir, "alice", PASSWORD, BITS)
            .await
            .unwrap();
        let wrong = log_in(&dir.elsewhere(), "alice", "not the password at all").await;
        assert!(
            matches!(wrong, Err(AccountError::WrongPassword)),
            "{wrong:?}"
        );
    }

    #[tokio::test]
    async fn silence_is_never_read_as_a_free_name() {
        let dir = MemoryDirectory::new(5);
        dir.set_online(false);
        // One look, as the lookup the workflows make: too few heard, so no answer at all.
        let looked = dir
            .find(dht_key(RecordKind::PublicKey, &account_id("alice")))
            .await;
        assert!(
            matches!(
                looked,
                Err(AccountError::Unreachable {
                    heard: 0,
                    needed: 3
                })
            ),
            "{looked:?}"
        );
        // With the holders back, the same look says "nothing here": they were heard.
        dir.set_online(true);
        let looked = dir
            .find(dht_key(RecordKind::PublicKey, &account_id("alice")))
            .await
            .unwrap();
        assert!(looked.is_empty());
    }

    #[tokio::test]
    async fn stale_and_conflicting_writes_are_refused_and_change_nothing() {
        let dir = MemoryDirectory::new(3);
        let alice = sign_up_with_key_bits(&dir, "alice", PASSWORD, BITS)
            .await
            .unwrap();
        let index = |seq, body: &[u8]| alice.sign(RecordKind::FileIndex, seq, body.to_vec());
        dir.put(index(2, b"two").unwrap()).await.unwrap();
        let stale = dir.put(index(1, b"one").unwrap()).await;
        assert!(
            matches!(
                stale,
                Err(AccountError::Record(RecordError::Stale { new: 1, held: 2 }))
            ),
            "{stale:?}"
        );
        let conflict = dir.put(index(2, b"another two").unwrap()).await;
        assert!(
            matches!(
                conflict,
                Err(AccountError::Record(RecordError::Conflict(2)))
            ),
            "{conflict:?}"
        );
        // A replay of an older version, planted straight at the holders, is refused there too.
        assert_eq!(dir.plant(&index(1, b"one").unwrap()), 0);
        let found = dir
            .get(dht_key(RecordKind::FileIndex, &alice.account()))
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].record().seq, 2);
        assert_eq!(found[0].record().body, b"two");
    }
}
