//! Redundancy chosen by measurement: a discrete-time model of browser peers coming and going,
//! run for simulated weeks, counting what each redundancy scheme loses and what it costs. No
//! swarm: peers, blocks and holders as numbers, one step a minute.
//!
//! Churn. Each peer (a browser tab) alternates online sessions and offline gaps:
//! - sessions: Weibull, shape 0.59, scale 41.9 min (median 22 min, mean 65 min): the fit of
//!   BitTorrent session lengths (the FlatOut swarm) in Stutzbach & Rejaie, "Understanding Churn
//!   in Peer-to-Peer Networks", IMC 2006. Their other swarms are heavier-tailed (Debian 0.38,
//!   42.4 min; Red Hat 0.34, 21.3 min); what matters is that most sessions last minutes and a
//!   few last days, which exponential sessions would miss;
//! - offline gaps: Weibull of the same shape (the paper finds downtimes heavy-tailed too), scale
//!   `--gap-min` 120 min (assumed): median 64 min, mean 3.1 h, 21 % shorter than the 10-minute
//!   grace; about a quarter of the peers are online at a time;
//! - leaving for good after an exponential lifetime of mean `--lifetime-days` 30 (assumed): the
//!   peer's blocks are gone and a new, empty peer joins at once. A peer back from a gap still
//!   holds its blocks (IndexedDB persists) but its repairer starts afresh (memory does not).
//!
//! Storage: `--users` users with 10 files of 1..8 blocks of 1 MiB, a manifest per file (256 B
//! per MiB) and an index per user (512 B per file), uploaded after a day of churn onto the online
//! peers nearest each address; then owners are gone and only holders act. A file is lost when a
//! data block, its manifest or its owner's index is: every copy (or all but k - 1 fragments) was
//! on peers that left for good.
//!
//! Schemes: (a) the copies of `files::Settings` (3 per data block, 5 per manifest and index),
//! no repair; (b) the same, repaired by `repair::Repairs::decide` inside a model of
//! `holder::Repairer`: each online holder walks its store so that each block is checked once per
//! interval, asking the peers nearest the address until copies + spare answered (offline ones
//! are silent), at several intervals and graces, with and without the sweep of fellow holders,
//! and with two changes that are not shipped ([`Tweak`]); (c) Reed-Solomon k + m fragments per
//! data block at the same 3x, re-encoded when fewer than a threshold answer (k fragments
//! downloaded, the missing ones uploaded: bytes only, no coding).
//!
//! ```sh
//! cargo run --release --locked -p jellyfish-peer --example churn -- --peers 1000 --weeks 4
//! cargo run --release --locked -p jellyfish-peer --example churn -- --quick
//! ```

use std::{
    collections::{BTreeSet, HashMap},
    error::Error,
    ops::Bound::{Excluded, Unbounded},
};

use jellyfish_peer::{
    block::{BlockId, BLOCK_SIZE},
    crypto::sha256,
    files,
    proof::LEAF,
    repair::{distance, Answer, Plan, Repairs, Settings},
};
use libp2p::{identity::Keypair, PeerId};
use web_time::{Duration, Instant};

const CITATION: &str = "Stutzbach & Rejaie, \"Understanding Churn in Peer-to-Peer Networks\", \
    IMC 2006 (BitTorrent FlatOut sessions: Weibull k = 0.59, scale 41.9 min)";
/// Weibull shape and scale (minutes) of sessions.
const SESSION: (f64, f64) = (0.59, 41.9);
/// Minutes: the model steps one a time.
const DAY: u32 = 24 * 60;
const WEEK: u32 = 7 * DAY;
const FILES_PER_USER: usize = 10;

struct Args {
    peers: usize,
    weeks: u32,
    users: usize,
    seed: u64,
    gap_min: f64,
    lifetime_days: f64,
}

const USAGE: &str =
    "flags: --peers N --weeks N --users N --seed N --gap-min M --lifetime-days D --quick";

