//! When a peer whose routing table is thin walks the DHT again.
//!
//! libp2p-kad walks on its own when a peer enters a table of fewer than k (throttled), and
//! every 5 minutes. A newcomer whose first walk met only tabs that had closed learns of no new
//! peer, so nothing enters and it would wait 5 minutes with the live network right there. So
//! after each walk that leaves fewer than [`FULL`] peers known, a walk towards its own id
//! follows after a wait that doubles from 1 s to 60 s, and starts again from 1 s whenever the
//! table grew. In a network of fewer than 20 tabs that is one walk a minute once settled: a
//! request to each tab. (Kademlia's bootstrap, a walk into every farther bucket besides, is
//! left to its own 5-minute schedule: 5 lookups in the 8-tab cluster instead of 1.)

use std::{collections::HashSet, time::Duration};

use libp2p::PeerId;
use web_time::Instant;

use crate::backoff::Backoff;

/// A table with this many peers (Kademlia's k) is full enough: no extra walks.
pub(crate) const FULL: usize = 20;
/// The first wait after a walk, doubling up to [`MAX_WAIT`].
pub(crate) const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between walks while the table is thin.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// The schedule of extra walks.
#[derive(Debug)]
pub(crate) struct Rewalk {
    backoff: Backoff,
    known_before: usize,
}

impl Default for Rewalk {
    fn default() -> Self {
        Self {
            backoff: Backoff::new(FIRST_WAIT, MAX_WAIT),
            known_before: 0,
        }
    }
}

impl Rewalk {
    /// Extra walks that wait `first` (at least 100 ms), doubling up to `max`.
    pub(crate) fn with_waits(first: Duration, max: Duration) -> Self {
        let first = first.max(Duration::from_millis(100));
        Self {
            backoff: Backoff::new(first, max.max(first)),
            known_before: 0,
        }
    }

    /// A walk ended with `known` peers in the routing table: when to walk again, if at all.
    pub(crate) fn after_walk(&mut self, known: usize, now: Instant) -> Option<Instant> {
        if known > self.known_before {
            self.backoff.reset();
        }
        self.known_before = known;
        if known >= FULL {
            return None;
        }
        Some(now + self.backoff.next_delay())
    }
}

/// A peer cut off from every other walks the DHT again on reconnecting to a bootstrap peer, at
/// most this often.
pub(crate) const REBOOTSTRAP_AFTER: Duration = Duration::from_secs(5 * 60);

/// When this peer walks the DHT: on its first connection to a bootstrap peer; again when a
/// bootstrap peer is the way back in after being cut off from every peer (at most every
/// [`REBOOTSTRAP_AFTER`]); and extra walks while the routing table is thin ([`Rewalk`]).
///
/// Connections to a bootstrap peer come and go like any other (idle connections close):
/// walking each time one opened made 1,000 native peers keep two cores busy with handshakes.
/// Kademlia refreshes the routing table on its own schedule after the first walk.
#[derive(Debug)]
pub(crate) struct Walks {
    bootstrap_peers: HashSet<PeerId>,
    last: Option<Instant>,
    /// When the last walk refreshing the whole table ended ([`super::table_answer`]).
    refreshed: Option<Instant>,
    rewalk: Rewalk,
    rebootstrap_after: Duration,
}

impl Walks {
    /// The walks of a peer that bootstraps from `bootstrap_peers`.
    pub(crate) fn new(bootstrap_peers: HashSet<PeerId>) -> Self {
        Self {
            bootstrap_peers,
            last: None,
            refreshed: None,
            rewalk: Rewalk::default(),
            rebootstrap_after: REBOOTSTRAP_AFTER,
        }
    }

    /// These walks, paced as `tuning` says.
    pub(crate) fn tuned(mut self, tuning: &super::Tuning) -> Self {
        let (first, max) = tuning.rewalk_waits;
        self.rewalk = Rewalk::with_waits(first, max);
        self.rebootstrap_after = tuning.rebootstrap_after;
        self
    }

