//! Self-healing storage, decided: what a holder does with one block it holds, given what the
//! peers nearest the block's address said when asked to prove they hold it. Pure: the holder's
//! repairer (`holder/repair.rs`) asks and acts, and hands [`Repairs::decide`] the answers and
//! `now`.
//!
//! A block is kept on the `copies` live peers nearest its address (its owner's warrant says how
//! many, [`crate::warrant`]), as a DHT record is. Each holder checks each block it holds once
//! per [`Settings::interval`], and:
//! - when fewer than `copies` peers prove they hold it, the nearest holder copies it to the
//!   nearest peers that lack it, as many as are missing. One copy short waits
//!   [`Settings::grace`] first (lazy repair: a tab that reloads or closes for a few minutes
//!   costs nothing); two short, or one copy left, is repaired at once. Holders further from
//!   the address step in one grace later each, so a nearest holder that never repairs (gone
//!   between checks, or lying) delays repair but does not stop it;
//! - when at least `copies` holders nearer the address than itself prove they hold it and
//!   there are twice the copies wanted in all (a tab that came back after its block was
//!   repaired elsewhere, more than once), seen at two checks a grace apart, it hands the block
//!   on: it drops it, since `copies` are confirmed elsewhere.
//!
//! A block whose owners have all left it unrenewed for [`Settings::keep_unrenewed`] (90 days)
//! is dropped ([`unrenewed`]): its warrant says when it was signed, and each owner's tab puts
//! a signed lease in the DHT at every log-in ([`crate::record::RecordKind::Lease`]). An
//! account's own records are gone after the same 90 days away, so nothing a returning owner
//! could still reach is dropped.
//!
//! What this costs: one DHT walk and `copies + spare` storage challenges (a leaf of 1 KiB and
//! a path of hashes each) per block per interval, and the block itself once per lost copy.

use std::collections::HashMap;

use libp2p::PeerId;
use web_time::{Duration, Instant};

use crate::{block::BlockId, crypto::sha256};

/// When and how hard holders repair.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often each held block is checked: 1 h. A holder of 1,000 blocks (1 GiB) checks
    /// one every 3.6 s; a block whose holders all leave within one interval is lost, so this
    /// bounds how fast a block's holders may leave. Browser sessions last tens of minutes to
    /// hours, and a holder that closes its tab stops checking; the other holders check too.
    pub interval: Duration,
    /// How often the repairer wakes and checks its share of the store: 10 s.
    pub tick: Duration,
    /// How long a block one copy short waits before it is copied: 45 s, so a reload or a
    /// dropped connection costs nothing. Not the 10 min first shipped: with it, a block one
    /// short whose two other holders closed within the next few minutes was lost (the
    /// browser scenario with two of six donors closing every 2 minutes, on the shipped
    /// schedule), and the churn simulation puts the cost of no grace at all at +18 % repair
    /// bytes over 10 min (docs/PERFORMANCE.md).
    pub grace: Duration,
    /// Peers beyond the copies asked to prove they hold a block: 2, so that a repair has a
    /// peer to copy to when a near one left.
    pub spare: usize,
    /// How long one peer may take to answer a check or take a copy: 10 s.
    pub deadline: Duration,
    /// How often the holders known to hold blocks beside this one (from checks, and from
    /// the receipts an owner hands out after an upload) are each challenged on one of them:
    /// 30 s. One that fails has its blocks checked at once, so a tab that closes is noticed
    /// in under a minute, not at its blocks' next hourly check; one request per fellow holder
    /// (a holder's fellows are the few peers nearest it, as its blocks' addresses are).
    pub sweep: Duration,
    /// How long after its owners last renewed it a block is kept: 90 days, the lifetime of the
    /// account's own DHT records without a log-in (`net::record_limits::RECORD_TTL`): an owner away
    /// longer has lost the records that lead to the block anyway. Renewing is what a log-in
    /// does ([`crate::account`] puts the lease).
    pub keep_unrenewed: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60 * 60),
            tick: Duration::from_secs(10),
            grace: Duration::from_secs(45),
            spare: 2,
            deadline: Duration::from_secs(10),
            sweep: Duration::from_secs(30),
            keep_unrenewed: Duration::from_secs(90 * 24 * 60 * 60),
        }
    }
}

