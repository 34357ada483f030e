//! The repairer: beside the holder, it walks the store a page per tick, asks the peers nearest
//! each block's address to prove they hold it, and does what [`crate::repair`] decides: copy
//! the block (with its owner's warrant) to peers that lack it, or hand it on. Generic over
//! [`Network`], so the in-memory network of the files tests drives it too.

use std::collections::HashMap;

use futures::future::join_all;

use super::*;
use crate::{
    net::{with_deadline, NetError, Network},
    record::{dht_key, AccountId, RecordKind},
    repair::{unrenewed, Answer, Plan, Repairs, Settings},
    warrant::Warrant,
};

/// What the repairer has done since it started.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairLog {
    /// Block checks run.
    pub checked: u64,
    /// Copies made on other peers.
    pub copied: u64,
    /// Bytes sent in those copies.
    pub bytes_copied: u64,
    /// Copies a peer refused or did not take.
    pub refused: u64,
    /// Blocks handed on (dropped here, enough nearer copies).
    pub handed_on: u64,
    /// Blocks dropped because no owner renewed them for [`Settings::keep_unrenewed`].
    pub expired: u64,
}

/// Fellow holders remembered: a holder's blocks sit near its own address, so their other
/// holders are the few dozen peers nearest it; beyond, newcomers are not remembered until one
/// is forgotten (a failed sweep forgets it).
const MAX_FELLOWS: usize = 256;

/// Blocks a sweep sends to be checked at once, at most: a holder that held many blocks beside
/// this one costs one round of checks, not a flood.
const MAX_SUSPECTS: usize = 256;

/// Blocks waiting for a later sweep's checks, at most: 4,096 (16 sweeps' worth, 128 KiB).
const MAX_PENDING: usize = 4096;

/// Blocks the regular walk checks in one round, at most: 64, eight batches of
/// [`CHECKS_AT_ONCE`]. What a long pause owed beyond that stays owed for the next rounds
/// (dropping it left blocks unchecked for a whole interval).
const MAX_WALK_PER_ROUND: usize = 64;

/// Blocks checked at once: 8. Their walks and challenges run together, each nearby peer
/// asked about all of them in one request ([`Repairer::survey`]), so the blocks a sweep finds
/// arrived cost a request per nearby peer per 8 blocks, not `copies + spare` per block. 32 at
/// once (session 32) failed two clean-clone CI runs on 30 s request timeouts between tabs
/// (not reproduced in 12 local runs): in a network of a few tabs every survey runs out of
/// peers and walks, so a batch is that many DHT walks at once; 8 is what ran before.
pub(crate) const CHECKS_AT_ONCE: usize = 8;

/// How long a peer that did not answer a challenge is taken as silent without being asked
/// again: 30 s. A closed tab's requests fail only at the deadline (10 s); asked once per
/// block, a departed holder of 100 blocks would hold its fellows' repairs up for minutes.
const SILENT_FOR: Duration = Duration::from_secs(30);

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Every block due was checked.
    Done,
    /// The peer has stopped: no more rounds.
    Stopped,
}

