//! What a holder learns of the peers that pledge for owners, and the auditor that checks them:
//! the book of pledging peers and their audits ([`crate::donor_audit`]), what other holders
//! were given ([`crate::receipt::Witnesses`]), and the queue of peers due for an audit.

use super::*;

/// What the holder knows of pledging peers and of what other holders were given, and the queue
/// of peers to audit.
pub struct DonorAudits {
    book: Mutex<Book>,
    witnesses: Mutex<Witnesses>,
    /// Peers queued and not yet audited (each is queued once).
    queued: Mutex<HashSet<PeerId>>,
    /// One sender, locked: a clone per send would each bring a slot of its own and leave the
    /// queue unbounded.
    due: Mutex<mpsc::Sender<PeerId>>,
}

/// Peers waiting for an audit at once; beyond, a peer is queued at its owner's next store (and
/// its pledge stays within the owner's one provisional share meanwhile).
const AUDIT_QUEUE: usize = 64;
/// Audits run at once: a silent peer takes the whole answer deadline (10 s), so one owner's
/// request naming many minted keys must not hold up the audits of everyone else's donors.
const AUDITS_AT_ONCE: usize = 8;
/// How many times a connected peer's unanswered first audit is asked again, and after how
/// long: with the 10 s answer deadline, a busy tab gets three chances over about 30 s, during
/// which its pledge counts provisionally (at most 64 MiB for all of an owner's unaudited donors).
const FIRST_AUDIT_RETRIES: usize = 2;
const FIRST_AUDIT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Blocks a peer was given that each audit of it challenges, beyond its own sample.
const WITNESSED_CHALLENGES: usize = 2;
/// How long an auditor waits before deciding that a peer which said it lacks a block it was
/// given dropped it: an owner frees a block at all its holders at once, so a block freed
/// meanwhile is gone here too by then.
const FREED_SETTLE: Duration = Duration::from_secs(5);

impl DonorAudits {
    /// The book, and the queue the auditor ([`audit_donors`]) reads.
    pub fn new() -> (Shared<Self>, mpsc::Receiver<PeerId>) {
        let (due, queue) = mpsc::channel(AUDIT_QUEUE);
        let audits = Self {
            book: Mutex::new(Book::default()),
            witnesses: Mutex::new(Witnesses::default()),
            queued: Mutex::new(HashSet::new()),
            due: Mutex::new(due),
        };
        (Shared::new(audits), queue)
    }

    /// What `donors` count for now; queues those due for an audit.
    pub(super) fn donated(&self, donors: &BTreeMap<PeerId, u64>) -> u64 {
        let now = Instant::now();
        let Ok(book) = self.book.lock() else {
            return 0;
        };
        if let (Ok(mut queued), Ok(mut due)) = (self.queued.lock(), self.due.lock()) {
            for peer in donors.keys().filter(|p| book.due(p, now)) {
                if queued.insert(*peer) && due.try_send(*peer).is_err() {
                    queued.remove(peer);
                }
            }
        }
        book.donated(donors, now)
    }

    /// What `donors` count for when a holder repairing a block hands it here
    /// ([`Book::kept`]); queues those due for an audit.
    pub(super) fn kept(&self, donors: &BTreeMap<PeerId, u64>) -> u64 {
        let donated = self.donated(donors);
        let Ok(book) = self.book.lock() else {
            return donated;
        };
        donated.max(book.kept(donors, Instant::now()))
    }

    /// The peers other holders' receipts say were given blocks, with those blocks: the
    /// repairer's first idea of who holds what beside it.
    pub(super) fn co_holders(&self) -> Vec<(PeerId, Vec<BlockId>)> {
        self.witnesses.lock().map_or(Vec::new(), |w| w.given())
    }

