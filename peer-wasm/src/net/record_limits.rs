//! What a peer keeps of other people's records, and for how long: the limits that stop one key
//! or one sender from filling every peer's record store with validly signed records for
//! made-up accounts (each tab keeps at most [`MAX_RECORDS`]).
//!
//! Pure: the event loop measures (what is held, who is closer, how far a key is) and
//! [`RecordLimits::admit`] decides.
//!
//! - **Only where it belongs.** A record sent by another peer is kept only if this peer is
//!   among the k = 20 peers it knows closest to the record's key: Kademlia puts and replicates
//!   to exactly those, so honest records still arrive, and a flood aimed at one peer is not kept.
//! - **Per owner.** At most [`MAX_RECORDS_PER_OWNER`] records signed by one key: an account
//!   needs 4 (public key, private key, user key, file index) and a lease per key it has had
//!   (at most 9).
//! - **Per sender.** At most [`MAX_NEW_RECORDS_PER_SENDER`] records new to this peer from one
//!   sender per [`SENDER_WINDOW`] (replacements and copies of held records do not count): a
//!   neighbour handing over its records when this peer joins fits; a firehose does not.
//! - **Expiry.** A record is kept [`RECORD_TTL`] after its owner last published it. The owner's
//!   tab republishes at log-in and every hour while logged in; other holders pass the time
//!   left on, never more, so a record nobody keeps alive is dropped everywhere.
//! - **Eviction.** A full store drops the record whose key is farthest from this peer (the one
//!   it is least responsible for) to keep a closer one, and refuses records farther than all.

use std::{collections::HashMap, time::Duration};

use libp2p::{kad, PeerId};
use web_time::Instant;

use crate::record::RecordError;

/// Records a peer holds at most (Kademlia's in-memory default).
pub const MAX_RECORDS: usize = 1024;
/// Records one owner key may have held at one peer: an account's 4, and a lease for its
/// current key and each earlier one it still speaks for (up to
/// [`crate::key_history::MAX_KEY_LINKS`]), with room to spare.
pub const MAX_RECORDS_PER_OWNER: usize = 16;
/// Records new to this peer accepted from one sender per [`SENDER_WINDOW`].
pub const MAX_NEW_RECORDS_PER_SENDER: u32 = 128;
/// The window of [`MAX_NEW_RECORDS_PER_SENDER`]: Kademlia's replication interval.
pub const SENDER_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a record is kept after its owner last published it: far longer than a person is
/// likely to stay away (the owner's tab republishes at every log-in), so nothing kept alive is
/// lost, and an abandoned record does not stay forever.
pub const RECORD_TTL: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Kademlia's k: the peers closest to a key that hold its record.
const K: usize = 20;

/// Hash of a record owner's public key.
pub(crate) type OwnerHash = [u8; 32];

/// A record about to be stored, as the event loop measured it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The key it is stored under.
    pub(crate) key: kad::RecordKey,
    /// Its owner.
    pub(crate) owner: OwnerHash,
    /// Who sent it; `None`: this peer's own (its user published it, or a lookup found it).
    pub(crate) sender: Option<PeerId>,
    /// How many peers in the routing table are closer to the key than this one (only the first
    /// k are counted).
    pub(crate) closer_known: usize,
    /// From this peer to the key.
    pub(crate) distance: kad::KBucketDistance,
    /// Whether a record is held under the same key (it replaces that one: no new slot).
    pub(crate) replaces: bool,
}

/// What the store must do to keep an admitted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Store it.
    Store,
    /// Drop this record (the farthest held) first, then store it.
    EvictThenStore(kad::RecordKey),
}

/// The store's state that the limits need, measured by the event loop.
pub(crate) struct HeldRecords<'a> {
    /// Whether a record is held under a key.
    pub(crate) exists: &'a dyn Fn(&kad::RecordKey) -> bool,
    /// Records held.
    pub(crate) count: usize,
    /// The held record farthest from this peer, when the store is full.
    pub(crate) farthest: Option<(kad::RecordKey, kad::KBucketDistance)>,
}

/// The limits' own memory: who owns which held record, and what each sender sent lately.
#[derive(Debug, Default)]
pub(crate) struct RecordLimits {
    owners: HashMap<kad::RecordKey, OwnerHash>,
    senders: HashMap<PeerId, (Instant, u32)>,
}