fn args() -> Result<Args, String> {
    let (mut flags, mut it) = (HashMap::new(), std::env::args().skip(1));
    while let Some(flag) = it.next() {
        let value = match flag.as_str() {
            "--quick" => 0.0,
            "--peers" | "--weeks" | "--users" | "--seed" | "--gap-min" | "--lifetime-days" => {
                let number = it.next().and_then(|v| v.parse::<f64>().ok());
                number.ok_or(format!("{flag} needs a number"))?
            }
            _ => return Err(format!("unknown flag {flag}; {USAGE}")),
        };
        flags.insert(flag, value);
    }
    // --quick, for CI: 100 peers, 3 users, 1 week (seconds).
    let quick = flags.contains_key("--quick");
    let get = |flag: &str, full: f64, small| {
        *flags
            .get(flag)
            .unwrap_or(&[full, small][usize::from(quick)])
    };
    Ok(Args {
        peers: get("--peers", 1000.0, 100.0).max(20.0) as usize,
        weeks: get("--weeks", 4.0, 1.0).max(1.0) as u32,
        users: get("--users", 30.0, 3.0).max(1.0) as usize,
        seed: get("--seed", 1.0, 1.0) as u64,
        gap_min: get("--gap-min", 120.0, 120.0).max(1.0),
        lifetime_days: get("--lifetime-days", 30.0, 30.0).max(0.1),
    })
}

/// SplitMix64: seeded and deterministic (`rand` is no dependency of this crate).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Whole minutes (at least one) of a Weibull duration; shape 1 is exponential.
    fn weibull(&mut self, (shape, scale): (f64, f64)) -> u32 {
        let minutes = scale * (-self.unit().ln()).powf(1.0 / shape);
        minutes.ceil().clamp(1.0, 1e9) as u32
    }
}

/// One peer, from joining to leaving for good (`gone`, maybe past the end).
struct Life {
    id: PeerId,
    hash: [u8; 32],
    join: u32,
    gone: u32,
}

/// Within a minute a session ends before its peer is gone, and a newcomer arrives after.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Down,
    Gone,
    Up,
}

struct Obj {
    id: BlockId,
    hash: [u8; 32],
    size: u64,
    meta: bool,
}

