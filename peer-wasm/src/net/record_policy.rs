//! What a record must be to be stored here, and how the answers to one lookup are merged.
//! Pure: the event loop feeds it bytes from the wire and does what it says.
//!
//! The rule that matters most: an answer is checked against the key that was *asked for*,
//! never against the key the answering peer wrote into its answer. A peer on the lookup path
//! could otherwise answer every query with some other account's validly signed record (one it
//! was asked to store earlier) and make every free username look taken.

use std::collections::{HashSet, VecDeque};

use libp2p::PeerId;

use crate::record::{
    verify_value, FoundRecord, LetterBundle, RecordError, VerifiedRecord, MAX_BUNDLE_BYTES,
    MAX_LETTERS,
};

/// How many peers a lookup must hear from before "there is no such record" is believed: this
/// many, or every peer the walk tried when it tried fewer (a network of two tabs), and never
/// none. Three is what Kademlia's own record replication aims for below `k`, and it means a
/// lookup that reached only one or two peers while others did not answer (a tab still joining,
/// a network still forming, departed peers in the routing table) says "try again", never "no
/// such account" or "this name is free".
pub const SILENCE_QUORUM: usize = 3;

/// A lookup found nothing, but heard from too few peers for that to mean anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooFewHeard {
    /// Peers that hold the protocol and answered.
    pub(crate) heard: usize,
    /// Peers that had to answer.
    pub(crate) needed: usize,
}

/// The peers a lookup must hear from, given those it heard and those that did not answer.
pub(crate) fn needed(heard: usize, unreachable: usize) -> usize {
    SILENCE_QUORUM.min(heard + unreachable).max(1)
}

/// Whether `record` may be stored where `held` (the bytes stored under the same key, if any)
/// is: `Ok(true)` to store it, `Ok(false)` when it is the record already held.
///
/// A held copy that no longer verifies (it was checked when it came in, so this means the
/// rules changed) is replaced.
pub(crate) fn may_store(record: &VerifiedRecord, held: Option<&[u8]>) -> Result<bool, RecordError> {
    // The same bytes: the record already held, with no signature to check again (a lookup
    // keeps a copy of what it found, a holder is sent what it holds every 10 minutes).
    if held == Some(record.wire()) {
        return Ok(false);
    }
    let key = record.record().key();
    match held.map(|wire| VerifiedRecord::from_wire(&key, wire)) {
        Some(Ok(held)) => record.may_replace(&held),
        Some(Err(_)) | None => Ok(true),
    }
}