/// Whether a block may be dropped as unrenewed at Unix time `now`. `owners` holds, for each
/// owner with a warrant on the block, when the warrant was signed and the owner's newest
/// lease (Unix seconds) as a lookup that heard peers found it (`None`: it has none). Dropped
/// only when every owner neither signed nor renewed within `keep`; a warrant without a signing
/// time (from before they existed) is never dropped. A lookup that reached nobody must not
/// come here: silence is no answer.
pub fn unrenewed(owners: &[(Option<u64>, Option<u64>)], keep: Duration, now: u64) -> bool {
    !owners.is_empty()
        && owners.iter().all(|(signed_at, lease)| match signed_at {
            None => false,
            Some(signed_at) => {
                let renewed = lease.map_or(*signed_at, |lease| lease.max(*signed_at));
                renewed.saturating_add(keep.as_secs()) < now
            }
        })
}

impl Settings {
    /// The default schedule scaled to check each block every `interval` (the default is
    /// `every(1 h)`): ticks of a 360th of it (at least 250 ms), a grace of an 80th (at least
    /// one tick: below, every holder of a block one short copies it at the same round, and
    /// the block ends with surplus copies), sweeps of a 120th (at least 1 s). Test networks run it
    /// in seconds (the relay's `--repair-every-secs`).
    pub fn every(interval: Duration) -> Self {
        let tick = (interval / 360).max(Duration::from_millis(250));
        Self {
            interval,
            tick,
            grace: (interval / 80).max(tick),
            sweep: (interval / 120).max(Duration::from_secs(1)),
            ..Self::default()
        }
    }

    /// Blocks to check per tick, for a store of `blocks`, so each is checked once per
    /// interval: a fraction for a small store (a check every few ticks, not every tick).
    pub fn per_tick(&self, blocks: u64) -> f64 {
        let ticks = (self.interval.as_secs_f64() / self.tick.as_secs_f64().max(0.001)).max(1.0);
        blocks as f64 / ticks
    }
}

/// What one peer near a block said when asked to prove it holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A valid proof: it holds the block.
    Holds,
    /// It answered without a valid proof: it lacks the block (or lies, which is the same).
    Lacks,
    /// It did not answer: gone, for now or for good. Neither a holder nor a place to copy to.
    Silent,
}

/// What to do with one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Enough copies, and this holder is among the nearest.
    Keep,
    /// Short, but not this holder's turn yet (or no peer to copy to).
    Wait,
    /// Copy the block to these peers, nearest first.
    Copy(Vec<PeerId>),
    /// Enough nearer holders: drop this copy.
    HandOn,
}