impl RecordLimits {
    /// Decides whether `candidate` may be stored, and what must go to make room.
    pub(crate) fn admit(
        &mut self,
        candidate: &Candidate,
        held: &HeldRecords<'_>,
        now: Instant,
    ) -> Result<Admit, RecordError> {
        if candidate.sender.is_some() && candidate.closer_known >= K {
            return Err(RecordError::NotClosest);
        }
        if !candidate.replaces {
            let owned = self
                .owners
                .iter()
                .filter(|(key, owner)| {
                    **owner == candidate.owner && **key != candidate.key && (held.exists)(key)
                })
                .count();
            if owned >= MAX_RECORDS_PER_OWNER {
                return Err(RecordError::OwnerCap(MAX_RECORDS_PER_OWNER));
            }
        }
        let admit = match &held.farthest {
            _ if candidate.replaces || held.count < MAX_RECORDS => Admit::Store,
            Some((farthest, distance)) if *distance > candidate.distance => {
                Admit::EvictThenStore(farthest.clone())
            }
            _ => return Err(RecordError::StoreFull),
        };
        if let (Some(sender), false) = (candidate.sender, candidate.replaces) {
            self.senders
                .retain(|_, (since, _)| now.saturating_duration_since(*since) < SENDER_WINDOW);
            let (_, sent) = self.senders.entry(sender).or_insert((now, 0));
            if *sent >= MAX_NEW_RECORDS_PER_SENDER {
                return Err(RecordError::SenderCap(MAX_NEW_RECORDS_PER_SENDER));
            }
            *sent += 1;
        }
        Ok(admit)
    }

    /// Notes that the record under `key`, owned by `owner`, is now held; forgets the ones
    /// the store no longer holds once they are as many as those it does (expiry and eviction
    /// remove records without telling).
    pub(crate) fn stored(
        &mut self,
        key: kad::RecordKey,
        owner: OwnerHash,
        exists: &dyn Fn(&kad::RecordKey) -> bool,
    ) {
        self.owners.insert(key, owner);
        if self.owners.len() > 2 * MAX_RECORDS {
            self.owners.retain(|key, _| exists(key));
        }
    }