/// What every scheme shares: the same churn, files and addresses.
struct World {
    lives: Vec<Life>,
    events: Vec<(u32, Event, usize)>,
    /// In address order.
    objs: Vec<Obj>,
    /// Per file: its index, manifest and data blocks.
    files: Vec<Vec<usize>>,
    /// Per object, every peer that ever lives, nearest the address first.
    nearest: Vec<Vec<u32>>,
    by_id: HashMap<BlockId, usize>,
    by_peer: HashMap<PeerId, usize>,
    upload: u32,
    end: u32,
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn hash(parts: &[u64]) -> [u8; 32] {
    sha256(
        &parts
            .iter()
            .flat_map(|p| p.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
}

fn world(a: &Args) -> Result<World, Box<dyn Error>> {
    let (mut rng, upload) = (Rng(a.seed), DAY);
    let end = upload + a.weeks * WEEK;
    let gap = (SESSION.0, a.gap_min);
    let life = (1.0, a.lifetime_days * f64::from(DAY));
    let (mut lives, mut events) = (Vec::new(), Vec::new());
    for _ in 0..a.peers {
        let mut join = 0;
        loop {
            let (peer, gone) = (lives.len(), join + rng.weibull(life));
            // The first peers start somewhere in a gap; a newcomer is a tab just opened.
            let mut at = match join {
                0 => (rng.unit() * f64::from(rng.weibull(gap))) as u32,
                _ => join,
            };
            while at < gone.min(end) {
                let down = (at + rng.weibull(SESSION)).min(gone);
                events.extend([(at, Event::Up, peer), (down, Event::Down, peer)]);
                at = down + rng.weibull(gap);
            }
            let seed = hash(&[a.seed, peer as u64]);
            let id = Keypair::ed25519_from_bytes(seed)?.public().to_peer_id();
            lives.push(Life {
                id,
                hash: sha256(&id.to_bytes()),
                join,
                gone,
            });
            if gone >= end {
                break;
            }
            events.push((gone, Event::Gone, peer));
            join = gone;
        }
    }
    events.sort();
    let (mut objs, mut files) = (Vec::new(), Vec::new());
    let mut new = |size: u64, meta: bool| {
        let id = BlockId(hash(&[a.seed, objs.len() as u64, 7]));
        let hash = sha256(&id.0);
        objs.push(Obj {
            id,
            hash,
            size,
            meta,
        });
        id
    };
    for _ in 0..a.users {
        let index = new(512 * FILES_PER_USER as u64 + 256, true);
        for _ in 0..FILES_PER_USER {
            let n = 1 + rng.next() % 8;
            let mut file = vec![index, new(256 * n + 256, true)];
            file.extend((0..n).map(|_| new(BLOCK_SIZE as u64, false)));
            files.push(file);
        }
    }
    // In address order, as a store walks them (`ids_after`).
    objs.sort_by_key(|o| o.id);
    let by_id: HashMap<BlockId, usize> = objs.iter().enumerate().map(|(i, o)| (o.id, i)).collect();
    let files = files
        .iter()
        .map(|f| f.iter().map(|id| by_id[id]).collect())
        .collect();
    // `repair::distance`, from hashes computed once per peer and per block.
    if let (Some(p), Some(o)) = (lives.first(), objs.first()) {
        if distance(&p.id, &o.id) != xor(&p.hash, &o.hash) {
            return Err("the distance here is not repair::distance".into());
        }
    }
    let nearest = objs.iter().map(|o| {
        let mut all: Vec<u32> = (0..lives.len() as u32).collect();
        all.sort_by_cached_key(|&p| xor(&lives[p as usize].hash, &o.hash));
        all
    });
    Ok(World {
        nearest: nearest.collect(),
        by_id,
        by_peer: lives.iter().enumerate().map(|(i, l)| (l.id, i)).collect(),
        lives,
        events,
        objs,
        files,
        upload,
        end,
    })
}

#[derive(Default)]
struct Peer {
    online: bool,
    down: u32,
    store: BTreeSet<usize>,
    repairs: Repairs,
    cursor: Option<usize>,
    owed: f64,
    /// Fellow holders and the blocks they hold beside this peer's (`Tweak::Sweep`).
    fellows: HashMap<usize, BTreeSet<usize>>,
}

#[derive(Default)]
struct Row {
    held: f64,
    online: f64,
    files_lost: usize,
    unavailable: usize,
    lost: (usize, usize),
    repair_bytes: u64,
    proof_bytes: u64,
    checks: u64,
    copies: u64,
    handed_on: u64,
    restores: Vec<u32>,
    shortfalls: usize,
    unrestored: usize,
}

struct Sim<'a> {
    w: &'a World,
    rs: Option<(usize, usize, usize)>,
    tweak: Tweak,
    /// Copies of a data block, and of a manifest or index: 3 and 5.
    copies: (usize, usize),
    peers: Vec<Peer>,
    holders: Vec<Vec<usize>>,
    lost: Vec<bool>,
    /// Since when an object has had fewer pieces than wanted, after a departure for good.
    short: Vec<Option<u32>>,
    base: Instant,
    row: Row,
}

/// Bytes of a proof of one piece: a leaf and the hashes up to the root (4,352 for 1 MiB).
fn proof_bytes(piece: u64) -> u64 {
    let leaves = piece.div_ceil(LEAF as u64).max(1);
    piece.min(LEAF as u64) + 32 * u64::from(64 - (leaves - 1).leading_zeros())
}

impl Sim<'_> {
    /// (Pieces needed to read, pieces wanted): (1, copies) or (k, k + m).
    fn code(&self, o: usize) -> (usize, usize) {
        match (self.w.objs[o].meta, self.rs) {
            (true, _) => (1, self.copies.1),
            (false, Some((k, m, _))) => (k, k + m),
            (false, None) => (1, self.copies.0),
        }
    }

    fn piece(&self, o: usize) -> u64 {
        self.w.objs[o].size.div_ceil(self.code(o).0 as u64)
    }

    fn add(&mut self, p: usize, o: usize, t: u32) {
        if self.peers[p].store.insert(o) {
            self.holders[o].push(p);
        }
        if let Some(since) = self.short[o].filter(|_| self.holders[o].len() >= self.code(o).1) {
            self.row.restores.push(t - since);
            self.short[o] = None;
        }
    }

    /// What `holder::Repairer::learn` does: `f` holds `o` beside `p` (at most 256 fellows).
    fn learn(&mut self, p: usize, f: usize, o: usize, holds: bool) {
        let holds = holds && self.peers[f].online;
        let fellows = &mut self.peers[p].fellows;
        if holds && (fellows.len() < 256 || fellows.contains_key(&f)) {
            fellows.entry(f).or_default().insert(o);
        } else if let Some(blocks) = fellows.get_mut(&f) {
            blocks.remove(&o);
            if blocks.is_empty() {
                fellows.remove(&f);
            }
        }
    }

    fn event(&mut self, t: u32, event: Event, p: usize) {
        let peer = &mut self.peers[p];
        match event {
            // A tab opens: a new repairer, walking from the first block.
            Event::Up => (peer.online, peer.cursor, peer.owed) = (true, None, 0.0),
            Event::Down => {
                (peer.online, peer.down) = (false, t);
                (peer.repairs, peer.fellows) = (Repairs::default(), HashMap::new());
            }
            Event::Gone => {
                peer.online = false;
                for o in std::mem::take(&mut peer.store) {
                    self.holders[o].retain(|&h| h != p);
                    let ((k, n), left) = (self.code(o), self.holders[o].len());
                    if left < k && !self.lost[o] {
                        (self.lost[o], self.short[o]) = (true, None);
                    } else if left < n && !self.lost[o] && self.short[o].is_none() {
                        self.short[o] = Some(t);
                        self.row.shortfalls += 1;
                    }
                }
            }
        }
    }

    /// One repairer tick of peer `p`, as `holder::Repairer::round`: the short blocks whose turn
    /// came, then the next page of the walk, so that each block is checked once per interval.
    fn tick(&mut self, p: usize, t: u32, settings: &Settings) {
        let now = self.base + Duration::from_secs(u64::from(t) * 60);
        let peer = &mut self.peers[p];
        let blocks = peer.store.len() as u64;
        peer.owed = (peer.owed + settings.per_tick(blocks)).min(blocks as f64);
        let due = peer.owed.floor() as usize;
        peer.owed -= due as f64;
        let mut ids = Vec::new();
        for id in peer.repairs.due(now) {
            ids.extend(self.w.by_id.get(&id));
        }
        if self.tweak == Tweak::Sweep {
            // Each fellow challenged on one block every sweep (30 s: twice a step); a failing one's
            // blocks are checked now and it is forgotten until a check finds it holding again.
            let sweeps = 60 / settings.sweep.as_secs().clamp(1, 60);
            for (f, blocks) in std::mem::take(&mut self.peers[p].fellows) {
                let first = blocks.first().copied().unwrap_or_default();
                if self.peers[f].online && self.peers[f].store.contains(&first) {
                    self.row.proof_bytes += sweeps * proof_bytes(self.piece(first));
                    self.peers[p].fellows.insert(f, blocks);
                } else {
                    for o in blocks {
                        if !ids.contains(&o) {
                            ids.push(o);
                        }
                    }
                }
            }
        }
        let peer = &mut self.peers[p];
        if due > 0 {
            let after = peer.cursor.map_or(Unbounded, Excluded);
            let range = peer.store.range((after, Unbounded));
            let page: Vec<usize> = range.take(due).copied().collect();
            // A short page: the walk starts again from the first block.
            peer.cursor = page.last().copied().filter(|_| page.len() == due);
            for o in page {
                if !ids.contains(&o) {
                    ids.push(o);
                }
            }
        }
        for o in ids {
            match self.peers[p].store.contains(&o) {
                true => self.check(p, o, t, now, settings),
                false => self.peers[p].repairs.forget(&self.w.objs[o].id),
            }
        }
    }

    /// Asks the peers nearest `o`, online or not, until `want` answered, as the repairer does.
    fn ask(&mut self, me: usize, o: usize, t: u32, want: usize) -> Vec<(usize, Answer)> {
        let (w, proof) = (self.w, proof_bytes(self.piece(o)));
        let (mut answers, mut heard) = (Vec::new(), 0);
        for p in w.nearest[o].iter().map(|&p| p as usize) {
            let (life, peer) = (&w.lives[p], &self.peers[p]);
            if heard >= want {
                break;
            }
            if p == me || life.join > t || life.gone <= t {
                continue;
            }
            let answer = match (peer.online, peer.store.contains(&o)) {
                (true, true) => Answer::Holds,
                (true, false) => Answer::Lacks,
                (false, true) if matches!(self.tweak, Tweak::Remember(m) if t - peer.down < m) => {
                    Answer::Holds
                }
                (false, _) => Answer::Silent,
            };
            heard += usize::from(answer != Answer::Silent);
            self.row.proof_bytes += proof * u64::from(answer == Answer::Holds && peer.online);
            answers.push((p, answer));
        }
        answers
    }

    fn check(&mut self, me: usize, o: usize, t: u32, now: Instant, settings: &Settings) {
        self.row.checks += 1;
        let ((k, n), w) = (self.code(o), self.w);
        let answers = self.ask(me, o, t, n + settings.spare);
        if self.tweak == Tweak::Sweep {
            answers
                .iter()
                .for_each(|&(f, a)| self.learn(me, f, o, a == Answer::Holds));
        }
        if k > 1 {
            return self.check_coded(me, o, t, &answers);
        }
        let said: Vec<_> = answers.iter().map(|&(p, a)| (w.lives[p].id, a)).collect();
        let mut repairs = std::mem::take(&mut self.peers[me].repairs);
        match repairs.decide(w.lives[me].id, w.objs[o].id, n, &said, settings.grace, now) {
            Plan::Keep | Plan::Wait => {}
            Plan::HandOn if self.tweak == Tweak::KeepAll => {}
            Plan::HandOn => {
                repairs.forget(&w.objs[o].id);
                self.peers[me].store.remove(&o);
                self.holders[o].retain(|&h| h != me);
                self.row.handed_on += 1;
            }
            Plan::Copy(targets) => {
                for target in targets.iter().filter_map(|id| w.by_peer.get(id)) {
                    self.row.repair_bytes += w.objs[o].size;
                    self.row.copies += 1;
                    self.add(*target, o, t);
                }
            }
        }
        self.peers[me].repairs = repairs;
    }

    /// Reed-Solomon: drop this fragment when k + m nearer holders answer; re-encode when fewer
    /// than `below` but at least k answer (whichever holder checks first; no grace).
    fn check_coded(&mut self, me: usize, o: usize, t: u32, answers: &[(usize, Answer)]) {
        let ((k, n), w, piece) = (self.code(o), self.w, self.piece(o));
        let below = self.rs.map_or(n, |rs| rs.2);
        let holds = answers.iter().filter(|(_, a)| *a == Answer::Holds);
        let mine = xor(&w.lives[me].hash, &w.objs[o].hash);
        let nearer = |(p, _): &&(usize, Answer)| xor(&w.lives[*p].hash, &w.objs[o].hash) < mine;
        let (live, nearer) = (holds.clone().count() + 1, holds.filter(nearer).count());
        if live >= n && nearer >= n {
            self.peers[me].store.remove(&o);
            self.holders[o].retain(|&h| h != me);
            self.row.handed_on += 1;
        } else if live < below && live >= k {
            let lacking = answers.iter().filter(|(_, a)| *a == Answer::Lacks);
            let targets: Vec<usize> = lacking.take(n - live).map(|(p, _)| *p).collect();
            self.row.repair_bytes += (k + targets.len()) as u64 * piece;
            self.row.copies += targets.len() as u64;
            targets.into_iter().for_each(|p| self.add(p, o, t));
        }
    }
}

fn run(w: &World, &(_, interval, grace, tweak, rs): &Scheme) -> Row {
    let (n, settings) = (w.objs.len(), files::Settings::default());
    let (data, meta) = (settings.replicas, settings.meta_replicas);
    let mut sim = Sim {
        w,
        rs,
        tweak,
        copies: (data, meta.max(data)),
        peers: w.lives.iter().map(|_| Peer::default()).collect(),
        holders: vec![Vec::new(); n],
        lost: vec![false; n],
        short: vec![None; n],
        base: Instant::now(),
        row: Row::default(),
    };
    let unique: u64 = w.objs.iter().map(|o| o.size).sum();
    // The repairer ticks once a step (a minute), checking each block once per interval.
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let repair = Settings {
        interval: minutes(interval),
        grace: minutes(grace),
        tick: minutes(1),
        ..Settings::default()
    };
    let repair = Some(repair).filter(|r| !r.interval.is_zero());
    let (mut next, mut samples) = (0, 0.0);
    for t in 0..w.end {
        while let Some(&(at, event, p)) = w.events.get(next).filter(|e| e.0 == t) {
            sim.event(at, event, p);
            next += 1;
        }
        if t == w.upload {
            // Each object on the online peers nearest its address, as an upload places it.
            for o in 0..n {
                let mut wanted = sim.code(o).1;
                for p in w.nearest[o].iter().map(|&p| p as usize) {
                    if wanted > 0 && sim.peers[p].online {
                        sim.add(p, o, t);
                        wanted -= 1;
                    }
                }
                // The owner hands each holder the others' receipts: its first fellows.
                let holders = sim.holders[o].clone();
                for &p in holders.iter().filter(|_| tweak == Tweak::Sweep) {
                    for &f in holders.iter().filter(|&&f| f != p) {
                        sim.learn(p, f, o, true);
                    }
                }
            }
        }
        if let Some(settings) = repair.as_ref().filter(|_| t >= w.upload) {
            for p in 0..sim.peers.len() {
                if sim.peers[p].online && !sim.peers[p].store.is_empty() {
                    sim.tick(p, t, settings);
                }
            }
        }
        if t >= w.upload && (t - w.upload) % 60 == 0 {
            let held: u64 = (0..n)
                .map(|o| sim.holders[o].len() as u64 * sim.piece(o))
                .sum();
            let present = w.lives.iter().filter(|l| l.join <= t && t < l.gone).count();
            let online = sim.peers.iter().filter(|p| p.online).count();
            sim.row.held += held as f64 / unique as f64;
            sim.row.online += online as f64 / present.max(1) as f64;
            samples += 1.0;
        }
    }
    let mut row = std::mem::take(&mut sim.row);
    let up = |o: usize| {
        sim.holders[o]
            .iter()
            .filter(|&&p| sim.peers[p].online)
            .count()
    };
    for file in &w.files {
        if file.iter().any(|&o| sim.lost[o]) {
            row.files_lost += 1;
        } else if file.iter().any(|&o| up(o) < sim.code(o).0) {
            row.unavailable += 1;
        }
    }
    let lost = |meta: bool| {
        (0..n)
            .filter(|&o| sim.lost[o] && w.objs[o].meta == meta)
            .count()
    };
    row.lost = (lost(false), lost(true));
    (row.held, row.online) = (row.held / samples, row.online / samples);
    row.unrestored = sim.short.iter().filter(|s| s.is_some()).count();
    row.restores.sort_unstable();
    row
}

/// What a scheme changes in the repairer's loop around `Repairs::decide`.
#[derive(Clone, Copy, PartialEq)]
enum Tweak {
    /// Each block checked once per interval, and again when `Repairs::due`.
    None,
    /// Also challenge each fellow holder (learned from checks and from upload receipts) every
    /// `Settings::sweep` (30 s), checking at once the blocks of one that fails, as shipped.
    Sweep,
    /// Never drop a copy on `Plan::HandOn` (not shipped): a returning holder keeps its copy.
    KeepAll,
    /// Count a silent holder as holding for these minutes after it went offline (not shipped).
    Remember(u32),
}

/// Name, repair interval and grace (minutes; no interval: no repair), change to the repairer,
/// Reed-Solomon (k, m, re-encode below) for data blocks.
type Scheme = (&'static str, u64, u64, Tweak, Option<(usize, usize, usize)>);

#[rustfmt::skip]
const SCHEMES: [Scheme; 11] = [
    ("(a) 3/5 copies, no repair", 0, 0, Tweak::None, None),
    ("(b) 3/5 copies, repair 1 h, grace 1 min (the shipped 45 s at the model's step), no sweep", 60, 1, Tweak::None, None),
    ("(b) 3/5 copies, repair 1 h, grace 10 min (shipped before), no sweep", 60, 10, Tweak::None, None),
    ("(b) 3/5 copies, repair 1 h, grace 0, no sweep", 60, 0, Tweak::None, None),
    ("(b) 3/5 copies, repair 1 h, grace 60 min, no sweep", 60, 60, Tweak::None, None),
    ("(b) 3/5 copies, repair 4 h, grace 10 min, no sweep", 240, 10, Tweak::None, None),
    ("(b) 3/5 copies, defaults with the 30 s sweep (as shipped)", 60, 1, Tweak::Sweep, None),
    ("(b') defaults, no sweep, no hand-on (returning copies kept)", 60, 1, Tweak::KeepAll, None),
    ("(b') defaults, no sweep, a silent holder counts for 24 h", 60, 1, Tweak::Remember(DAY), None),
    ("(c) RS 4+8 (3x), re-encode below 6; meta as (b)", 60, 1, Tweak::None, Some((4, 8, 6))),
    ("(c) RS 2+4 (3x), re-encode below 3; meta as (b)", 60, 1, Tweak::None, Some((2, 4, 3))),
];

fn main() -> Result<(), Box<dyn Error>> {
    let (a, started) = (args()?, std::time::Instant::now());
    let w = world(&a)?;
    // A thread per scheme: they share the world and nothing else.
    let rows = std::thread::scope(|scope| {
        let handles: Vec<_> = SCHEMES.iter().map(|s| scope.spawn(|| run(&w, s))).collect();
        let rows = handles.into_iter().map(|h| h.join());
        rows.collect::<Result<Vec<Row>, _>>()
    })
    .map_err(|_| "a scheme's run panicked")?;
    let count = |kind| w.events.iter().filter(|e| e.1 == kind).count();
    let online = rows.first().map_or(0.0, |r| r.online * 100.0);
    let data = w.objs.iter().filter(|o| !o.meta).count();
    println!(
        "# Churn: {} peers, {} weeks, seed {}\n",
        a.peers, a.weeks, a.seed
    );
    println!("- sessions: {CITATION}: median 22 min, mean 65 min");
    println!("- offline gaps: Weibull k = {}, scale {} min (assumed); lifetimes: exponential, mean {} days (assumed)", SESSION.0, a.gap_min, a.lifetime_days);
    println!("- {} sessions; {} peers left for good and were replaced; {online:.0} % of peers online on average", count(Event::Up), count(Event::Gone));
    println!("- {} users x {FILES_PER_USER} files: {} blocks ({data} of data, 1 MiB each); every scheme stores 3x (metadata 5x)\n", a.users, w.objs.len());
    println!("| scheme | held (x stored) | files lost | unavailable at end | blocks lost: data + meta | repair bytes / stored byte / week | proof bytes / stored byte / week | checks / copies made / handed on | restore h: mean / p95 (shortfalls, unrestored) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let week_bytes = f64::from(a.weeks) * w.objs.iter().map(|o| o.size as f64).sum::<f64>();
    let hours = |m: Option<f64>| m.map_or("-".into(), |m| format!("{:.1}", m / 60.0));
    for (s, r) in SCHEMES.iter().zip(&rows) {
        let n = r.restores.len();
        let mean =
            (n > 0).then(|| r.restores.iter().map(|&m| f64::from(m)).sum::<f64>() / n as f64);
        let p95 = r.restores.get((n * 95 / 100).min(n.saturating_sub(1)));
        let p95 = p95.map(|&m| f64::from(m));
        println!(
            "| {} | {:.1}x | {} of {} | {} | {} + {} | {:.2} | {:.2} | {} / {} / {} | {} / {} ({}, {}) |",
            s.0, r.held, r.files_lost, w.files.len(), r.unavailable, r.lost.0, r.lost.1,
            r.repair_bytes as f64 / week_bytes, r.proof_bytes as f64 / week_bytes,
            r.checks, r.copies, r.handed_on, hours(mean), hours(p95), r.shortfalls, r.unrestored
        );
    }
    println!("\nStored byte: one byte a user stored, counted once. Held: pieces on peers not gone, averaged hourly. Proofs: {} bytes per 1 MiB answered; the DHT walks are not counted.", proof_bytes(BLOCK_SIZE as u64));
    println!("Restore: from a departure for good that leaves fewer than the wanted copies (fragments) until they are back.");
    println!("\nRan in {:.0} s.", started.elapsed().as_secs_f64());
    Ok(())
}