/// One repairer's state across rounds.
pub struct Repairer<N> {
    net: N,
    me: PeerId,
    settings: Settings,
    repairs: Repairs,
    /// The last block checked in the regular walk; `None`: start from the first.
    cursor: Option<BlockId>,
    /// Checks owed to the regular walk: a small store is checked a block every few ticks.
    owed: f64,
    /// When the last round started: the walk owes checks for the time since, so rounds slowed
    /// by silent peers do not stretch the interval (in the browser they did, about fourfold
    /// on the test schedule, and blocks went unchecked while their holders left).
    last_round: Option<Instant>,
    /// Peers that proved they hold blocks held here too, with those blocks: challenged every
    /// sweep ([`Settings::sweep`]).
    fellows: HashMap<PeerId, HashSet<BlockId>>,
    /// Fellows known only from what others said (a store request's names, an owner's
    /// receipts), not yet from a challenge they passed: with the fellows full, the first to
    /// make room for one that proved it holds a block here, so made-up names cannot crowd the
    /// real fellows out.
    unproven: HashSet<PeerId>,
    /// Blocks a fellow was only said to hold, not yet proven: a live fellow that lacks one
    /// loses that block alone (it is checked), not its place, so an owner naming an honest
    /// peer beside its own blocks cannot make that peer fail its sweeps.
    claimed: HashSet<(PeerId, BlockId)>,
    /// Blocks to check at the next sweeps, beyond what one sweep sends ([`MAX_SUSPECTS`]):
    /// blocks of unproven fellows forgotten to make room or failed, after those of proven
    /// fellows that failed, so made-up names cannot push a departed real fellow's blocks out.
    pending: Vec<BlockId>,
    /// The next sweep.
    next_sweep: Option<Instant>,
    /// Where the receipts of fellow holders are (the holder's book), if any.
    audits: Option<Shared<DonorAudits>>,
    /// Where the holder notes the fellow holders its store requests named, if anywhere.
    named: Option<Shared<NamedFellows>>,
    /// Peers already learnt from receipts: each only once, so one that left is not learnt
    /// again at every sweep.
    from_receipts: HashSet<PeerId>,
    /// Peers that did not answer a challenge, and when: taken as silent for [`SILENT_FOR`]
    /// without being asked again.
    silent: HashMap<PeerId, Instant>,
    /// Owners' newest leases as looked up (`None`: a lookup that heard peers found none), and
    /// when: looked up again after one [`Settings::interval`].
    leases: HashMap<OwnerHash, (Option<u64>, Instant)>,
    /// The blocks held at the last sweep (`None` before the first): what arrives after is
    /// checked at the next sweep ([`Repairer::arrived`]).
    known: Option<HashSet<BlockId>>,
    /// Owners first seen leaving a block unrenewed, and when.
    unrenewed_since: HashMap<OwnerHash, Instant>,
    log: Shared<Mutex<RepairLog>>,
}

impl<N: Network> Repairer<N> {
    /// A repairer for peer `me`, logging to `log`.
    pub fn new(net: N, me: PeerId, settings: Settings, log: Shared<Mutex<RepairLog>>) -> Self {
        Self {
            net,
            me,
            settings,
            repairs: Repairs::default(),
            cursor: None,
            owed: 0.0,
            last_round: None,
            fellows: HashMap::new(),
            unproven: HashSet::new(),
            claimed: HashSet::new(),
            pending: Vec::new(),
            next_sweep: None,
            audits: None,
            named: None,
            from_receipts: HashSet::new(),
            silent: HashMap::new(),
            leases: HashMap::new(),
            unrenewed_since: HashMap::new(),
            known: None,
            log,
        }
    }

    /// Also sweeps the peers that the holder's book says were given blocks held here (from
    /// the receipts an owner hands out after an upload), before any check has run.
    pub fn with_receipts(mut self, audits: Shared<DonorAudits>) -> Self {
        self.audits = Some(audits);
        self
    }

    /// Also learns the fellow holders that store requests named ([`NamedFellows`]): a block
    /// that arrived with all of them named is not surveyed when it arrives.
    pub fn with_named(mut self, named: Shared<NamedFellows>) -> Self {
        self.named = Some(named);
        self
    }

    /// Runs rounds every [`Settings::tick`] until the peer stops.
    pub async fn run(mut self, store: Shared<BlockStore>) {
        loop {
            futures_timer::Delay::new(self.settings.tick).await;
            let now = (Instant::now(), crate::platform::unix_secs());
            match self.round(&store, now).await {
                Ok(Round::Done) => {}
                Ok(Round::Stopped) => return,
                Err(e) => tracing::warn!("repair round failed: {e}"),
            }
        }
    }

