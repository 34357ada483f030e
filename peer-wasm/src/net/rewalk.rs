//! When a peer whose routing table is thin walks the DHT again.
//!
//! libp2p-kad walks on its own when a peer enters a table of fewer than k (throttled), and
//! every 5 minutes. A newcomer whose first walk met only tabs that had closed learns of no new
//! peer, so nothing enters and it would wait 5 minutes with the live network right there. So
//! after each walk that leaves fewer than [`FULL`] peers known, another follows after a wait
//! that doubles from 1 s to 60 s, and starts again from 1 s whenever the table grew. In a
//! network of fewer than 20 tabs that is one walk a minute once settled: a few requests.

use std::time::Duration;

use web_time::Instant;

use crate::backoff::Backoff;

/// A table with this many peers (Kademlia's k) is full enough: no extra walks.
pub(crate) const FULL: usize = 20;
/// The first wait after a walk, doubling up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between walks while the table is thin.
const MAX_WAIT: Duration = Duration::from_secs(60);

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
}