/// What a holder keeps under a recipient's letter key when `letter` arrives and `held` (the
/// bundle there, if any) is: per sharer the newest letter, as [`VerifiedRecord::may_replace`]
/// has it (a letter by the key a sharer handed over to replaces one by the key before, never
/// the reverse). `Ok(None)`: the letter is held already. Refused when it is older than its
/// sharer's letter held, or the bundle would pass [`MAX_LETTERS`] or [`MAX_BUNDLE_BYTES`].
///
/// A bundle that no longer verifies is replaced, as [`may_store`] replaces a record.
pub(crate) fn merge_letter(
    letter: &VerifiedRecord,
    held: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, RecordError> {
    let key = letter.record().key();
    let mut letters = held
        .and_then(|wire| verify_value(&key, wire).ok())
        .unwrap_or_default();
    let same_sharer = letters.iter().position(|held| {
        held.record().owner == letter.record().owner
            || letter.descends_from(&held.record().owner)
            || held.descends_from(&letter.record().owner)
    });
    match same_sharer {
        Some(at) => match letter.may_replace(&letters[at])? {
            false => return Ok(None),
            true => letters[at] = letter.clone(),
        },
        None if letters.len() >= MAX_LETTERS => return Err(RecordError::InboxFull),
        None => letters.push(letter.clone()),
    }
    let wire = LetterBundle::wire(&letters);
    if wire.len() > MAX_BUNDLE_BYTES {
        return Err(RecordError::InboxFull);
    }
    Ok(Some(wire))
}

/// The answers to one record lookup, merged per owner: for each key that signed a record
/// under the key asked for, the newest version seen and which holders vouched for it.
#[derive(Debug)]
pub(crate) struct GetAnswers {
    key: Vec<u8>,
    /// Per owner: the newest record, the remote peers that answered with it, and whether
    /// this peer holds a copy.
    seen: Vec<(VerifiedRecord, HashSet<PeerId>, bool)>,
    refused: usize,
    /// Remote peers that answered without a record.
    without: HashSet<PeerId>,
    /// The lookup ended before it finished (it timed out): Kademlia reports the peers that
    /// answered without a record only when it finishes.
    ended_early: bool,
    /// How many answers were checked by their signatures (not recalled from
    /// [`VerifiedValues`]), and how long the checks took (for `tests/bench/cluster.mjs
    /// --profile`).
    checks: usize,
    check_time: std::time::Duration,
}

/// The values this tab verified last, under their keys. The holders of a record mostly answer
/// a lookup with the same bytes (7 of 7 in the 8-tab cluster), and a lookup is often repeated
/// before the record changes (the page lists the files, then a download reloads the index to
/// confirm one): every answer was checked again, one RSA-3072 signature each and one more per
/// key hand-over it carries, 3 to 10 ms apiece in wasm on the tab's main thread, beside the
/// download it delays. A check depends on the key and the bytes alone (no clock, no state), so
/// the same bytes under the same key are recalled instead. What failed is not kept: a bad
/// answer is checked (and refused) each time.
#[derive(Debug, Default)]
pub(crate) struct VerifiedValues {
    /// Most recently used last: the key, the SHA-256 of the value, and what it verified as.
    recent: VecDeque<(Vec<u8>, [u8; 32], Vec<VerifiedRecord>)>,
}

impl VerifiedValues {
    /// How many values are kept: a tab looks up its own few records again and again (its
    /// index, its keys, its inbox). At most 16 values of at most [`MAX_BUNDLE_BYTES`], each
    /// kept decoded and as bytes: about 1.5 MiB at worst, a few hundred KiB in use.
    pub(crate) const CAPACITY: usize = 16;

    /// `wire` verified as the value under `key` ([`verify_value`]), recalled when it was
    /// verified before; `true` when it was checked now (not recalled).
    pub(crate) fn verify(
        &mut self,
        key: &[u8],
        wire: &[u8],
    ) -> (Result<Vec<VerifiedRecord>, RecordError>, bool) {
        // Refused before it is hashed.
        if wire.len() > MAX_BUNDLE_BYTES {
            return (Err(RecordError::TooLarge(wire.len())), true);
        }
        let digest = crate::crypto::sha256(wire);
        let known = self
            .recent
            .iter()
            .position(|(k, d, _)| *d == digest && k.as_slice() == key);
        if let Some(entry) = known.and_then(|at| self.recent.remove(at)) {
            let records = entry.2.clone();
            self.recent.push_back(entry);
            return (Ok(records), false);
        }
        let checked = verify_value(key, wire);
        if let Ok(records) = &checked {
            if self.recent.len() >= Self::CAPACITY {
                self.recent.pop_front();
            }
            self.recent
                .push_back((key.to_vec(), digest, records.clone()));
        }
        (checked, true)
    }
}

impl GetAnswers {
    /// Starts a lookup of the records under `key`.
    pub(crate) fn new(key: Vec<u8>) -> Self {
        Self {
            key,
            seen: Vec::new(),
            refused: 0,
            without: HashSet::new(),
            ended_early: false,
            checks: 0,
            check_time: std::time::Duration::ZERO,
        }
    }

    /// The key asked for.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// Notes that the lookup ended before it finished ([`GetAnswers::heard`]).
    pub(crate) fn ended_early(&mut self) {
        self.ended_early = true;
    }

    /// Every remote peer that answered, with a record or without (refused answers not
    /// counted): the peers the lookup heard near the key. None when the lookup ended early:
    /// only those that answered with a record are known then, which may be few and far
    /// from the key (a reader keeps a copy), and a put to them alone would miss its holders.
    pub(crate) fn heard(&self) -> HashSet<PeerId> {
        if self.ended_early {
            return HashSet::new();
        }
        let holders = self.seen.iter().flat_map(|(_, holders, _)| holders);
        holders.chain(&self.without).copied().collect()
    }

    /// Takes one holder's answer: `from` is who answered (`None`: this peer's own copy),
    /// `answered_key` the key it says the record is stored under, `wire` the record, checked
    /// unless `verified` recalls the same bytes under the same key. An answer for another key
    /// than the one asked for, or one that fails verification, is refused and counted; it
    /// never reaches the caller, and its sender does not count as heard.
    pub(crate) fn offer(
        &mut self,
        verified: &mut VerifiedValues,
        from: Option<PeerId>,
        answered_key: &[u8],
        wire: &[u8],
    ) -> Result<(), RecordError> {
        if answered_key != self.key.as_slice() {
            self.refused += 1;
            return Err(RecordError::WrongKey);
        }
        let started = web_time::Instant::now();
        // One record, or under a recipient's letter key a bundle of letters, one per sharer.
        let (checked, fresh) = verified.verify(&self.key, wire);
        if fresh {
            self.checks += 1;
            self.check_time += started.elapsed();
        }
        let candidates = match checked {
            Ok(candidates) => candidates,
            Err(e) => {
                self.refused += 1;
                return Err(e);
            }
        };
        for candidate in candidates {
            self.take(from, candidate);
        }
        Ok(())
    }

    fn take(&mut self, from: Option<PeerId>, candidate: VerifiedRecord) {
        let same_owner = self
            .seen
            .iter_mut()
            .find(|(held, ..)| held.record().owner == candidate.record().owner);
        let (_, holders, local) = match same_owner {
            Some(entry) => {
                if candidate.may_replace(&entry.0) == Ok(true) {
                    entry.0 = candidate;
                }
                entry
            }
            None => {
                self.seen.push((candidate, HashSet::new(), false));
                let last = self.seen.len() - 1;
                &mut self.seen[last]
            }
        };
        match from {
            Some(peer) => {
                holders.insert(peer);
            }
            None => *local = true,
        }
    }

    /// Peers that answered the lookup without a record.
    pub(crate) fn answered_without(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        self.without.extend(peers);
    }

    /// How many answers were checked by their signatures: a repeat of a value already
    /// verified is not.
    pub(crate) fn checks(&self) -> usize {
        self.checks
    }

    /// How long the signature checks took in all.
    pub(crate) fn check_time(&self) -> std::time::Duration {
        self.check_time
    }

    /// How many answers were refused.
    pub(crate) fn refused(&self) -> usize {
        self.refused
    }

    /// Per owner the newest record, the most widely held first (ties keep the order seen).
    ///
    /// Found records stand on their own (each is signed). An empty answer is given only if
    /// enough peers were heard ([`needed`]): `counts` says which peers count (those that hold
    /// the protocol, not the relay), `unreachable` how many peers the walk could not reach.
    pub(crate) fn finish(
        mut self,
        counts: impl Fn(&PeerId) -> bool,
        unreachable: usize,
    ) -> Result<Vec<FoundRecord>, TooFewHeard> {
        if self.seen.is_empty() {
            let heard = self.without.iter().filter(|p| counts(p)).count();
            let needed = needed(heard, unreachable);
            if heard < needed {
                return Err(TooFewHeard { heard, needed });
            }
        }
        let weight = |(_, holders, local): &(VerifiedRecord, HashSet<PeerId>, bool)| {
            holders.len() + usize::from(*local)
        };
        self.seen.sort_by_key(|e| std::cmp::Reverse(weight(e)));
        Ok(self
            .seen
            .into_iter()
            .map(|(record, holders, _)| FoundRecord {
                record,
                remote_holders: holders.len(),
            })
            .collect())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::OnceLock;

    use super::*;
    use crate::{
        crypto::rsa_keys::PrivateKey,
        record::{AccountId, RecordKind, SignedRecord},
    };

    fn key(n: u8) -> &'static PrivateKey {
        static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
        &KEYS.get_or_init(|| {
            (0..3)
                .map(|_| PrivateKey::generate_bits(2048).unwrap())
                .collect()
        })[usize::from(n)]
    }

    fn record(owner: u8, account: u8, seq: u64) -> SignedRecord {
        SignedRecord::sign(
            RecordKind::PublicKey,
            AccountId([account; 32]),
            seq,
            key(owner),
            Vec::new(),
        )
        .unwrap()
    }

    fn peer() -> Option<PeerId> {
        Some(PeerId::random())
    }

    fn everyone(_: &PeerId) -> bool {
        true
    }

    fn verified(r: &SignedRecord) -> VerifiedRecord {
        VerifiedRecord::from_wire(&r.key(), &r.to_wire()).unwrap()
    }

    /// The peers a lookup heard, where the next version of its record goes: those that
    /// answered with it or without it, never one whose answer was refused; and none when the
    /// lookup timed out (those without it are then unknown, those with it may be far).
    #[test]
    fn a_lookup_heard_those_that_answered_and_no_one_when_it_timed_out() {
        let wanted = record(0, 1, 1);
        let mut answers = GetAnswers::new(wanted.key());
        let holder = PeerId::random();
        answers
            .offer(
                &mut VerifiedValues::default(),
                Some(holder),
                &wanted.key(),
                &wanted.to_wire(),
            )
            .unwrap();
        let liar = PeerId::random();
        let forged = record(1, 2, 1);
        assert!(answers
            .offer(
                &mut VerifiedValues::default(),
                Some(liar),
                &wanted.key(),
                &forged.to_wire()
            )
            .is_err());
        let without: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        answers.answered_without(without.clone());
        let heard = answers.heard();
        assert_eq!(heard.len(), 4);
        assert!(heard.contains(&holder) && without.iter().all(|p| heard.contains(p)));
        assert!(!heard.contains(&liar));
        answers.ended_early();
        assert!(answers.heard().is_empty());
    }

    /// The holders of a record answer with the same bytes: verified once, every holder
    /// still counted, and the next lookup of the same record checks nothing. A value that
    /// differs by one byte is checked on its own (each time) and refused; the values kept are
    /// bounded, the oldest checked again.
    #[test]
    fn a_repeated_answer_is_verified_once_and_a_changed_one_is_checked_again() {
        let wanted = record(0, 1, 1);
        let wire = wanted.to_wire();
        let mut verified = VerifiedValues::default();
        let mut answers = GetAnswers::new(wanted.key());
        for _ in 0..7 {
            answers
                .offer(&mut verified, peer(), &wanted.key(), &wire)
                .unwrap();
        }
        answers
            .offer(&mut verified, None, &wanted.key(), &wire)
            .unwrap();
        assert_eq!(answers.checks(), 1);
        let mut tampered = wire.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        for _ in 0..2 {
            assert!(answers
                .offer(&mut verified, peer(), &wanted.key(), &tampered)
                .is_err());
        }
        assert_eq!((answers.checks(), answers.refused()), (3, 2));
        let found = answers.finish(everyone, 0).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].record.record(), &wanted);
        assert_eq!(found[0].remote_holders, 7);
        // The next lookup (a download confirming what the page listed): nothing to check.
        let mut again = GetAnswers::new(wanted.key());
        again
            .offer(&mut verified, peer(), &wanted.key(), &wire)
            .unwrap();
        assert_eq!(again.checks(), 0);
        // The same bytes under another key are not the same value: checked, and refused.
        let other = record(0, 2, 1).key();
        let mut elsewhere = GetAnswers::new(other.clone());
        assert!(elsewhere
            .offer(&mut verified, peer(), &other, &wire)
            .is_err());
        assert_eq!(elsewhere.checks(), 1);
        // Past the capacity the value used longest ago is checked again: `wanted`, recalled
        // halfway, outlives the first of the newer ones.
        let newer: Vec<SignedRecord> = (0..VerifiedValues::CAPACITY as u8)
            .map(|n| record(1, 10 + n, 1))
            .collect();
        for (n, value) in newer.iter().enumerate() {
            let (checked, fresh) = verified.verify(&value.key(), &value.to_wire());
            assert!(checked.is_ok() && fresh);
            if n == VerifiedValues::CAPACITY / 2 {
                assert!(!verified.verify(&wanted.key(), &wire).1, "recalled");
            }
        }
        assert!(
            !verified.verify(&wanted.key(), &wire).1,
            "used lately, kept"
        );
        let first = &newer[0];
        let (checked, fresh) = verified.verify(&first.key(), &first.to_wire());
        assert!(checked.is_ok() && fresh, "used longest ago, checked again");
    }

    #[test]
    fn an_answer_for_another_key_is_refused_whatever_key_it_names() {
        let asked = record(0, 1, 1).key();
        let other_account = record(1, 2, 1);
        let mut answers = GetAnswers::new(asked.clone());
        // The attack: a validly signed record of another account, under its own key...
        let liar = PeerId::random();
        assert_eq!(
            answers.offer(
                &mut VerifiedValues::default(),
                Some(liar),
                &other_account.key(),
                &other_account.to_wire()
            ),
            Err(RecordError::WrongKey)
        );
        // ...or claimed to be under the key asked for.
        assert_eq!(
            answers.offer(
                &mut VerifiedValues::default(),
                Some(liar),
                &asked,
                &other_account.to_wire()
            ),
            Err(RecordError::WrongKey)
        );
        assert_eq!(answers.refused(), 2);
        let honest: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        answers.answered_without(honest);
        let found = answers.finish(everyone, 0).unwrap();
        assert!(found.is_empty(), "the name must look free");
    }

    #[test]
    fn answers_merge_per_owner_newest_first_most_held_first() {
        let asked = record(0, 1, 1).key();
        let mut answers = GetAnswers::new(asked.clone());
        let squatter = record(1, 1, 7);
        answers
            .offer(
                &mut VerifiedValues::default(),
                peer(),
                &asked,
                &squatter.to_wire(),
            )
            .unwrap();
        answers
            .offer(
                &mut VerifiedValues::default(),
                None,
                &asked,
                &record(0, 1, 1).to_wire(),
            )
            .unwrap();
        for seq in [3, 2] {
            answers
                .offer(
                    &mut VerifiedValues::default(),
                    peer(),
                    &asked,
                    &record(0, 1, seq).to_wire(),
                )
                .unwrap();
        }
        assert!(answers
            .offer(&mut VerifiedValues::default(), peer(), &asked, b"\xffjunk")
            .is_err());
        let merged = answers.finish(everyone, 5).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0].record.record().seq,
            3,
            "three holders, newest kept"
        );
        assert_eq!(merged[0].record.record().owner, record(0, 1, 1).owner);
        assert_eq!(
            merged[0].remote_holders, 2,
            "its own copy is not a remote holder"
        );
        assert_eq!(merged[1].record.record(), &squatter);
        assert_eq!(merged[1].remote_holders, 1);
    }

    #[test]
    fn nothing_found_means_nothing_only_when_enough_peers_were_heard() {
        let asked = record(0, 1, 1).key();
        let silence = |heard: usize, unreachable: usize| {
            let mut answers = GetAnswers::new(asked.clone());
            answers.answered_without((0..heard).map(|_| PeerId::random()));
            answers
                .finish(everyone, unreachable)
                .map(|found| found.len())
        };
        // A tab that reached nobody (alone with the relay, or still joining) knows nothing.
        assert_eq!(
            silence(0, 0),
            Err(TooFewHeard {
                heard: 0,
                needed: 1
            })
        );
        // Two tabs: the other one is every peer there is.
        assert_eq!(silence(1, 0), Ok(0));
        // One answer while three peers did not: a network in churn, not an answer.
        assert_eq!(
            silence(1, 3),
            Err(TooFewHeard {
                heard: 1,
                needed: 3
            })
        );
        assert_eq!(
            silence(2, 1),
            Err(TooFewHeard {
                heard: 2,
                needed: 3
            })
        );
        assert_eq!(silence(3, 17), Ok(0));
        // Peers that do not count (the relay, which holds no records) are not heard.
        let mut answers = GetAnswers::new(asked.clone());
        let relay = PeerId::random();
        answers.answered_without([relay]);
        assert_eq!(
            answers.finish(|p| *p != relay, 0).map(|f| f.len()),
            Err(TooFewHeard {
                heard: 0,
                needed: 1
            })
        );
        // A record found stands on its own: it is signed.
        let mut answers = GetAnswers::new(asked.clone());
        answers
            .offer(
                &mut VerifiedValues::default(),
                peer(),
                &asked,
                &record(0, 1, 1).to_wire(),
            )
            .unwrap();
        assert_eq!(answers.finish(everyone, 9).map(|f| f.len()), Ok(1));
    }

    #[test]
    fn storing_follows_the_replacement_rules() {
        let v1 = verified(&record(0, 1, 1));
        let v2 = verified(&record(0, 1, 2));
        assert_eq!(may_store(&v1, None), Ok(true));
        assert_eq!(may_store(&v2, Some(v1.wire())), Ok(true));
        assert_eq!(may_store(&v1, Some(v1.wire())), Ok(false));
        assert_eq!(
            may_store(&v1, Some(v2.wire())),
            Err(RecordError::Stale { new: 1, held: 2 })
        );
        let thief = verified(&record(2, 1, 9));
        assert_eq!(
            may_store(&thief, Some(v1.wire())),
            Err(RecordError::NotOwner)
        );
        // A held copy that no longer verifies is replaced.
        assert_eq!(may_store(&v1, Some(b"garbage")), Ok(true));
    }

    #[test]
    fn a_letter_bundle_keeps_each_sharers_newest_letter_within_its_limits() {
        use crate::record::{verify_value, MAX_LETTERS};
        let letter = |owner: u8, seq: u64| {
            let r = SignedRecord::sign(
                RecordKind::Letter,
                AccountId([9; 32]),
                seq,
                key(owner),
                vec![owner; 100],
            )
            .unwrap();
            verified(&r)
        };
        let key_of = letter(0, 1).record().key();
        let one = merge_letter(&letter(0, 1), None).unwrap().unwrap();
        let bobs = letter(1, 5);
        let two = merge_letter(&bobs, Some(&one)).unwrap().unwrap();
        assert_eq!(verify_value(&key_of, &two).unwrap().len(), 2, "two sharers");
        // The same letter again changes nothing; a newer one replaces its sharer's only.
        assert_eq!(merge_letter(&bobs, Some(&two)), Ok(None));
        let three = merge_letter(&letter(0, 2), Some(&two)).unwrap().unwrap();
        let held = verify_value(&key_of, &three).unwrap();
        assert_eq!(
            held.iter().map(|l| l.record().seq).collect::<Vec<_>>(),
            [2, 5]
        );
        // A replay (older than the sharer's letter held) is refused.
        assert_eq!(
            merge_letter(&letter(0, 1), Some(&three)),
            Err(RecordError::Stale { new: 1, held: 2 })
        );
        // A bundle is all letters for its key: a record of another kind in one is refused.
        let stranger = record(2, 9, 1);
        let mixed = crate::record::LetterBundle::wire(&[letter(0, 1), verified(&stranger)]);
        assert!(verify_value(&key_of, &mixed).is_err());
        // Full: a new sharer is refused, the ones held still replace their letters.
        let many: Vec<VerifiedRecord> = (0..MAX_LETTERS)
            .map(|_| {
                let k = PrivateKey::generate_bits(2048).unwrap();
                let r = SignedRecord::sign(RecordKind::Letter, AccountId([9; 32]), 1, &k, vec![1])
                    .unwrap();
                verified(&r)
            })
            .collect();
        let full = crate::record::LetterBundle::wire(&many);
        assert_eq!(
            merge_letter(&letter(0, 1), Some(&full)),
            Err(RecordError::InboxFull)
        );
    }
}