    /// One round at `(now, unix)` (the wall clock in Unix seconds, for expiry): the blocks
    /// whose turn came, then the next page of the regular walk.
    pub async fn round(
        &mut self,
        store: &BlockStore,
        (now, unix): (Instant, u64),
    ) -> Result<Round, crate::store::StoreError> {
        let blocks = store.usage().await?.blocks;
        // Owed for the time since the last round (one tick's worth for the first), and at most
        // one whole store, however long the pause before it. A round checks at most
        // MAX_WALK_PER_ROUND of them: after a long pause (a sleeping laptop, a frozen tab) the
        // rest stays owed and the walk catches up over the next rounds, with the sweeps
        // between them still running.
        let ticks = match self.last_round.replace(now) {
            Some(last) => {
                now.saturating_duration_since(last).as_secs_f64()
                    / self.settings.tick.as_secs_f64().max(0.001)
            }
            None => 1.0,
        };
        self.owed = (self.owed + ticks * self.settings.per_tick(blocks)).min(blocks as f64);
        let due = (self.owed.floor() as usize).min(MAX_WALK_PER_ROUND);
        self.owed -= due as f64;
        let mut ids = self.repairs.due(now);
        if self.next_sweep.is_none_or(|at| at <= now) {
            self.next_sweep = Some(now + self.settings.sweep);
            let mut suspects = self.sweep(store, now).await?;
            suspects.extend(self.arrived(store).await?);
            for id in suspects {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let mut page = match due {
            0 => Vec::new(),
            _ => store.ids_after(self.cursor, due).await?,
        };
        if page.len() < due {
            // The end of the store: go on from its start (not a round later, which would
            // check nothing this round).
            for id in store.ids_after(None, due - page.len()).await? {
                if !page.contains(&id) {
                    page.push(id);
                }
            }
        }
        if due > 0 {
            self.cursor = page.last().copied();
        }
        for id in page {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        for chunk in ids.chunks(CHECKS_AT_ONCE) {
            if self.check(store, chunk, (now, unix)).await? == Round::Stopped {
                return Ok(Round::Stopped);
            }
        }
        Ok(Round::Done)
    }

    /// Checks `ids` together: the walks and challenges of all of them run at once (a silent
    /// peer costs the deadline once for the lot, not once per block), then each is decided
    /// and acted on in turn.
    async fn check(
        &mut self,
        store: &BlockStore,
        ids: &[BlockId],
        (now, unix): (Instant, u64),
    ) -> Result<Round, crate::store::StoreError> {
        // The warrant asking for the most copies: the block is kept for its most careful
        // owner. Blocks stored before warrants existed cannot be forwarded, and are left be.
        let mut blocks: Vec<(BlockId, Warrant)> = Vec::new();
        for id in ids {
            let warrants = store.warrants(id).await?;
            let stale = match self.unrenewed_owners(&warrants, now, unix).await {
                Err(NetError::Stopped) => return Ok(Round::Stopped),
                Ok(stale) => stale,
                Err(_) => Vec::new(),
            };
            if !stale.is_empty() {
                // Every warrant's owner unrenewed: the block goes (after a password change the
                // claim is the later key's, the warrant the earlier key's, which the later
                // key's lease speaks for). Otherwise only those owners' claims and warrants
                // go: one owner's neglect, or a made-up warrant, costs the others nothing.
                if warrants.iter().all(|w| stale.contains(&w.owner_hash())) {
                    tracing::debug!(id = %id.to_hex(), "dropping a block no owner renewed");
                    store.evict(id).await?;
                    self.repairs.forget(id);
                    if let Ok(mut log) = self.log.lock() {
                        log.expired += 1;
                    }
                    continue;
                }
                for owner in &stale {
                    store.release(id, owner).await?;
                }
            }
            let warrants = match stale.is_empty() {
                true => warrants,
                false => store.warrants(id).await?,
            };
            match warrants.into_iter().max_by_key(|w| w.copies) {
                Some(warrant) => blocks.push((*id, warrant)),
                None => self.repairs.forget(id),
            }
        }
        self.silent
            .retain(|_, at| now.saturating_duration_since(*at) < SILENT_FOR);
        let interval = self.settings.interval;
        self.leases
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < interval);
        // A first sighting not confirmed within a few intervals starts over.
        self.unrenewed_since
            .retain(|_, at| now.saturating_duration_since(*at) < 4 * interval);
        let wanted: Vec<(BlockId, usize)> = blocks
            .iter()
            .map(|(id, warrant)| (*id, usize::from(warrant.copies)))
            .collect();
        let surveys = self.survey(&wanted).await;
        for ((id, warrant), survey) in blocks.into_iter().zip(surveys) {
            let answers = match survey {
                Ok(answers) => answers,
                Err(NetError::Stopped) => return Ok(Round::Stopped),
                // No network now: checked again at the next round.
                Err(_) => continue,
            };
            self.act(store, id, &warrant, &answers, now).await?;
        }
        Ok(Round::Done)
    }

    /// The owners among `warrants` that left the block unrenewed ([`crate::repair::unrenewed`]),
    /// each seen so at two lookups at least a [`Settings::interval`] apart: one lookup that
    /// happened to miss the lease (Sybils near its key, peers that refused it) does not drop
    /// anything. Leases are looked up only for warrants old enough to expire, once per owner
    /// per interval; an owner whose lookup fails counts as renewed.
    async fn unrenewed_owners(
        &mut self,
        warrants: &[Warrant],
        now: Instant,
        unix: u64,
    ) -> Result<Vec<OwnerHash>, NetError> {
        let (keep, interval) = (self.settings.keep_unrenewed, self.settings.interval);
        let mut stale = Vec::new();
        for warrant in warrants {
            let owner = warrant.owner_hash();
            if !unrenewed(&[(warrant.signed_at, None)], keep, unix) {
                continue;
            }
            let known = self
                .leases
                .get(&owner)
                .filter(|(_, at)| now.saturating_duration_since(*at) < interval);
            let lease = match known {
                Some((lease, _)) => *lease,
                None => {
                    let key = dht_key(RecordKind::Lease, &AccountId(owner));
                    let found = match self.net.get_record(key).await {
                        Ok(found) => found,
                        Err(NetError::Stopped) => return Err(NetError::Stopped),
                        Err(e) => {
                            tracing::debug!("lease not looked up: {e}");
                            continue;
                        }
                    };
                    let lease = found
                        .iter()
                        .filter(|r| r.record().kind == RecordKind::Lease)
                        .map(|r| r.record().seq)
                        .max();
                    self.leases.insert(owner, (lease, now));
                    lease
                }
            };
            if !unrenewed(&[(warrant.signed_at, lease)], keep, unix) {
                self.unrenewed_since.remove(&owner);
                continue;
            }
            let since = *self.unrenewed_since.entry(owner).or_insert(now);
            if now.saturating_duration_since(since) >= interval {
                stale.push(owner);
            }
        }
        Ok(stale)
    }

    /// Asks, for each of `blocks` (an address and the copies wanted), the peers nearest it
    /// until `copies + spare` of them answered. The peers are those this holder already knows
    /// ([`Network::nearby_peers`]): a holder is among the nearest to its blocks, so its
    /// routing table knows their neighbourhood, and a DHT walk right after a tab closed waits
    /// on that tab (5 to 17 s measured in the browser) for every block. Only when those run
    /// out with fewer than `copies` heard does it walk. Either list can still name peers that
    /// left; those say nothing. A peer silent in the last [`SILENT_FOR`], or earlier in this
    /// survey, is taken as silent without asking.
    ///
    /// The blocks are surveyed together: each round asks every peer once about all the
    /// blocks it is wanted for ([`crate::audit::challenge_each`]), so the arrival checks of
    /// an upload's blocks cost a request per nearby peer, not `copies + spare` per block.
    async fn survey(
        &self,
        blocks: &[(BlockId, usize)],
    ) -> Vec<Result<Vec<(PeerId, Answer)>, NetError>> {
        let nearby = join_all(
            blocks
                .iter()
                .map(|(id, _)| self.net.nearby_peers(id.0.to_vec())),
        );
        let mut surveys: Vec<Result<Survey, NetError>> = nearby
            .await
            .into_iter()
            .map(|candidates| candidates.map(Survey::new))
            .collect();
        let mut silent: HashSet<PeerId> = self.silent.keys().copied().collect();
        loop {
            let mut asks: HashMap<PeerId, Vec<usize>> = HashMap::new();
            let mut walks = Vec::new();
            for (i, ((id, copies), survey)) in blocks.iter().zip(&mut surveys).enumerate() {
                let Ok(survey) = survey else { continue };
                let wanted = copies + self.settings.spare + self.repairs.refusers(id);
                let batch = survey.next(self.me, wanted);
                if batch.is_empty() && survey.heard() < *copies && !survey.walked {
                    // Out of known peers with fewer than `copies` heard (the routing table
                    // still lists tabs that left): walk once for peers it does not know.
                    survey.walked = true;
                    walks.push(i);
                }
                for peer in batch {
                    asks.entry(peer).or_default().push(i);
                }
            }
            if asks.is_empty() && walks.is_empty() {
                break;
            }
            let asks: Vec<(PeerId, Vec<usize>)> = asks.into_iter().collect();
            let walked = join_all(
                walks
                    .iter()
                    .map(|i| self.net.closest_peers(blocks[*i].0 .0.to_vec())),
            );
            let asked = join_all(asks.iter().map(|(peer, wanted)| {
                let ids: Vec<BlockId> = wanted.iter().map(|i| blocks[*i].0).collect();
                let silent = silent.contains(peer);
                async move {
                    match silent {
                        true => vec![Answer::Silent; ids.len()],
                        false => self.ask_each(*peer, &ids).await,
                    }
                }
            }));
            let (walked, asked) = futures::join!(walked, asked);
            for (i, found) in walks.into_iter().zip(walked) {
                if let Some(survey) = surveys.get_mut(i) {
                    match (survey.as_mut(), found) {
                        (Ok(survey), Ok(candidates)) => survey.candidates = candidates,
                        (Ok(_), Err(e)) => *survey = Err(e),
                        (Err(_), _) => {}
                    }
                }
            }
            for ((peer, wanted), answers) in asks.into_iter().zip(asked) {
                if answers.iter().all(|a| *a == Answer::Silent) {
                    silent.insert(peer);
                }
                // One answer per block asked about (`challenge_each` says so); were one
                // missing, its block takes the peer as silent rather than ask it again.
                let answers = answers.into_iter().chain(std::iter::repeat(Answer::Silent));
                for (i, answer) in wanted.into_iter().zip(answers) {
                    if let Some(Ok(survey)) = surveys.get_mut(i) {
                        survey.answers.push((peer, answer));
                    }
                }
            }
        }
        surveys
            .into_iter()
            .map(|survey| survey.map(|s| s.answers))
            .collect()
    }

    /// Asks `peer` to prove it holds each of `ids`, in one request.
    async fn ask_each(&self, peer: PeerId, ids: &[BlockId]) -> Vec<Answer> {
        crate::audit::challenge_each(&self.net, peer, ids)
            .await
            .into_iter()
            .map(Answer::from)
            .collect()
    }

    /// Decides for one surveyed block and does it.
    async fn act(
        &mut self,
        store: &BlockStore,
        id: BlockId,
        warrant: &Warrant,
        answers: &[(PeerId, Answer)],
        now: Instant,
    ) -> Result<(), crate::store::StoreError> {
        if let Ok(mut log) = self.log.lock() {
            log.checked += 1;
        }
        for (peer, answer) in answers {
            match answer {
                Answer::Holds => {
                    self.learn(*peer, id, true);
                }
                other => {
                    if let Some(ids) = self.fellows.get_mut(peer) {
                        ids.remove(&id);
                    }
                    if *other == Answer::Silent && !self.silent.contains_key(peer) {
                        self.silent.insert(*peer, now);
                    }
                }
            }
        }
        let copies = usize::from(warrant.copies);
        let plan = self
            .repairs
            .decide(self.me, id, copies, answers, self.settings.grace, now);
        tracing::debug!(id = %id.to_hex(), ?plan, ?answers, "block checked");
        match plan {
            Plan::Keep | Plan::Wait => {}
            Plan::HandOn => {
                tracing::debug!(id = %id.to_hex(), "handing a block on: enough nearer copies");
                store.evict(&id).await?;
                self.repairs.forget(&id);
                if let Ok(mut log) = self.log.lock() {
                    log.handed_on += 1;
                }
            }
            Plan::Copy(targets) => match store.get(&id).await? {
                Some(bytes) => {
                    // The new holders' fellows: this one, those that proved they hold it, and
                    // each other.
                    let holding = answers
                        .iter()
                        .filter(|(_, answer)| *answer == Answer::Holds)
                        .map(|(peer, _)| *peer);
                    let holders: Vec<PeerId> = std::iter::once(self.me).chain(holding).collect();
                    self.copy(id, bytes, warrant, &holders, targets).await
                }
                None => self.repairs.forget(&id),
            },
        }
        Ok(())
    }

    /// The blocks that arrived since the last sweep (at most [`MAX_SUSPECTS`]), to be checked
    /// now: their check names their other holders, who are then swept. A new holder knows no
    /// fellow holder otherwise, and at one check an hour it would not notice its fellows
    /// leave; in the browser scenario on the shipped schedule the last first donors closed and
    /// took blocks only newcomers held copies of with them. A block whose store request named
    /// every other holder its warrant asks for ([`NamedFellows`]) needs no check: its fellows
    /// are learnt from the names, and swept from the next sweep on (30 s or more after they
    /// were asked to store it). Blocks held when the repairer started are left to the regular
    /// walk.
    async fn arrived(
        &mut self,
        store: &BlockStore,
    ) -> Result<Vec<BlockId>, crate::store::StoreError> {
        let held: HashSet<BlockId> = store
            .ids_after(None, usize::MAX)
            .await?
            .into_iter()
            .collect();
        // Every store of a block counts together: its names joined, against the most copies
        // any of its warrants asked for (a second store asking for one copy and naming
        // nobody does not make the first's names complete).
        let mut names: HashMap<BlockId, (HashSet<PeerId>, u8, bool)> = HashMap::new();
        for Named { id, peers, copies } in self.named.as_ref().map(|n| n.take()).unwrap_or_default()
        {
            if !held.contains(&id) {
                continue;
            }
            let (named, most, remembered) = names.entry(id).or_insert((HashSet::new(), 0, true));
            *most = (*most).max(copies);
            let me = self.me;
            for peer in peers.into_iter().filter(|p| *p != me) {
                // A name not remembered (the fellows full, perhaps of names a hostile owner
                // made up, until their first sweep) leaves the block to be surveyed.
                *remembered &= self.learn(peer, id, false);
                named.insert(peer);
            }
        }
        let named_in_full: HashSet<BlockId> = names
            .into_iter()
            .filter(|(_, (named, most, remembered))| {
                *remembered && named.len() + 1 >= usize::from(*most)
            })
            .map(|(id, _)| id)
            .collect();
        let Some(known) = self.known.as_mut() else {
            self.known = Some(held);
            return Ok(Vec::new());
        };
        known.retain(|id| held.contains(id));
        let arrived: Vec<BlockId> = held
            .into_iter()
            .filter(|id| !known.contains(id) && !named_in_full.contains(id))
            .take(MAX_SUSPECTS)
            .collect();
        known.extend(arrived.iter().copied());
        known.extend(named_in_full);
        Ok(arrived)
    }

    /// Remembers that `peer` holds block `id` too, `proven` by its answer to a challenge or
    /// only said so; whether it was remembered. At most [`MAX_FELLOWS`] peers: beyond, a proven
    /// one takes the place of an unproven one (whose blocks are checked at the next sweep),
    /// and an unproven one is not remembered.
    fn learn(&mut self, peer: PeerId, id: BlockId, proven: bool) -> bool {
        if !self.fellows.contains_key(&peer) && self.fellows.len() >= MAX_FELLOWS {
            let Some(crowded) = self.unproven.iter().next().copied().filter(|_| proven) else {
                return false;
            };
            self.unproven.remove(&crowded);
            if let Some(ids) = self.fellows.remove(&crowded) {
                self.pending.extend(ids);
            }
        }
        let new = !self.fellows.contains_key(&peer);
        let ids = self.fellows.entry(peer).or_default();
        let new_block = ids.insert(id);
        if proven {
            self.unproven.remove(&peer);
            self.claimed.remove(&(peer, id));
        } else {
            if new {
                self.unproven.insert(peer);
            }
            if new_block {
                self.claimed.insert((peer, id));
            }
        }
        true
    }

    /// Challenges each fellow holder on one block it holds beside this one; returns the
    /// blocks of those that failed (gone, or no longer holding), to be checked now.
    async fn sweep(
        &mut self,
        store: &BlockStore,
        now: Instant,
    ) -> Result<Vec<BlockId>, crate::store::StoreError> {
        if let Some(audits) = self.audits.clone() {
            if self.from_receipts.len() > 4 * MAX_FELLOWS {
                self.from_receipts.clear();
            }
            for (peer, ids) in audits.co_holders() {
                if !self.from_receipts.insert(peer) {
                    continue;
                }
                for id in ids {
                    if store.has(&id).await? {
                        self.learn(peer, id, false);
                    }
                }
            }
        }
        self.fellows.retain(|_, ids| !ids.is_empty());
        let fellows = &self.fellows;
        self.unproven.retain(|peer| fellows.contains_key(peer));
        // Claims of fellows forgotten since (failed, crowded out) go with them.
        self.claimed
            .retain(|(peer, id)| fellows.get(peer).is_some_and(|ids| ids.contains(id)));
        let picks: Vec<(PeerId, BlockId)> = self
            .fellows
            .iter()
            .filter_map(|(peer, ids)| {
                let at = u32::from_le_bytes(crate::crypto::random_bytes()) as usize % ids.len();
                ids.iter().nth(at).map(|id| (*peer, *id))
            })
            .collect();
        let answers = join_all(picks.iter().map(|(peer, id)| self.ask(*peer, *id))).await;
        // Blocks of fellows that had proven themselves and failed come first.
        let mut urgent: Vec<BlockId> = Vec::new();
        for ((peer, id), answer) in picks.into_iter().zip(answers) {
            if answer == Answer::Silent {
                self.silent.insert(peer, now);
            }
            if answer == Answer::Holds {
                self.learn(peer, id, true);
            } else if answer == Answer::Lacks && self.claimed.remove(&(peer, id)) {
                // Alive, and only said to hold this one: the name was wrong (or made up by
                // the owner that gave it), not the fellow. This block is checked.
                if let Some(ids) = self.fellows.get_mut(&peer) {
                    ids.remove(&id);
                }
                urgent.push(id);
            } else {
                tracing::debug!(%peer, "a fellow holder failed its sweep: checking its blocks");
                let proven = !self.unproven.remove(&peer);
                if let Some(ids) = self.fellows.remove(&peer) {
                    match proven {
                        true => urgent.extend(ids),
                        false => self.pending.extend(ids),
                    }
                }
            }
        }
        // What one sweep does not send waits for the next (at most MAX_PENDING; beyond, the
        // rest are found at their regular checks).
        let mut seen = HashSet::new();
        let mut suspect: Vec<BlockId> = urgent
            .into_iter()
            .chain(self.pending.drain(..))
            .filter(|id| seen.insert(*id))
            .collect();
        if suspect.len() > MAX_SUSPECTS {
            self.pending = suspect.split_off(MAX_SUSPECTS);
            self.pending.truncate(MAX_PENDING);
        }
        Ok(suspect)
    }

    /// Asks `peer` to prove it holds block `id`.
    async fn ask(&self, peer: PeerId, id: BlockId) -> Answer {
        crate::audit::challenge(&self.net, peer, id).await.into()
    }

    /// Copies block `id` to `targets`, naming `holders` and the other targets as their
    /// fellow holders.
    async fn copy(
        &mut self,
        id: BlockId,
        bytes: Vec<u8>,
        warrant: &Warrant,
        holders: &[PeerId],
        targets: Vec<PeerId>,
    ) {
        let size = bytes.len() as u64;
        let sends = targets.iter().map(|peer| {
            let request = Request::StoreBlock {
                block: bytes.clone(),
                warrant: warrant.clone(),
                repair: true,
                fellows: crate::protocol::fellows_of(peer, holders.iter().chain(&targets)),
            };
            with_deadline(self.settings.deadline, self.net.request(*peer, request))
        });
        let answers = join_all(sends).await;
        let owner = warrant.owner_hash();
        let mut copied = 0u64;
        for (peer, answer) in targets.iter().zip(answers) {
            match answer {
                Ok(Response::Stored { receipt })
                    if receipt.verify(&id, &owner).as_ref() == Ok(peer) =>
                {
                    copied += 1;
                    // Its signed receipt proves it took the copy: swept from now on, or this
                    // holder would not notice it leave before the hourly check (and, were
                    // every new holder to leave, nobody would).
                    self.learn(*peer, id, true);
                }
                other => {
                    tracing::info!(%peer, id = %id.to_hex(), "repair copy not taken: {other:?}");
                    self.repairs.refused(id, *peer);
                }
            }
        }
        tracing::info!(id = %id.to_hex(), copied, of = targets.len(), "repaired");
        if let Ok(mut log) = self.log.lock() {
            log.copied += copied;
            log.bytes_copied += copied * size;
            log.refused += targets.len() as u64 - copied;
        }
    }
}

/// One block's survey under way ([`Repairer::survey`]).
struct Survey {
    /// The peers to ask, nearest first.
    candidates: Vec<PeerId>,
    /// Whether it walked the DHT for more.
    walked: bool,
    /// What the peers asked so far said.
    answers: Vec<(PeerId, Answer)>,
}

impl Survey {
    fn new(candidates: Vec<PeerId>) -> Self {
        Self {
            candidates,
            walked: false,
            answers: Vec::new(),
        }
    }

    /// Peers that answered, with a proof or without.
    fn heard(&self) -> usize {
        self.answers
            .iter()
            .filter(|(_, a)| *a != Answer::Silent)
            .count()
    }

    /// The next peers to ask, so that `wanted` are heard: the nearest not yet asked (nor
    /// `me`).
    fn next(&self, me: PeerId, wanted: usize) -> Vec<PeerId> {
        self.candidates
            .iter()
            .filter(|p| **p != me && !self.answers.iter().any(|(a, _)| a == *p))
            .take(wanted.saturating_sub(self.heard()))
            .copied()
            .collect()
    }
}

impl From<crate::audit::Outcome> for Answer {
    fn from(outcome: crate::audit::Outcome) -> Self {
        match outcome {
            crate::audit::Outcome::Held => Answer::Holds,
            crate::audit::Outcome::Refused(_) | crate::audit::Outcome::Invalid(_) => Answer::Lacks,
            crate::audit::Outcome::Unanswered(_) => Answer::Silent,
        }
    }
}
