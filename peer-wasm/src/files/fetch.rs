//! Fetching one sealed block: from the holders its reference lists, then from the peers
//! nearest its address, checking each answer against the address and the file key (a bad or
//! missing copy moves on). A holder that is slow to answer (busy, on a poor link, or stalling
//! on purpose) does not hold the block up for the whole [`Settings::fetch_deadline`]: once
//! [`Settings::hedge_after`] passes with no answer, the next peer is asked as well, and the
//! first good copy wins. The peers a download found slow are asked last for its later blocks
//! ([`SlowPeers`]), so a stalling holder costs a download one hedge, not one per block.

use std::collections::{HashSet, VecDeque};

use futures::{
    future::{select, Either},
    stream::FuturesUnordered,
};

use super::*;

/// Fetches a block from its holders (then from whoever is closest to its address).
/// Needs no account: a share link's guest fetches with it too.
pub(super) async fn fetch<N: Network>(
    client: &N,
    settings: &Settings,
    key: &SymmetricKey,
    file: &FileId,
    position: u64,
    block: &BlockRef,
) -> Result<Vec<u8>, Attempts> {
    let slow = SlowPeers::default();
    fetch_with(client, settings, &[key], file, position, block, &slow).await
}

/// [`fetch()`], opening with the first of `keys` that fits (the index, after a password change),
/// and asking the listed holders `slow` names after the others, noting there the peers it
/// finds slow (and those that prove quick again).
pub(super) async fn fetch_with<N: Network>(
    client: &N,
    settings: &Settings,
    keys: &[&SymmetricKey],
    file: &FileId,
    position: u64,
    block: &BlockRef,
    slow: &SlowPeers,
) -> Result<Vec<u8>, Attempts> {
    let mut peers = Candidates::listed(block, slow);
    // The peers asked that have not answered yet.
    let mut waiting: Vec<PeerId> = Vec::new();
    // What each peer asked did: the listed holders, then the others near the address.
    let mut attempts = Attempts::default();
    let ask = |peer: PeerId| async move {
        let asked = web_time::Instant::now();
        let request = client.request(peer, Request::FetchBlock { id: block.id });
        let answer = with_deadline(settings.fetch_deadline, request).await;
        (peer, answer, asked)
    };
    let mut asking = FuturesUnordered::new();
    loop {
        if asking.is_empty() {
            match peers.next(client, block).await {
                Some(peer) => {
                    waiting.push(peer);
                    asking.push(ask(peer));
                }
                None => return Err(attempts),
            }
        }
        let hedge = futures_timer::Delay::new(settings.hedge_after);
        let (peer, answer, asked) = match select(asking.next(), hedge).await {
            Either::Left((Some(answered), _)) => answered,
            Either::Left((None, _)) => continue,
            Either::Right(_) => {
                // Those asked are slow: the next peer too (they may still answer first).
                waiting.iter().for_each(|peer| slow.mark(*peer));
                if let Some(peer) = peers.next(client, block).await {
                    tracing::debug!(
                        position,
                        asked = peers.tried(),
                        "a slow holder: asking another too"
                    );
                    waiting.push(peer);
                    asking.push(ask(peer));
                }
                continue;
            }
        };
        waiting.retain(|p| *p != peer);
        let bytes = match answer {
            Ok(Response::Block { bytes }) => bytes,
            Ok(Response::Refused { reason }) => {
                attempts.push(peer, PeerFailure::Refused(reason));
                continue;
            }
            Ok(other) => {
                attempts.push(peer, PeerFailure::Unexpected(other.kind()));
                continue;
            }
            Err(e) => {
                attempts.push(peer, PeerFailure::Net(e));
                continue;
            }
        };
        let fetched = web_time::Instant::now();
        match open_with_keys(keys, file, position, &block.id, &bytes).await {
            Ok(plain) => {
                if fetched - asked < settings.hedge_after {
                    slow.clear(&peer);
                }
                // Where a fetched block's time goes, for `tests/bench/cluster.mjs --profile`.
                tracing::debug!(
                    target: crate::TIMING,
                    position,
                    asked = peers.tried(),
                    fetch_ms = (fetched - asked).as_millis() as u64,
                    open_ms = fetched.elapsed().as_millis() as u64,
                    "block fetched"
                );
                return Ok(plain);
            }
            Err(error) => {
                tracing::warn!(%peer, "bad block from holder: {error}");
                attempts.push(peer, PeerFailure::BadCopy(error));
            }
        }
    }
}

/// Checks `bytes` against `id` and opens them as piece `position` of `file` with the first of
/// `keys` that opens them (the user key, or one from before a password change); the last
/// failure when none does.
pub(super) async fn open_with_keys(
    keys: &[&SymmetricKey],
    file: &FileId,
    position: u64,
    id: &BlockId,
    bytes: &[u8],
) -> Result<Vec<u8>, BlockError> {
    let mut last = None;
    for key in keys {
        match open_block(key, file, position, id, bytes).await {
            Ok(plain) => return Ok(plain),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(BlockError::Altered(*id)))
}

/// Whom a fetch asks, in order: the holders the block's reference lists, then (after one
/// walk, only once those are used up) the peers nearest its address; each peer once.
struct Candidates {
    queue: VecDeque<PeerId>,
    tried: Vec<PeerId>,
    walked: bool,
}

impl Candidates {
    /// The holders `block` lists, those `slow` names last.
    fn listed(block: &BlockRef, slow: &SlowPeers) -> Self {
        let listed = block.holders.iter().filter_map(|h| h.parse().ok());
        let (last, first): (Vec<PeerId>, Vec<PeerId>) = listed.partition(|p| slow.names(p));
        Self {
            queue: first.into_iter().chain(last).collect(),
            tried: Vec::new(),
            walked: false,
        }
    }

    /// The next peer to ask, walking for the peers near the block once the listed ones are
    /// used up; `None` when every peer found was asked.
    async fn next<N: Network>(&mut self, client: &N, block: &BlockRef) -> Option<PeerId> {
        loop {
            while let Some(peer) = self.queue.pop_front() {
                if !self.tried.contains(&peer) {
                    self.tried.push(peer);
                    return Some(peer);
                }
            }
            if self.walked {
                return None;
            }
            self.walked = true;
            let near = client.closest_peers(block.id.0.to_vec()).await;
            self.queue.extend(near.unwrap_or_default());
        }
    }

    /// How many peers were asked so far.
    fn tried(&self) -> usize {
        self.tried.len()
    }
}

/// The peers a download found slow: a hedge went past them and they have not since handed
/// over a block in good time. Shared by the fetches of one download ([`fetch_stream`]).
#[derive(Clone, Default)]
pub(super) struct SlowPeers(Shared<std::sync::Mutex<HashSet<PeerId>>>);

impl SlowPeers {
    fn mark(&self, peer: PeerId) {
        if let Ok(mut slow) = self.0.lock() {
            slow.insert(peer);
        }
    }

    fn clear(&self, peer: &PeerId) {
        if let Ok(mut slow) = self.0.lock() {
            slow.remove(peer);
        }
    }

    fn names(&self, peer: &PeerId) -> bool {
        self.0
            .lock()
            .map(|slow| slow.contains(peer))
            .unwrap_or(false)
    }
}
