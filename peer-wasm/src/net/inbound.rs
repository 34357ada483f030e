//! Inbound requests handed to the application (block requests need async storage), until it
//! answers: which are waiting, for whom, and how many per peer. Pure bookkeeping; the event
//! loop owns the queue to the application and the channels to answer on.
//!
//! One peer may have at most [`PER_PEER`] requests waiting: a peer that sends more is told it
//! is busy, so one spammer cannot fill the application's queue (64) and make this holder busy
//! for everyone; it takes 8 peers to fill it. An uploader keeps 4 blocks in flight, so 8 is
//! twice what an honest peer needs.

use std::collections::HashMap;

use libp2p::PeerId;

/// Requests of one peer waiting for the application at once.
pub(crate) const PER_PEER: usize = 8;

/// The waiting requests, each with `A`, who waits for its answer.
#[derive(Debug)]
pub(crate) struct Waiting<A> {
    by_id: HashMap<u64, (PeerId, A)>,
    per_peer: HashMap<PeerId, usize>,
    next_id: u64,
    /// Requests one peer may have waiting ([`PER_PEER`] unless tuned).
    limit: usize,
}

impl<A> Default for Waiting<A> {
    fn default() -> Self {
        Self::with_limit(PER_PEER)
    }
}

/// A peer has as many requests waiting as it may ([`PER_PEER`] unless tuned).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Busy {
    /// How many.
    pub(crate) waiting: usize,
}

impl<A> Waiting<A> {
    /// No request waiting yet; at most `limit` per peer.
    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            by_id: HashMap::new(),
            per_peer: HashMap::new(),
            next_id: 0,
            limit: limit.max(1),
        }
    }

    /// The id for `peer`'s next request, unless it has too many waiting. The request counts
    /// only once [`Waiting::insert`]ed (handing it on may still fail).
    pub(crate) fn next_id(&mut self, peer: &PeerId) -> Result<u64, Busy> {
        let waiting = self.per_peer.get(peer).copied().unwrap_or(0);
        if waiting >= self.limit {
            return Err(Busy { waiting });
        }
        let id = self.next_id;
        self.next_id += 1;
        Ok(id)
    }

    /// Request `id` of `peer` was handed to the application; `asker` waits for the answer.
    pub(crate) fn insert(&mut self, id: u64, peer: PeerId, asker: A) {
        if self.by_id.insert(id, (peer, asker)).is_none() {
            *self.per_peer.entry(peer).or_insert(0) += 1;
        }
    }

    /// The application answered request `id`: who asked, and who waits for the answer.
    pub(crate) fn take(&mut self, id: u64) -> Option<(PeerId, A)> {
        let (peer, asker) = self.by_id.remove(&id)?;
        if let Some(waiting) = self.per_peer.get_mut(&peer) {
            *waiting = waiting.saturating_sub(1);
            if *waiting == 0 {
                self.per_peer.remove(&peer);
            }
        }
        Some((peer, asker))
    }
}

// Native only: the browser test runner runs #[wasm_bindgen_test]s.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_tuned_limit_is_the_limit() {
        let mut waiting = Waiting::with_limit(2);
        let peer = PeerId::random();
        for n in 0..2 {
            let id = waiting.next_id(&peer).unwrap();
            waiting.insert(id, peer, n);
        }
        assert_eq!(waiting.next_id(&peer), Err(Busy { waiting: 2 }));
    }

    #[test]
    fn one_peer_is_busy_at_its_limit_while_others_are_not() {
        let mut waiting = Waiting::default();
        let (spammer, honest) = (PeerId::random(), PeerId::random());
        let mut ids = Vec::new();
        for n in 0..PER_PEER {
            let id = waiting.next_id(&spammer).unwrap();
            waiting.insert(id, spammer, n);
            ids.push(id);
        }
        assert_eq!(waiting.next_id(&spammer), Err(Busy { waiting: PER_PEER }));
        let id = waiting.next_id(&honest).unwrap();
        assert!(!ids.contains(&id), "ids are never reused");
        waiting.insert(id, honest, 99);

        // An answer frees one place for the spammer.
        assert_eq!(waiting.take(ids[3]), Some((spammer, 3)));
        assert_eq!(waiting.take(ids[3]), None, "answered once");
        assert!(waiting.next_id(&spammer).is_ok());
        assert_eq!(waiting.take(id), Some((honest, 99)));
        assert!(
            !waiting.per_peer.contains_key(&honest),
            "no entry for a peer with none waiting"
        );
    }

    #[test]
    fn an_id_that_was_never_handed_on_does_not_count() {
        let mut waiting: Waiting<()> = Waiting::default();
        let peer = PeerId::random();
        for _ in 0..3 * PER_PEER {
            waiting.next_id(&peer).unwrap();
        }
        assert!(waiting.next_id(&peer).is_ok());
    }
}