/// The XOR distance between a peer and a block's address, as Kademlia measures it (both
/// hashed with SHA-256): smaller is nearer.
pub fn distance(peer: &PeerId, id: &BlockId) -> [u8; 32] {
    let (a, b) = (sha256(&peer.to_bytes()), sha256(&id.0));
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Blocks known to be short, and blocks about to be handed on, tracked across checks.
#[derive(Debug, Default)]
pub struct Repairs {
    short: HashMap<BlockId, Short>,
    /// When each block was first seen with enough nearer holders to hand it on.
    handing: HashMap<BlockId, Instant>,
}

#[derive(Debug, Clone)]
struct Short {
    since: Instant,
    /// When this holder's turn comes: the block is checked again then.
    turn: Instant,
    /// Copies tried (or found nowhere to go) since the block was first seen short.
    attempts: u32,
    /// Peers that refused a copy of it (a tab that donates nothing, a full one, a liar that
    /// takes nothing): passed over at the next tries, or the nearest of them would be picked
    /// every time and the block never repaired (the browser cluster benchmark: a fresh
    /// profile that donates nothing sat nearest a block, which stayed short for minutes).
    refused: Vec<PeerId>,
}

/// Refusers remembered per short block; beyond, the first forgotten.
const MAX_REFUSED: usize = 8;

/// Most short blocks remembered: beyond, the oldest are forgotten (and found again at their
/// next check).
pub const MAX_SHORT: usize = 4096;

/// Pause after a copy was tried before the block's next try: the grace (at least 1 s),
/// doubling per try up to 64 times it. A target that refuses, or takes a copy and drops it,
/// or a network with fewer peers than copies, then costs a few tries an hour, not one a tick.
fn backoff(grace: Duration, attempts: u32) -> Duration {
    grace.max(Duration::from_secs(1)) * 2u32.pow(attempts.min(6))
}

impl Repairs {
    /// Decides for block `id`, held here by `me` and wanted at `copies` copies, from the
    /// `answers` of the peers nearest its address.
    pub fn decide(
        &mut self,
        me: PeerId,
        id: BlockId,
        copies: usize,
        answers: &[(PeerId, Answer)],
        grace: Duration,
        now: Instant,
    ) -> Plan {
        let mut holders: Vec<PeerId> = answers
            .iter()
            .filter(|(peer, answer)| *answer == Answer::Holds && *peer != me)
            .map(|(peer, _)| *peer)
            .collect();
        holders.push(me);
        holders.sort_by_key(|peer| distance(peer, &id));
        holders.dedup();
        let live = holders.len();
        if live >= copies {
            self.short.remove(&id);
            let nearer = holders.iter().take_while(|peer| **peer != me).count();
            // Surplus copies are kept up to twice the copies wanted: a holder that is only
            // away comes back, and a copy dropped on its return would be made again at its
            // next absence (the churn simulation: handing on at `copies` cost 4 to 8 times the
            // repair traffic of never handing on; docs/PERFORMANCE.md).
            if nearer < copies || live < 2 * copies {
                self.handing.remove(&id);
                return Plan::Keep;
            }
            // Enough nearer holders, seen at two checks at least a grace apart: a burst of
            // made-up peers near the address must last before honest holders let go.
            bounded_insert(&mut self.handing, id, now);
            return match self.handing.get(&id) {
                Some(first) if *first + grace <= now && *first < now => {
                    self.handing.remove(&id);
                    Plan::HandOn
                }
                _ => Plan::Keep,
            };
        }
        self.handing.remove(&id);
        let missing = copies - live;
        let rank = holders.iter().position(|peer| *peer == me).unwrap_or(0) as u32;
        let urgent = live <= 1 || missing >= 2;
        let wait = grace * (rank + u32::from(!urgent));
        bounded_insert(
            &mut self.short,
            id,
            Short {
                since: now,
                turn: now,
                attempts: 0,
                refused: Vec::new(),
            },
        );
        let Some(short) = self.short.get_mut(&id) else {
            return Plan::Wait;
        };
        if short.attempts == 0 {
            // The turn follows this holder's rank, which may change between checks.
            short.turn = short.since + wait;
        }
        if now < short.turn {
            return Plan::Wait;
        }
        short.turn = now + backoff(grace, short.attempts);
        short.attempts += 1;
        let mut lacking: Vec<PeerId> = answers
            .iter()
            .filter(|(peer, answer)| {
                *answer == Answer::Lacks && *peer != me && !short.refused.contains(peer)
            })
            .map(|(peer, _)| *peer)
            .collect();
        lacking.sort_by_key(|peer| distance(peer, &id));
        lacking.dedup();
        lacking.truncate(missing);
        match lacking.is_empty() {
            true => Plan::Wait,
            false => Plan::Copy(lacking),
        }
    }

    /// Notes that `peer` refused a copy of short block `id`: later tries pass over it.
    pub fn refused(&mut self, id: BlockId, peer: PeerId) {
        if let Some(short) = self.short.get_mut(&id) {
            if short.refused.contains(&peer) {
                return;
            }
            if short.refused.len() >= MAX_REFUSED {
                short.refused.remove(0);
            }
            short.refused.push(peer);
        }
    }

    /// How many peers refused a copy of block `id`: a survey asks that many more, so that
    /// peers to copy to remain after passing over them.
    pub fn refusers(&self, id: &BlockId) -> usize {
        self.short.get(id).map_or(0, |short| short.refused.len())
    }

    /// Short blocks whose turn has come by `now`: checked again before the regular round, so
    /// a grace of minutes is not stretched to a whole interval.
    pub fn due(&self, now: Instant) -> Vec<BlockId> {
        let mut due: Vec<(Instant, BlockId)> = self
            .short
            .iter()
            .filter(|(_, short)| short.turn <= now)
            .map(|(id, short)| (short.turn, *id))
            .collect();
        due.sort();
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// Forgets a block (dropped here, or no longer held).
    pub fn forget(&mut self, id: &BlockId) {
        self.short.remove(id);
        self.handing.remove(id);
    }

    /// Blocks known to be short.
    pub fn short(&self) -> usize {
        self.short.len()
    }
}

/// Inserts `value` unless `id` is there already; when the map holds [`MAX_SHORT`] entries, an
/// arbitrary one makes room (it is found again at its block's next check).
fn bounded_insert<V>(map: &mut HashMap<BlockId, V>, id: BlockId, value: V) {
    if map.contains_key(&id) {
        return;
    }
    if map.len() >= MAX_SHORT {
        if let Some(any) = map.keys().next().copied() {
            map.remove(&any);
        }
    }
    map.insert(id, value);
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(600);

    #[test]
    fn a_block_expires_only_when_every_owner_left_it_unrenewed() {
        let keep = Duration::from_secs(90 * 86_400);
        let day = 86_400;
        let signed = 1_800_000_000;
        let now = signed + 91 * day;
        // Signed 91 days ago, never renewed: dropped; renewed a month ago: kept.
        assert!(unrenewed(&[(Some(signed), None)], keep, now));
        assert!(!unrenewed(
            &[(Some(signed), Some(now - 30 * day))],
            keep,
            now
        ));
        // A lease older than the warrant does not make it older.
        assert!(!unrenewed(
            &[(Some(now - day), Some(signed - day))],
            keep,
            now
        ));
        // Exactly at the limit: kept.
        assert!(!unrenewed(&[(Some(now - 90 * day), None)], keep, now));
        // Two owners stored the same bytes: one still renewing keeps it.
        assert!(!unrenewed(
            &[(Some(signed), None), (Some(signed), Some(now - day))],
            keep,
            now
        ));
        // A warrant without a signing time, or no owner at all: never dropped.
        assert!(!unrenewed(&[(None, None)], keep, now));
        assert!(!unrenewed(&[(Some(signed), None), (None, None)], keep, now));
        assert!(!unrenewed(&[], keep, now));
    }

    /// `n` peers and a block, the peers ordered nearest the block first.
    fn near(n: usize) -> (BlockId, Vec<PeerId>) {
        let id = BlockId::of(b"a block");
        let mut peers: Vec<PeerId> = (0..n).map(|_| PeerId::random()).collect();
        peers.sort_by_key(|p| distance(p, &id));
        (id, peers)
    }

    fn answers(peers: &[PeerId], said: &[Answer]) -> Vec<(PeerId, Answer)> {
        peers.iter().copied().zip(said.iter().copied()).collect()
    }

    use Answer::{Holds, Lacks, Silent};

    #[test]
    fn enough_copies_are_kept_and_a_far_copy_is_handed_on() {
        let (id, peers) = near(6);
        let now = Instant::now();
        let mut repairs = Repairs::default();
        // me is the second nearest; two others hold it: 3 of 3.
        let said = answers(&peers[..5], &[Holds, Holds, Lacks, Holds, Silent]);
        assert_eq!(
            repairs.decide(peers[1], id, 3, &said, GRACE, now),
            Plan::Keep
        );
        // me is the farthest of six holders, twice the copies: hand on, once the same is seen
        // again a grace later (made-up peers near the address must last).
        let (id, peers) = near(7);
        let said = answers(&peers[..6], &[Holds, Holds, Holds, Holds, Holds, Lacks]);
        let me = peers[6];
        assert_eq!(repairs.decide(me, id, 3, &said, GRACE, now), Plan::Keep);
        let half = now + GRACE / 2;
        assert_eq!(repairs.decide(me, id, 3, &said, GRACE, half), Plan::Keep);
        let later = now + GRACE;
        assert_eq!(repairs.decide(me, id, 3, &said, GRACE, later), Plan::HandOn);
        // Four copies in all (one surplus, a holder that may only be away): kept.
        let said = answers(&peers[..6], &[Holds, Holds, Holds, Lacks, Lacks, Lacks]);
        assert_eq!(repairs.decide(me, id, 3, &said, GRACE, now), Plan::Keep);
        assert_eq!(repairs.decide(me, id, 3, &said, GRACE, later), Plan::Keep);
        // ...but not when only two nearer peers hold it.
        let said = answers(&peers[..5], &[Holds, Silent, Holds, Lacks, Lacks]);
        assert_eq!(
            repairs.decide(peers[5], id, 3, &said, GRACE, now),
            Plan::Keep
        );
    }

    #[test]
    fn one_copy_short_waits_a_grace_then_the_nearest_holder_copies_to_the_nearest_lacking() {
        let (id, peers) = near(6);
        let t0 = Instant::now();
        let mut repairs = Repairs::default();
        let me = peers[1];
        // 2 of 3: peer 0 lacks it (a tab that came back empty, or new), peer 2 is silent.
        let said = answers(&peers, &[Lacks, Holds, Silent, Holds, Lacks, Lacks]);
        assert_eq!(repairs.decide(me, id, 3, &said, GRACE, t0), Plan::Wait);
        assert!(repairs.due(t0 + GRACE / 2).is_empty());
        assert_eq!(repairs.due(t0 + GRACE), vec![id]);
        assert_eq!(
            repairs.decide(me, id, 3, &said, GRACE, t0 + GRACE),
            Plan::Copy(vec![peers[0]])
        );
        // The other holder, farther from the address, steps in one grace later.
        let mut theirs = Repairs::default();
        assert_eq!(theirs.decide(peers[3], id, 3, &said, GRACE, t0), Plan::Wait);
        assert_eq!(
            theirs.decide(peers[3], id, 3, &said, GRACE, t0 + GRACE),
            Plan::Wait
        );
        assert_eq!(
            theirs.decide(peers[3], id, 3, &said, GRACE, t0 + 2 * GRACE),
            Plan::Copy(vec![peers[0]])
        );
        // Once the copy is made, the shortage is forgotten.
        let healed = answers(&peers, &[Holds, Holds, Silent, Holds, Lacks, Lacks]);
        assert_eq!(
            repairs.decide(me, id, 3, &healed, GRACE, t0 + GRACE),
            Plan::Keep
        );
        assert_eq!(repairs.short(), 0);
    }

    #[test]
    fn a_peer_that_refused_a_copy_is_passed_over_at_the_next_try() {
        let (id, peers) = near(6);
        let t0 = Instant::now();
        let mut repairs = Repairs::default();
        let me = peers[1];
        // 2 of 3; peer 0, nearest, lacks it but refuses copies (it donates nothing).
        let said = answers(&peers, &[Lacks, Holds, Silent, Holds, Lacks, Lacks]);
        assert_eq!(repairs.decide(me, id, 3, &said, GRACE, t0), Plan::Wait);
        let first = t0 + GRACE;
        assert_eq!(
            repairs.decide(me, id, 3, &said, GRACE, first),
            Plan::Copy(vec![peers[0]])
        );
        assert_eq!(repairs.refusers(&id), 0);
        repairs.refused(id, peers[0]);
        repairs.refused(id, peers[0]);
        assert_eq!(repairs.refusers(&id), 1, "each refuser once");
        // The next try, after the backoff, goes to the next lacking peer.
        let next = first + backoff(GRACE, 1);
        assert_eq!(
            repairs.decide(me, id, 3, &said, GRACE, next),
            Plan::Copy(vec![peers[4]])
        );
        // Refusals are remembered only while the block is short.
        let healed = answers(&peers, &[Lacks, Holds, Silent, Holds, Holds, Lacks]);
        assert_eq!(repairs.decide(me, id, 3, &healed, GRACE, next), Plan::Keep);
        assert_eq!(repairs.refusers(&id), 0);
    }

    #[test]
    fn a_last_copy_or_two_short_is_repaired_at_once() {
        let (id, peers) = near(8);
        let now = Instant::now();
        let mut repairs = Repairs::default();
        let me = peers[4];
        let said = answers(&peers[..4], &[Silent, Lacks, Silent, Lacks]);
        assert_eq!(
            repairs.decide(me, id, 3, &said, GRACE, now),
            Plan::Copy(vec![peers[1], peers[3]])
        );
        // A manifest at 5 copies with 3 left: two short, at once too.
        let said = answers(&peers[..4], &[Holds, Lacks, Holds, Lacks]);
        assert_eq!(
            Repairs::default().decide(peers[0], id, 5, &said, GRACE, now),
            Plan::Copy(vec![peers[1], peers[3]])
        );
        // Nobody to copy to: wait, and be checked again after a pause that doubles.
        let other = BlockId::of(b"another block");
        let said = answers(&peers[..2], &[Silent, Silent]);
        assert_eq!(repairs.decide(me, other, 3, &said, GRACE, now), Plan::Wait);
        assert!(!repairs.due(now).contains(&other));
        assert!(repairs.due(now + GRACE).contains(&other));
        assert_eq!(
            repairs.decide(me, other, 3, &said, GRACE, now + GRACE),
            Plan::Wait
        );
        assert!(!repairs.due(now + 2 * GRACE).contains(&other));
        assert!(repairs.due(now + 3 * GRACE).contains(&other));
    }

    #[test]
    fn a_store_is_checked_once_per_interval() {
        let settings = Settings::default();
        let scaled = Settings::every(Duration::from_secs(3600));
        assert_eq!(
            (scaled.interval, scaled.tick, scaled.grace, scaled.sweep),
            (
                settings.interval,
                settings.tick,
                settings.grace,
                settings.sweep
            )
        );
        assert_eq!(settings.per_tick(0), 0.0);
        assert_eq!(settings.per_tick(360), 1.0);
        assert_eq!(settings.per_tick(36), 0.1);
        let fast = Settings {
            interval: Duration::from_secs(2),
            tick: Duration::from_millis(500),
            ..Settings::default()
        };
        assert_eq!(fast.per_tick(10), 2.5);
    }

    #[test]
    fn the_grace_is_never_shorter_than_a_tick() {
        // The test schedule (6 s) would give 75 ms: every holder of a block one short would
        // copy it in the same round.
        let test = Settings::every(Duration::from_secs(6));
        assert_eq!(test.tick, Duration::from_millis(250));
        assert_eq!(test.grace, test.tick);
        assert_eq!(Settings::default().grace, Duration::from_secs(45));
    }
}
