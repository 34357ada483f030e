//! Audited donations: a pledge counts by what its peer shows, not by what it says. A holder
//! deciding how much to hold for an owner counts each pledge by the audits of the pledging peer
//! (each a request for a sample of what it holds, and a storage challenge on each sampled block,
//! [`crate::audit`]): a peer that never answers (a key minted for the pledge, with no browser
//! behind it) counts nothing, one that fails a challenge counts nothing for an hour, and one
//! that answers counts by the share of audits it answered, as Wuala counted donations by the
//! time a machine was online. Pure: the holder records outcomes and asks for verdicts with
//! `now`; the audits themselves run beside the holder ([`crate::holder`]).
//!
//! The formula, per holder and owner: allowance = (Σ counted(p) + min(Σ unaudited p.bytes,
//! [`PROVISIONAL`])) / 3 + 8 MiB slack over the owner's pledges p (one per peer), where for a
//! peer audited at least once counted(p) = p.bytes × u(p), or 0 for [`FAILED_FOR`] after a
//! failed challenge; u(p) starts at 1 (answered) or 0 (silent) and moves a quarter of the way
//! to each new outcome (1 answered, 0 silent). The auditor asks a connected peer's unanswered
//! first audit again before recording it ([`crate::holder`]), so a busy tab is not taken for
//! an empty key.

use std::collections::HashMap;

use libp2p::PeerId;
use web_time::{Duration, Instant};

/// What an unaudited pledge counts for until its peer's first audit (which starts at once):
/// enough for a new browser's first blocks to be placed while the holder checks it (blocks
/// arrive at a few MiB/s; an audit takes one or two round trips), too little for a minted key
/// to be worth much.
pub const PROVISIONAL: u64 = 64 * 1024 * 1024;
/// How often one peer is audited again, at most (only when an owner it pledges for stores).
pub const AUDIT_EVERY: Duration = Duration::from_secs(10 * 60);
/// How long a failed storage challenge voids a peer's pledges.
pub const FAILED_FOR: Duration = Duration::from_secs(60 * 60);
/// Weight of each new audit in a peer's online share.
const ALPHA: f64 = 0.25;
/// Peers remembered; the least recently audited are forgotten first.
pub const MAX_TRACKED: usize = 4096;

/// What one audit of a pledging peer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It answered, and proved every block it said it holds.
    Answered,
    /// It did not answer (offline, or no browser behind the key).
    Silent,
    /// It answered with a block it could not prove.
    FailedChallenge,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The share of audits answered, moving by [`ALPHA`].
    online: f64,
    last: Instant,
    failed_at: Option<Instant>,
}

/// What a holder knows of pledging peers.
#[derive(Debug, Default)]
pub struct Book {
    peers: HashMap<PeerId, Entry>,
}