    /// Whether to walk now that the first connection to `peer` opened; `cut_off` says whether
    /// it is the only peer connected (asked only of a bootstrap peer: counting connections on
    /// every new one costs a walk over them all).
    pub(crate) fn on_first_connection(
        &self,
        peer: &PeerId,
        cut_off: impl FnOnce() -> bool,
        now: Instant,
    ) -> bool {
        if !self.bootstrap_peers.contains(peer) {
            return false;
        }
        match self.last {
            None => true,
            Some(at) => now.saturating_duration_since(at) >= self.rebootstrap_after && cut_off(),
        }
    }

    /// A walk started.
    pub(crate) fn walked(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// A walk ended with `known` peers in the table: when to walk again, if at all
    /// ([`Rewalk::after_walk`]).
    pub(crate) fn after_walk(&mut self, known: usize, now: Instant) -> Option<Instant> {
        self.rewalk.after_walk(known, now)
    }

    /// A walk refreshing every bucket of the table ended.
    pub(crate) fn refreshed(&mut self, now: Instant) {
        self.refreshed = Some(now);
    }

    /// Whether the table was refreshed recently enough that a bucket with room lists every
    /// live peer in its range ([`super::table_answer::TRUSTED_FOR`]).
    pub(crate) fn table_trusted(&self, now: Instant) -> bool {
        self.refreshed
            .is_some_and(|at| now.saturating_duration_since(at) < super::table_answer::TRUSTED_FOR)
    }
}

// Native only: the browser test runner runs #[wasm_bindgen_test]s.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn waits(rewalk: &mut Rewalk, known: &[usize]) -> Vec<Option<u64>> {
        let now = Instant::now();
        known
            .iter()
            .map(|k| {
                rewalk
                    .after_walk(*k, now)
                    .map(|at| at.duration_since(now).as_secs())
            })
            .collect()
    }

    #[test]
    fn a_thin_table_walks_again_sooner_when_it_grows_and_not_at_all_when_full() {
        let mut rewalk = Rewalk::default();
        // Alone with departed peers: 1, 2, 4 ... up to a minute.
        assert_eq!(
            waits(&mut rewalk, &[2, 2, 2, 2, 2, 2, 2, 2]),
            [1, 2, 4, 8, 16, 32, 60, 60].map(Some)
        );
        // A walk that found someone new starts again from 1 s.
        assert_eq!(waits(&mut rewalk, &[3, 3]), [Some(1), Some(2)]);
        // A peer leaving is no reason to hurry.
        assert_eq!(waits(&mut rewalk, &[2]), [Some(4)]);
        // Full: no extra walk, and the next thin walk starts from 1 s again.
        assert_eq!(waits(&mut rewalk, &[FULL, 25, 5]), [None, None, Some(1)]);
    }

    #[test]
    fn a_bootstrap_peer_starts_the_first_walk_and_later_only_a_way_back_in() {
        let now = Instant::now();
        let (bootstrap, other) = (PeerId::random(), PeerId::random());
        let mut walks = Walks::new(HashSet::from([bootstrap]));
        let (alone, not_alone) = (|| true, || false);
        assert!(
            !walks.on_first_connection(&other, alone, now),
            "not a bootstrap peer"
        );
        assert!(
            walks.on_first_connection(&bootstrap, not_alone, now),
            "the first walk"
        );
        walks.walked(now);
        let later = now + REBOOTSTRAP_AFTER;
        assert!(
            !walks.on_first_connection(&bootstrap, not_alone, later),
            "others connected"
        );
        assert!(
            !walks.on_first_connection(&bootstrap, alone, now + Duration::from_secs(60)),
            "cut off, but walked a minute ago"
        );
        assert!(
            walks.on_first_connection(&bootstrap, alone, later),
            "the way back in"
        );
    }
}