    /// When a record that arrives (or is published) at `now`, claiming to expire at
    /// `claimed`, expires here: never later than [`RECORD_TTL`] from now.
    pub(crate) fn expiry(claimed: Option<Instant>, now: Instant) -> Instant {
        let longest = now + RECORD_TTL;
        claimed.map_or(longest, |at| at.min(longest))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use super::*;

    fn key(n: u32) -> kad::RecordKey {
        kad::RecordKey::new(&n.to_be_bytes())
    }

    fn distance(n: u32) -> kad::KBucketDistance {
        let me = kad::KBucketKey::new(vec![0u8]);
        kad::KBucketKey::new(n.to_be_bytes().to_vec()).distance(&me)
    }

    fn candidate(n: u32, owner: u8, sender: Option<PeerId>) -> Candidate {
        Candidate {
            key: key(n),
            owner: [owner; 32],
            sender,
            closer_known: 0,
            distance: distance(n),
            replaces: false,
        }
    }

    /// A store of `keys`, with its farthest record when full.
    struct Store(HashSet<kad::RecordKey>);

    impl Store {
        fn admit(
            &self,
            limits: &mut RecordLimits,
            c: &Candidate,
            full: bool,
        ) -> Result<Admit, RecordError> {
            let exists = |k: &kad::RecordKey| self.0.contains(k);
            let farthest = (0..10_000u32)
                .filter(|n| self.0.contains(&key(*n)))
                .map(|n| (key(n), distance(n)))
                .max_by_key(|(_, d)| *d);
            let held = HeldRecords {
                exists: &exists,
                count: if full { MAX_RECORDS } else { self.0.len() },
                farthest: if full { farthest } else { None },
            };
            limits.admit(c, &held, Instant::now())
        }

        fn put(&mut self, limits: &mut RecordLimits, c: &Candidate) {
            self.0.insert(c.key.clone());
            let keys = self.0.clone();
            limits.stored(c.key.clone(), c.owner, &|k| keys.contains(k));
        }
    }

    #[test]
    fn one_owner_fills_at_most_its_share() {
        let (mut limits, mut store) = (RecordLimits::default(), Store(HashSet::new()));
        let sender = Some(PeerId::random());
        for n in 0..MAX_RECORDS_PER_OWNER as u32 {
            let c = candidate(n, 1, sender);
            assert_eq!(store.admit(&mut limits, &c, false), Ok(Admit::Store));
            store.put(&mut limits, &c);
        }
        let one_more = candidate(100, 1, sender);
        assert_eq!(
            store.admit(&mut limits, &one_more, false),
            Err(RecordError::OwnerCap(MAX_RECORDS_PER_OWNER))
        );
        // A new version of a held record replaces it: no new slot, allowed.
        let mut newer = candidate(3, 1, sender);
        newer.replaces = true;
        assert_eq!(store.admit(&mut limits, &newer, false), Ok(Admit::Store));
        // Another owner is not held back; and once a record has gone (expired), its owner
        // may store another.
        assert_eq!(
            store.admit(&mut limits, &candidate(101, 2, sender), false),
            Ok(Admit::Store)
        );
        store.0.remove(&key(0));
        assert_eq!(store.admit(&mut limits, &one_more, false), Ok(Admit::Store));
    }

    #[test]
    fn records_go_only_where_they_belong() {
        let (mut limits, store) = (RecordLimits::default(), Store(HashSet::new()));
        let mut far = candidate(7, 1, Some(PeerId::random()));
        far.closer_known = K;
        assert_eq!(
            store.admit(&mut limits, &far, false),
            Err(RecordError::NotClosest)
        );
        far.closer_known = K - 1;
        assert_eq!(store.admit(&mut limits, &far, false), Ok(Admit::Store));
        // This peer's own records (its user's, or one a lookup found) are kept wherever.
        far.closer_known = K;
        far.sender = None;
        assert_eq!(store.admit(&mut limits, &far, false), Ok(Admit::Store));
    }

    #[test]
    fn a_sender_gets_a_budget_of_new_records_per_window() {
        let mut limits = RecordLimits::default();
        let store = Store(HashSet::new());
        let flooder = Some(PeerId::random());
        for n in 0..MAX_NEW_RECORDS_PER_SENDER {
            let c = candidate(n, n as u8, flooder);
            assert_eq!(store.admit(&mut limits, &c, false), Ok(Admit::Store), "{n}");
        }
        let c = candidate(1000, 9, flooder);
        assert_eq!(
            store.admit(&mut limits, &c, false),
            Err(RecordError::SenderCap(MAX_NEW_RECORDS_PER_SENDER))
        );
        // Others are unaffected; replacements do not count; the window passes.
        let other = candidate(1001, 9, Some(PeerId::random()));
        assert_eq!(store.admit(&mut limits, &other, false), Ok(Admit::Store));
        let mut replacement = candidate(5, 5, flooder);
        replacement.replaces = true;
        assert_eq!(
            store.admit(&mut limits, &replacement, false),
            Ok(Admit::Store)
        );
        let later = Instant::now() + SENDER_WINDOW + Duration::from_secs(1);
        let held = HeldRecords {
            exists: &|_| false,
            count: 0,
            farthest: None,
        };
        assert_eq!(limits.admit(&c, &held, later), Ok(Admit::Store));
    }

    #[test]
    fn a_full_store_keeps_the_closest() {
        let mut limits = RecordLimits::default();
        let store = Store((0..50).map(key).collect());
        let farthest = (0..50u32).max_by_key(|n| distance(*n)).unwrap();
        let nearest_new = (50..5000u32)
            .filter(|n| distance(*n) < distance(farthest))
            .min_by_key(|n| distance(*n))
            .unwrap();
        let c = candidate(nearest_new, 3, Some(PeerId::random()));
        assert_eq!(
            store.admit(&mut limits, &c, true),
            Ok(Admit::EvictThenStore(key(farthest)))
        );
        let farther_new = (50..5000u32)
            .find(|n| distance(*n) > distance(farthest))
            .unwrap();
        let c = candidate(farther_new, 3, Some(PeerId::random()));
        assert_eq!(
            store.admit(&mut limits, &c, true),
            Err(RecordError::StoreFull)
        );
    }

    #[test]
    fn expiry_is_never_past_the_ttl() {
        let now = Instant::now();
        assert_eq!(RecordLimits::expiry(None, now), now + RECORD_TTL);
        let soon = now + Duration::from_secs(60);
        assert_eq!(RecordLimits::expiry(Some(soon), now), soon);
        let forever = now + RECORD_TTL * 10;
        assert_eq!(RecordLimits::expiry(Some(forever), now), now + RECORD_TTL);
    }
}