    /// Keeps the valid receipts of `blocks` held here for the same owner; how many were kept.
    pub(super) async fn witness(
        &self,
        store: &BlockStore,
        me: PeerId,
        blocks: Vec<Witnessed>,
    ) -> u32 {
        let mut kept = 0;
        for block in blocks {
            if block.receipts.len() > MAX_RECEIPTS_PER_BLOCK
                || !holds(store, &block.id, &block.owner).await
            {
                continue;
            }
            let peers = block
                .receipts
                .iter()
                .filter_map(|r: &Receipt| r.verify(&block.id, &block.owner).ok())
                .filter(|peer| *peer != me);
            if let Ok(mut witnesses) = self.witnesses.lock() {
                for peer in peers {
                    witnesses.note(peer, block.id, block.owner, Instant::now());
                    kept += 1;
                }
            }
        }
        kept
    }

    /// How many blocks `peer` is known (from receipts) to have been given.
    pub fn witnessed(&self, peer: &PeerId) -> usize {
        self.witnesses.lock().map_or(0, |w| w.count(peer))
    }

    fn to_challenge(&self, peer: &PeerId) -> Vec<(BlockId, OwnerHash)> {
        let start = u32::from_le_bytes(crate::crypto::random_bytes()) as usize;
        self.witnesses.lock().map_or(Vec::new(), |w| {
            w.to_challenge(peer, WITNESSED_CHALLENGES, start, Instant::now())
        })
    }

    fn forget(&self, peer: &PeerId, id: &BlockId, owner: &OwnerHash) {
        if let Ok(mut witnesses) = self.witnesses.lock() {
            witnesses.forget(peer, id, owner);
        }
    }

    /// Whether `peer` was audited before (its pledges count by its audits, not provisionally).
    fn audited_before(&self, peer: &PeerId) -> bool {
        self.book.lock().is_ok_and(|book| book.knows(peer))
    }

    fn record(&self, peer: PeerId, outcome: donor_audit::Outcome) {
        if let Ok(mut book) = self.book.lock() {
            book.record(peer, outcome, Instant::now());
        }
        if let Ok(mut queued) = self.queued.lock() {
            queued.remove(&peer);
        }
    }
}

/// Whether this holder has an open connection to `peer`.
async fn connected(client: &Client, peer: PeerId) -> bool {
    client
        .peer_info(peer)
        .await
        .is_ok_and(|info| !info.connections.is_empty())
}

/// Whether this holder holds block `id` for `owner`.
async fn holds(store: &BlockStore, id: &BlockId, owner: &OwnerHash) -> bool {
    store
        .claims(id)
        .await
        .is_ok_and(|claims| claims.contains(owner))
}

/// Audits the pledging peers the holder queues, [`AUDITS_AT_ONCE`] at a time, until the
/// network stops.
pub(crate) async fn audit_donors(
    client: Client,
    queue: mpsc::Receiver<PeerId>,
    audits: Shared<DonorAudits>,
    store: Shared<BlockStore>,
) {
    queue
        .for_each_concurrent(AUDITS_AT_ONCE, |peer| {
            let (client, audits, store) = (&client, &audits, &store);
            async move {
                let outcome = audit_patiently(client, audits, store, peer).await;
                tracing::info!(%peer, ?outcome, "pledging peer audited");
                audits.record(peer, outcome);
            }
        })
        .await;
}

/// [`audit_donor`], asking a connected peer's unanswered first audit again before it counts:
/// a tab busy sealing and sending a large upload on a slow machine (often the very donor being
/// audited) can miss one deadline, and a silent first audit counts its pledge as nothing for
/// AUDIT_EVERY (10 min), refusing the rest of that upload. A key minted with no browser behind
/// it has no connection here and counts as silent at once; a peer that answered but lacks a
/// block it signed for is not asked again ([`Finding::Lacking`]).
///
/// "Connected" means when the audit began or when it ended: a tab's relayed connection is
/// swapped for a direct one in its first seconds, and a swap that closes the connection an
/// audit is on ends that audit with no connection left for a moment (the CI failure of
/// session 45: a holder took the uploading tab for a minted key and refused the rest of its
/// first upload).
async fn audit_patiently(
    client: &Client,
    audits: &DonorAudits,
    store: &BlockStore,
    peer: PeerId,
) -> donor_audit::Outcome {
    let was_connected = connected(client, peer).await;
    let mut finding = audit_donor(client, audits, store, peer).await;
    for _ in 0..FIRST_AUDIT_RETRIES {
        if finding != Finding::Heard(donor_audit::Outcome::Silent)
            || audits.audited_before(&peer)
            || !(was_connected || connected(client, peer).await)
        {
            break;
        }
        tracing::info!(%peer, "a connected pledging peer missed its first audit; asking again");
        futures_timer::Delay::new(FIRST_AUDIT_RETRY_AFTER).await;
        finding = audit_donor(client, audits, store, peer).await;
    }
    finding.outcome()
}