impl Book {
    /// Records an audit of `peer`.
    pub fn record(&mut self, peer: PeerId, outcome: Outcome, now: Instant) {
        let answered = f64::from(u8::from(outcome == Outcome::Answered));
        let entry = self.peers.entry(peer).or_insert(Entry {
            online: answered,
            last: now,
            failed_at: None,
        });
        entry.online += ALPHA * (answered - entry.online);
        entry.last = now;
        if outcome == Outcome::FailedChallenge {
            entry.failed_at = Some(now);
        }
        if self.peers.len() > MAX_TRACKED {
            if let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(p, _)| *p)
            {
                self.peers.remove(&oldest);
            }
        }
    }

    /// What an owner's donors (peer -> pledged bytes) count for now, in all: each audited one
    /// by its audits, the unaudited ones together at most [`PROVISIONAL`] (so minting many
    /// keys buys no more than one while they wait for their audits).
    pub fn donated<'a>(
        &self,
        donors: impl IntoIterator<Item = (&'a PeerId, &'a u64)>,
        now: Instant,
    ) -> u64 {
        let mut audited = 0u64;
        let mut provisional = 0u64;
        for (peer, bytes) in donors {
            match self.peers.contains_key(peer) {
                true => audited = audited.saturating_add(self.counted(peer, *bytes, now)),
                false => provisional = provisional.saturating_add(*bytes),
            }
        }
        audited.saturating_add(provisional.min(PROVISIONAL))
    }

    /// What an owner's donors count for when a holder repairing one of the owner's blocks
    /// hands it here: at least what [`Book::donated`] counts, and the pledges of peers that
    /// never failed a challenge together up to [`PROVISIONAL`], even when they are silent.
    /// The owner of a block being repaired is most likely offline, and its donating browser
    /// with it: counted by audits alone, its pledges would count nothing and the network
    /// could not keep the files of someone who closed their tab. A holder so keeps up to
    /// 64 MiB / 3 + slack (29 MiB) of repaired blocks per owner, no more than a minted key
    /// gets from every holder before its first audit anyway.
    pub fn kept<'a>(
        &self,
        donors: impl IntoIterator<Item = (&'a PeerId, &'a u64)> + Clone,
        now: Instant,
    ) -> u64 {
        let unfailed: u64 = donors
            .clone()
            .into_iter()
            .filter(|(peer, _)| {
                !self.peers.get(peer).is_some_and(|e| {
                    e.failed_at
                        .is_some_and(|at| now.saturating_duration_since(at) < FAILED_FOR)
                })
            })
            .fold(0u64, |sum, (_, bytes)| sum.saturating_add(*bytes));
        self.donated(donors, now).max(unfailed.min(PROVISIONAL))
    }

    /// What a pledge of `bytes` by `peer` counts for now.
    pub fn counted(&self, peer: &PeerId, bytes: u64, now: Instant) -> u64 {
        let Some(entry) = self.peers.get(peer) else {
            return bytes.min(PROVISIONAL);
        };
        if entry
            .failed_at
            .is_some_and(|at| now.saturating_duration_since(at) < FAILED_FOR)
        {
            return 0;
        }
        (bytes as f64 * entry.online.clamp(0.0, 1.0)) as u64
    }

    /// Whether `peer` was audited at least once (and not forgotten since).
    pub fn knows(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Whether `peer` is due for an audit (never audited, or not for [`AUDIT_EVERY`]).
    pub fn due(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers
            .get(peer)
            .is_none_or(|e| now.saturating_duration_since(e.last) >= AUDIT_EVERY)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn a_pledge_counts_by_its_peers_audits() {
        let mut book = Book::default();
        let (honest, minted, dropper) = (PeerId::random(), PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        // Before any audit: provisional, and due.
        assert_eq!(book.counted(&minted, 5 * GIB, t0), PROVISIONAL);
        assert!(book.due(&minted, t0));
        book.record(honest, Outcome::Answered, t0);
        book.record(minted, Outcome::Silent, t0);
        book.record(dropper, Outcome::FailedChallenge, t0);
        assert_eq!(book.counted(&honest, 5 * GIB, t0), 5 * GIB);
        assert_eq!(book.counted(&minted, 5 * GIB, t0), 0);
        assert_eq!(book.counted(&dropper, 5 * GIB, t0), 0);
        assert!(!book.due(&honest, t0 + AUDIT_EVERY / 2));
        assert!(book.due(&honest, t0 + AUDIT_EVERY));
        // A failed challenge voids the pledge for an hour, whatever the answers meanwhile.
        let later = t0 + AUDIT_EVERY;
        book.record(dropper, Outcome::Answered, later);
        assert_eq!(book.counted(&dropper, GIB, later), 0);
        assert!(book.counted(&dropper, GIB, t0 + FAILED_FOR) > 0);
    }

    #[test]
    fn the_online_share_follows_the_audits_answered() {
        let mut book = Book::default();
        let peer = PeerId::random();
        let mut now = Instant::now();
        book.record(peer, Outcome::Answered, now);
        // Offline for every audit after: its pledge fades, a quarter of the way each time.
        let mut last = book.counted(&peer, GIB, now);
        for _ in 0..8 {
            now += AUDIT_EVERY;
            book.record(peer, Outcome::Silent, now);
            let counted = book.counted(&peer, GIB, now);
            assert!(counted < last, "{counted} < {last}");
            last = counted;
        }
        assert!(last < GIB / 8, "{last}");
        // Back online half the time: it settles near half.
        for i in 0..40 {
            now += AUDIT_EVERY;
            let outcome = if i % 2 == 0 {
                Outcome::Answered
            } else {
                Outcome::Silent
            };
            book.record(peer, outcome, now);
        }
        let share = book.counted(&peer, GIB, now) as f64 / GIB as f64;
        assert!((0.35..0.65).contains(&share), "{share}");
    }

    #[test]
    fn a_repaired_block_is_kept_for_an_offline_owner_up_to_the_provisional_share() {
        let mut book = Book::default();
        let now = Instant::now();
        let (offline, dropper, honest) = (PeerId::random(), PeerId::random(), PeerId::random());
        book.record(offline, Outcome::Silent, now);
        book.record(dropper, Outcome::FailedChallenge, now);
        book.record(honest, Outcome::Answered, now);
        let one = |peer: PeerId, bytes: u64| vec![(peer, bytes)];
        let count =
            |donors: &Vec<(PeerId, u64)>| book.kept(donors.iter().map(|(p, b)| (p, b)), now);
        // Silent: counts nothing for an upload, but its provisional share for a repair.
        assert_eq!(
            book.donated(one(offline, GIB).iter().map(|(p, b)| (p, b)), now),
            0
        );
        assert_eq!(count(&one(offline, GIB)), PROVISIONAL);
        assert_eq!(count(&one(offline, PROVISIONAL / 2)), PROVISIONAL / 2);
        // A failed challenge still counts nothing; an answering peer counts in full.
        assert_eq!(count(&one(dropper, GIB)), 0);
        assert_eq!(count(&one(honest, GIB)), GIB);
    }

    #[test]
    fn the_book_is_bounded() {
        let mut book = Book::default();
        let now = Instant::now();
        for i in 0..MAX_TRACKED + 10 {
            book.record(
                PeerId::random(),
                Outcome::Answered,
                now + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(book.peers.len(), MAX_TRACKED);
    }

    #[test]
    fn minted_keys_waiting_for_their_audit_count_as_one_provisional_pledge() {
        let mut book = Book::default();
        let now = Instant::now();
        let honest = PeerId::random();
        book.record(honest, Outcome::Answered, now);
        let minted: Vec<(PeerId, u64)> = (0..50).map(|_| (PeerId::random(), 5 * GIB)).collect();
        let mut donors: Vec<(PeerId, u64)> = minted.clone();
        donors.push((honest, GIB));
        let total = book.donated(donors.iter().map(|(p, b)| (p, b)), now);
        assert_eq!(total, GIB + PROVISIONAL);
        // Once audited and silent, they count nothing.
        for (peer, _) in &minted {
            book.record(*peer, Outcome::Silent, now);
        }
        assert_eq!(book.donated(donors.iter().map(|(p, b)| (p, b)), now), GIB);
    }
}