/// What one [`audit_donor`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finding {
    /// The audit's outcome as heard (a silent one may be a busy tab, worth asking again).
    Heard(donor_audit::Outcome),
    /// The peer answered but lacks a block it signed for that is still held here: silent for
    /// this audit, and not worth asking again. Each ask spends one such block
    /// ([`DonorAudits::forget`]), so a dropper asked again until it ran out of them would pass
    /// (the CI failure of 9a93a8f: a dropper given few blocks took 145 MiB on its pledge).
    Lacking,
}

impl Finding {
    fn outcome(self) -> donor_audit::Outcome {
        match self {
            Finding::Heard(outcome) => outcome,
            Finding::Lacking => donor_audit::Outcome::Silent,
        }
    }
}

/// One audit of a pledging peer: its own sample ([`crate::audit::audit_donor`]), then blocks it
/// is known to have been given that this holder also holds for the same owner. An inventory is
/// the peer's word, so one that threw away everything could say "nothing" and pass; a block it
/// signed for, still held here for its owner, it should still hold.
///
/// A peer that lacks such a block counts as silent for this audit (its online share falls as
/// if it were offline), not as a failed proof: the owner may have freed that copy alone (a
/// delete that timed out here, or an owner out to hurt the donor), and nothing here can tell.
/// Each such block is asked about once; a dropper lacks every block it was given, so every
/// audit finds another, while a stray copy costs an honest donor one audit's share. The
/// witnessed blocks go in one request ([`crate::audit::challenge_each`]), not one each.
async fn audit_donor(
    client: &Client,
    audits: &DonorAudits,
    store: &BlockStore,
    peer: PeerId,
) -> Finding {
    use crate::audit::Outcome as Challenge;
    use donor_audit::Outcome;
    let outcome = crate::audit::audit_donor(client, peer).await;
    if outcome != Outcome::Answered {
        return Finding::Heard(outcome);
    }
    // Only blocks still held here for their owner are asked about, all in one request.
    let mut asked = Vec::new();
    for (id, owner) in audits.to_challenge(&peer) {
        if holds(store, &id, &owner).await {
            asked.push((id, owner));
        } else {
            audits.forget(&peer, &id, &owner);
        }
    }
    let ids: Vec<BlockId> = asked.iter().map(|(id, _)| *id).collect();
    let outcomes = crate::audit::challenge_each(client, peer, &ids).await;
    // A failed proof counts before silence, and silence before a lacking block, as in the
    // peer's own sample.
    if outcomes.iter().any(|o| matches!(o, Challenge::Invalid(_))) {
        return Finding::Heard(Outcome::FailedChallenge);
    }
    if outcomes
        .iter()
        .any(|o| matches!(o, Challenge::Unanswered(_)))
    {
        return Finding::Heard(Outcome::Silent);
    }
    let refused: Vec<_> = asked
        .iter()
        .zip(&outcomes)
        .filter_map(|((id, owner), o)| match o {
            Challenge::Refused(reason) => Some((id, owner, reason)),
            _ => None,
        })
        .collect();
    if !refused.is_empty() {
        futures_timer::Delay::new(FREED_SETTLE).await;
    }
    for (id, owner, reason) in refused {
        let still_held = holds(store, id, owner).await;
        audits.forget(&peer, id, owner);
        if still_held {
            // One lacking block per audit; the rest are asked about again next time.
            tracing::warn!(%peer, block = %id.to_hex(), "a peer lacks a block it signed for: {reason}");
            return Finding::Lacking;
        }
    }
    Finding::Heard(Outcome::Answered)
}
