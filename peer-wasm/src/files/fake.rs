//! An in-memory [`Network`] of holders behind the files seam: each holder is a real
//! [`crate::holder::answer`] over a real memory [`BlockStore`], so what a [`Drive`] does with
//! placement, fallback, cancel, free and quota is tested in well under a second, and a holder
//! can be made to refuse, vanish or corrupt what it holds.
//!
//! What it leaves out is the network: no DHT walk (the closest peers to an address are all
//! holders, ordered by the XOR distance between the hashed address and their hashed ids, as
//! Kademlia orders them), and DHT records are kept in one map with the peers' record policy.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use libp2p::{identity::Keypair, PeerId};

use super::*;
use crate::{
    account::{self, Session},
    holder::{self, Holder, Pledges, Probes},
    net::record_policy::may_store,
    record::SignedRecord,
    store::BlockStore,
};

/// How a fake holder behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Conduct {
    /// Answers as an honest peer does.
    Honest,
    /// Gone: every request to it fails as one to a closed tab does.
    Gone,
    /// Refuses every request with this reason.
    Refusing(String),
    /// Fails this many requests as if its connection were cut, then answers honestly.
    Flaky(u32),
    /// Answers honestly after this long, as a holder across a real link does.
    Slow(Duration),
    /// Answers honestly but leaves the last proof out of every answer to a storage
    /// challenge: a holder hoping a short answer passes for the blocks it did prove.
    ShortOfProofs,
}

struct FakeHolder {
    id: PeerId,
    keypair: Keypair,
    store: Arc<BlockStore>,
    /// The fellow holders its store requests named, for its repairer.
    named: Arc<crate::holder::NamedFellows>,
    conduct: Conduct,
}

#[derive(Default)]
struct World {
    holders: Vec<FakeHolder>,
    records: HashMap<Vec<u8>, VerifiedRecord>,
    /// Under recipients' letter keys: the bundle of letters, merged as holders merge them.
    letters: HashMap<Vec<u8>, Vec<u8>>,
    /// Block fetches under way now, and the most there ever were at once.
    fetching: usize,
    peak_fetching: usize,
    /// Store and fetch requests sent, in all.
    stores: usize,
    fetches: usize,
    /// Fetch requests sent to each peer, in all.
    fetches_to: HashMap<PeerId, usize>,
    /// Walks for the peers closest to an address, in all.
    walks: usize,
    /// Record lookups, in all.
    record_gets: usize,
    /// The peers the last record put named ([`Network::put_record_to`]).
    put_to: Option<Vec<PeerId>>,
    /// Storage challenge requests sent, and the blocks they challenged, in all.
    challenge_requests: usize,
    challenged: usize,
    /// Store requests under way now, and the most there ever were at once.
    storing: usize,
    peak_storing: usize,
    /// Whom store requests name as fellow holders in place of the real ones, as a hostile
    /// owner's would.
    forged_names: Forged,
    /// What the next record puts (not letters) do instead of succeeding, first first.
    failing_puts: std::collections::VecDeque<FailedPut>,
    /// The records of the puts [`FailedPut::Lost`] failed, first first.
    lost_records: Vec<VerifiedRecord>,
    /// How many of the next letters reach no holder.
    lost_letters: usize,
    /// How many of the next letters land, their acknowledgements lost (after the lost ones).
    unheard_letters: usize,
}

/// How a record put fails ([`FakeNet::fail_puts`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum FailedPut {
    /// Reaches no holder.
    Lost,
    /// Stored, but no acknowledgement comes back: the writer hears a failure.
    LandsUnheard,
}

/// What a hostile owner's store requests name as fellow holders ([`FakeNet::forge_names`]).
#[derive(Clone, Debug, Default)]
pub(crate) enum Forged {
    /// The real ones (an honest owner).
    #[default]
    Nothing,
    /// Peers that do not exist, new ones in every request.
    MadeUp,
    /// These peers, whether they hold the block or not.
    These(Vec<PeerId>),
}

/// A network of in-memory holders, seen from the peer that uses it (which holds nothing).
#[derive(Clone)]
pub(crate) struct FakeNet {
    world: Arc<Mutex<World>>,
    /// Whether record lookups answer (true) or wait (false): a DHT slow to answer.
    lookups: Arc<tokio::sync::watch::Sender<bool>>,
}

impl FakeNet {
    /// `holders` honest holders, each donating `capacity` bytes.
    pub(crate) async fn new(holders: usize, capacity: u64) -> Self {
        let net = Self {
            world: Arc::new(Mutex::new(World::default())),
            lookups: Arc::new(tokio::sync::watch::channel(true).0),
        };
        for _ in 0..holders {
            net.join(capacity).await;
        }
        net
    }

    /// A new honest holder donating `capacity` bytes joins; returns its id.
    pub(crate) async fn join(&self, capacity: u64) -> PeerId {
        let keypair = Keypair::generate_ed25519();
        let id = keypair.public().to_peer_id();
        let store = Arc::new(BlockStore::open(capacity).await.unwrap());
        self.world.lock().unwrap().holders.push(FakeHolder {
            id,
            keypair,
            store,
            named: Arc::default(),
            conduct: Conduct::Honest,
        });
        id
    }

    /// The holders that are not gone.
    pub(crate) fn live(&self) -> Vec<PeerId> {
        let world = self.world.lock().unwrap();
        world
            .holders
            .iter()
            .filter(|h| h.conduct != Conduct::Gone)
            .map(|h| h.id)
            .collect()
    }

    /// The holders' ids, nearest to `key` first.
    pub(crate) fn closest(&self, key: &[u8]) -> Vec<PeerId> {
        let world = self.world.lock().unwrap();
        let mut ids: Vec<PeerId> = world.holders.iter().map(|h| h.id).collect();
        let target = sha256(key);
        let distance = |peer: &PeerId| -> Vec<u8> {
            sha256(&peer.to_bytes())
                .iter()
                .zip(&target)
                .map(|(a, b)| a ^ b)
                .collect()
        };
        ids.sort_by_key(distance);
        ids
    }

    /// Makes `peer` behave as `conduct` says.
    pub(crate) fn set(&self, peer: PeerId, conduct: Conduct) {
        let mut world = self.world.lock().unwrap();
        if let Some(holder) = world.holders.iter_mut().find(|h| h.id == peer) {
            holder.conduct = conduct;
        }
    }

    /// The store of `peer`.
    pub(crate) fn store(&self, peer: PeerId) -> Arc<BlockStore> {
        let world = self.world.lock().unwrap();
        let holder = world.holders.iter().find(|h| h.id == peer).unwrap();
        holder.store.clone()
    }

    /// Where `peer`'s holder notes the fellow holders named to it, for its repairer.
    pub(crate) fn named(&self, peer: PeerId) -> Arc<crate::holder::NamedFellows> {
        let world = self.world.lock().unwrap();
        let holder = world.holders.iter().find(|h| h.id == peer).unwrap();
        holder.named.clone()
    }

    /// Makes the store requests sent from now on name fellow holders as `forged` says.
    pub(crate) fn forge_names(&self, forged: Forged) {
        self.world.lock().unwrap().forged_names = forged;
    }

    /// Makes the next record puts (not letters) fail as `fates` says, one each.
    pub(crate) fn fail_puts(&self, fates: &[FailedPut]) {
        self.world.lock().unwrap().failing_puts.extend(fates);
    }

    /// The records whose puts [`FailedPut::Lost`] failed, first first: what a holder that
    /// stored one unheard would surface later.
    pub(crate) fn lost_records(&self) -> Vec<VerifiedRecord> {
        self.world.lock().unwrap().lost_records.clone()
    }

    /// Makes the next `count` letters reach no holder (their puts fail).
    pub(crate) fn lose_letters(&self, count: usize) {
        self.world.lock().unwrap().lost_letters += count;
    }

    /// Makes the next `count` letters land with their puts failing (no acknowledgement).
    pub(crate) fn unhear_letters(&self, count: usize) {
        self.world.lock().unwrap().unheard_letters += count;
    }

    /// Every block `peer` holds.
    pub(crate) async fn held_by(&self, peer: PeerId) -> Vec<BlockId> {
        self.store(peer).ids_after(None, usize::MAX).await.unwrap()
    }

    /// Makes every holder that is not gone behave as `conduct` says.
    pub(crate) fn set_all(&self, conduct: Conduct) {
        for peer in self.live() {
            self.set(peer, conduct.clone());
        }
    }

    /// Store requests sent so far, to any holder.
    pub(crate) fn stores(&self) -> usize {
        self.world.lock().unwrap().stores
    }

    /// Walks for the closest peers so far.
    pub(crate) fn walks(&self) -> usize {
        self.world.lock().unwrap().walks
    }

    /// Puts `record` in place of whatever is held under its key, newer or not: the holders
    /// heard are ones that missed later saves.
    pub(crate) fn force_record(&self, record: VerifiedRecord) {
        let key = record.record().key();
        self.world.lock().unwrap().records.insert(key, record);
    }

    /// The peers the last record put was sent to, if it named them.
    pub(crate) fn put_to(&self) -> Option<Vec<PeerId>> {
        self.world.lock().unwrap().put_to.clone()
    }

    /// Record lookups so far.
    pub(crate) fn record_gets(&self) -> usize {
        self.world.lock().unwrap().record_gets
    }

    /// Record lookups wait from now until [`FakeNet::answer_lookups`].
    pub(crate) fn hold_lookups(&self) {
        self.lookups.send_replace(false);
    }

    /// Record lookups answer again, the waiting ones first.
    pub(crate) fn answer_lookups(&self) {
        self.lookups.send_replace(true);
    }

    /// Storage challenge requests sent so far, and the blocks they challenged.
    pub(crate) fn challenges(&self) -> (usize, usize) {
        let world = self.world.lock().unwrap();
        (world.challenge_requests, world.challenged)
    }

    /// Fetch requests sent so far, to any holder.
    pub(crate) fn fetches(&self) -> usize {
        self.world.lock().unwrap().fetches
    }

    /// Fetch requests sent to `peer` so far.
    pub(crate) fn fetches_to(&self, peer: PeerId) -> usize {
        self.world
            .lock()
            .unwrap()
            .fetches_to
            .get(&peer)
            .copied()
            .unwrap_or(0)
    }

    /// The most store requests that were ever under way at once.
    pub(crate) fn peak_storing(&self) -> usize {
        self.world.lock().unwrap().peak_storing
    }

    /// The most block fetches that were ever under way at once.
    pub(crate) fn peak_fetching(&self) -> usize {
        self.world.lock().unwrap().peak_fetching
    }

    /// Blocks held per holder, in the holders' order.
    pub(crate) async fn blocks_held(&self) -> Vec<u64> {
        let stores: Vec<_> = {
            let world = self.world.lock().unwrap();
            world.holders.iter().map(|h| h.store.clone()).collect()
        };
        let mut held = Vec::new();
        for store in stores {
            held.push(store.usage().await.unwrap().blocks);
        }
        held
    }

    /// What `peer` answers to `request`, as its conduct says.
    async fn answer(
        &self,
        peer: PeerId,
        store: Arc<BlockStore>,
        keypair: Keypair,
        named: Arc<crate::holder::NamedFellows>,
        conduct: Conduct,
        request: Request,
    ) -> Result<Response, NetError> {
        match conduct {
            Conduct::Honest | Conduct::Flaky(0) | Conduct::Slow(_) | Conduct::ShortOfProofs => {
                if let Conduct::Slow(delay) = conduct {
                    tokio::time::sleep(delay).await;
                }
                let holder = Holder {
                    store: &store,
                    keypair: &keypair,
                    probes: Probes::Refused,
                    pledges: Pledges::InFull,
                    named: Some(&named),
                };
                let mut answer = holder::answer(holder, request).await;
                if let (Conduct::ShortOfProofs, Response::Proofs { answers }) =
                    (&conduct, &mut answer)
                {
                    answers.pop();
                }
                Ok(answer)
            }
            Conduct::Gone | Conduct::Flaky(_) => Err(NetError::Request {
                peer,
                reason: "connection closed".into(),
            }),
            Conduct::Refusing(reason) => Ok(Response::Refused { reason }),
        }
    }
}

impl FakeNet {
    /// Drops every letter held: the holders of a recipient's letters all left.
    pub(super) fn forget_letters(&self) {
        self.world.lock().unwrap().letters.clear();
    }
}

impl Network for FakeNet {
    async fn closest_peers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, NetError> {
        self.world.lock().unwrap().walks += 1;
        Ok(self.closest(&key))
    }

    async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        let (store, keypair, named, conduct) = {
            let mut world = self.world.lock().unwrap();
            let holder =
                world
                    .holders
                    .iter_mut()
                    .find(|h| h.id == peer)
                    .ok_or(NetError::Request {
                        peer,
                        reason: "no such peer".into(),
                    })?;
            let conduct = holder.conduct.clone();
            if let Conduct::Flaky(n) = &mut holder.conduct {
                *n = n.saturating_sub(1);
            }
            let named = holder.named.clone();
            (holder.store.clone(), holder.keypair.clone(), named, conduct)
        };
        let request = match request {
            Request::StoreBlock {
                block,
                warrant,
                repair,
                ..
            } if !matches!(self.world.lock().unwrap().forged_names, Forged::Nothing) => {
                let named: Vec<PeerId> = match self.world.lock().unwrap().forged_names.clone() {
                    Forged::These(peers) => peers,
                    _ => (0..crate::protocol::MAX_NAMED_FELLOWS)
                        .map(|_| PeerId::random())
                        .collect(),
                };
                Request::StoreBlock {
                    block,
                    warrant,
                    repair,
                    fellows: crate::protocol::fellows_of(&peer, &named),
                }
            }
            request => request,
        };
        if let Request::ProveEach { challenges } = &request {
            let mut world = self.world.lock().unwrap();
            world.challenge_requests += 1;
            world.challenged += challenges.len();
        }
        let fetch = matches!(request, Request::FetchBlock { .. });
        let storing = matches!(request, Request::StoreBlock { .. });
        if storing {
            let mut world = self.world.lock().unwrap();
            world.stores += 1;
            world.storing += 1;
            world.peak_storing = world.peak_storing.max(world.storing);
        }
        if fetch {
            let mut world = self.world.lock().unwrap();
            world.fetching += 1;
            world.fetches += 1;
            *world.fetches_to.entry(peer).or_default() += 1;
            world.peak_fetching = world.peak_fetching.max(world.fetching);
        }
        let answer = self
            .answer(peer, store, keypair, named, conduct, request)
            .await;
        if fetch {
            self.world.lock().unwrap().fetching -= 1;
        }
        if storing {
            self.world.lock().unwrap().storing -= 1;
        }
        answer
    }

    async fn get_record(&self, key: Vec<u8>) -> Result<Vec<VerifiedRecord>, NetError> {
        let _ = self
            .lookups
            .subscribe()
            .wait_for(|answering| *answering)
            .await;
        let mut world = self.world.lock().unwrap();
        world.record_gets += 1;
        if let Some(bundle) = world.letters.get(&key) {
            return Ok(crate::record::verify_value(&key, bundle)?);
        }
        Ok(world.records.get(&key).cloned().into_iter().collect())
    }

    /// The records, and the live holders nearest the key (a lookup hears those it converges on).
    async fn get_record_near(
        &self,
        key: Vec<u8>,
    ) -> Result<(Vec<VerifiedRecord>, Vec<PeerId>), NetError> {
        let records = self.get_record(key.clone()).await?;
        let live = self.live();
        let near = self.closest(&key).into_iter().filter(|p| live.contains(p));
        Ok((records, near.collect()))
    }

    /// [`FakeNet::put_record`], noting the peers it was sent to ([`FakeNet::put_to`]).
    async fn put_record_to(
        &self,
        record: SignedRecord,
        peers: Vec<PeerId>,
    ) -> Result<(), NetError> {
        self.world.lock().unwrap().put_to = Some(peers);
        self.put_record(record).await
    }

    async fn put_record(&self, record: SignedRecord) -> Result<(), NetError> {
        let record = VerifiedRecord::from_wire(&record.key(), &record.to_wire())?;
        let key = record.record().key();
        let mut world = self.world.lock().unwrap();
        if record.record().kind == RecordKind::Letter {
            if world.lost_letters > 0 {
                world.lost_letters -= 1;
                return Err(NetError::NotStored(
                    "no answer (a test's lost letter)".into(),
                ));
            }
            let held = world.letters.get(&key).map(Vec::as_slice);
            if let Some(bundle) = crate::net::record_policy::merge_letter(&record, held)? {
                world.letters.insert(key, bundle);
            }
            if world.unheard_letters > 0 {
                world.unheard_letters -= 1;
                return Err(NetError::NotStored(
                    "no answer (a test's unheard letter)".into(),
                ));
            }
            return Ok(());
        }
        let fate = world.failing_puts.pop_front();
        if matches!(fate, Some(FailedPut::Lost)) {
            world.lost_records.push(record);
            return Err(NetError::NotStored("no answer (a test's lost put)".into()));
        }
        let held = world.records.get(&key).map(|r| r.wire().to_vec());
        if may_store(&record, held.as_deref())? {
            world.records.insert(key, record);
        }
        match fate {
            Some(_) => Err(NetError::Timeout(10)),
            None => Ok(()),
        }
    }
}

// Helpers for the tests of the files seam (here and in the rooms' own tests).

pub(super) const MIB: u64 = 1024 * 1024;
pub(super) const PASSWORD: &str = "violet tractor sings under seven moons";

/// A session for one user (its account records live in a directory of their own: the
/// files seam never reads them) and a drive over `net` that donates 1 GiB.
pub(super) async fn drive(net: &FakeNet) -> Drive<FakeNet> {
    drive_of(net, "alice").await
}

/// [`drive`] for the user `name`.
pub(super) async fn drive_of(net: &FakeNet, name: &str) -> Drive<FakeNet> {
    let directory = crate::account::fake::MemoryDirectory::new(3);
    let session: Session = account::sign_up_with_key_bits(&directory, name, PASSWORD, 2048)
        .await
        .unwrap();
    // Its public key in the network too, as sign-up puts it: sharing looks users up there.
    let public = session.sign(RecordKind::PublicKey, 1, Vec::new()).unwrap();
    net.put_record(public).await.unwrap();
    let donation = Donation {
        keypair: Keypair::generate_ed25519(),
        bytes: 1 << 30,
    };
    Drive::new(net.clone(), Shared::new(session), Settings::default()).donating(donation)
}

/// A drive of its own user on `net` with `settings`, donating 1 GiB, and the journal of
/// unfinished uploads it keeps.
pub(super) async fn journaled_drive(
    net: &FakeNet,
    settings: Settings,
) -> (Drive<FakeNet>, Shared<UploadJournal>) {
    let journal = Shared::new(UploadJournal::in_memory());
    let files = Drive::new(net.clone(), drive(net).await.session().clone(), settings)
        .donating(Donation {
            keypair: Keypair::generate_ed25519(),
            bytes: 1 << 30,
        })
        .journaling(journal.clone());
    (files, journal)
}

/// The same user as `drive` in another browser: a drive of its own, with its own view of the
/// index (nothing cached), donating what `drive` donates.
pub(super) fn same_user_elsewhere(drive: &Drive<FakeNet>) -> Drive<FakeNet> {
    let mut there = Drive::new(
        drive.client.clone(),
        drive.session.clone(),
        drive.settings.clone(),
    );
    there.donation = drive.donation.clone();
    there
}

/// Mallory uploads `mib` MiB of junk (a [`pattern`] of `seed`) as `junk.bin`, her store
/// requests naming `forged` as each block's fellow holders; later requests name honestly.
pub(super) async fn upload_naming(net: &FakeNet, forged: Forged, mib: u64, seed: u8) {
    let mallory = drive_of(net, "mallory").await;
    net.forge_names(forged);
    let junk = pattern((mib * MIB) as usize, seed);
    mallory
        .upload("junk.bin", junk.as_slice(), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    net.forge_names(Forged::Nothing);
}

/// The names of the files `drive` lists, sorted.
pub(super) async fn listed(drive: &Drive<FakeNet>) -> Vec<String> {
    let mut names: Vec<String> = drive
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.sort();
    names
}

/// What a guest with `link` (and no account) reads: the whole file.
pub(super) async fn guest_reads(net: &FakeNet, link: &ShareLink) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::new();
    download_link(net, &Settings::default(), link, |block| {
        out.extend_from_slice(&block);
        ControlFlow::Continue(())
    })
    .await?;
    Ok(out)
}

pub(super) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

pub(super) async fn download(drive: &Drive<FakeNet>, id: &str) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::new();
    drive
        .download(id, |block| {
            out.extend_from_slice(&block);
            ControlFlow::Continue(())
        })
        .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every live holder's repairer, each kept across rounds as its tab keeps it, all logging
    /// to one log, and the test's clocks: the rounds move `now` on; `unix` (the wall clock,
    /// which decides what expired) moves only when a test sets it.
    struct Fleet {
        settings: crate::repair::Settings,
        log: Shared<Mutex<crate::holder::RepairLog>>,
        repairers: HashMap<PeerId, crate::holder::Repairer<FakeNet>>,
        now: web_time::Instant,
        unix: u64,
    }

    /// Twice the sweep interval of [`swept_every_second`]: every round is a sweep.
    const SWEEP: Duration = Duration::from_secs(2);

    impl Fleet {
        fn new(settings: crate::repair::Settings) -> Self {
            Self {
                settings,
                log: Shared::default(),
                repairers: HashMap::new(),
                now: web_time::Instant::now(),
                unix: crate::platform::unix_secs(),
            }
        }

        /// `n` repair rounds at every live holder, each `step` after the one before.
        async fn rounds(&mut self, net: &FakeNet, n: usize, step: Duration) {
            for _ in 0..n {
                self.now += step;
                self.round(net).await;
            }
        }

        /// One repair round at every live holder, at the fleet's clocks.
        async fn round(&mut self, net: &FakeNet) {
            let (now, unix) = (self.now, self.unix);
            for peer in net.live() {
                let repairer = self.repairers.entry(peer).or_insert_with(|| {
                    crate::holder::Repairer::new(
                        net.clone(),
                        peer,
                        self.settings.clone(),
                        self.log.clone(),
                    )
                    .with_named(net.named(peer))
                });
                repairer.round(&net.store(peer), (now, unix)).await.unwrap();
            }
        }

        fn log(&self) -> crate::holder::RepairLog {
            *self.log.lock().unwrap()
        }
    }

    #[tokio::test]
    async fn placement_passes_over_holders_that_refuse_or_are_gone() {
        let net = FakeNet::new(8, 64 * MIB).await;
        let files = drive(&net).await;
        // Whatever a block's address, two of the eight refuse and one is gone: every block
        // still gets its three copies from the others.
        let all = net.closest(&[]);
        net.set(all[0], Conduct::Refusing("full".into()));
        net.set(all[3], Conduct::Refusing("over allowance".into()));
        net.set(all[5], Conduct::Gone);
        let bytes = pattern((2 * MIB + 7) as usize, 1);
        let report = files
            .upload("photo.jpg", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert!(report.complete, "{report:?}");
        assert_eq!(report.file.copies, 3);
        assert_eq!(download(&files, &report.file.id).await.unwrap(), bytes);

        // When only two holders have room (the other six are full but still serve what they
        // hold, the index among it), the upload is kept but says it is short.
        for peer in &all[..6] {
            net.set(*peer, Conduct::Honest);
            net.store(*peer).set_capacity(0).await.unwrap();
        }
        let short = files
            .upload("short.txt", b"few holders".as_slice(), |_| {
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert!(!short.complete, "{short:?}");
        assert_eq!(short.file.copies, 2);
    }

    #[tokio::test]
    async fn a_holder_cut_off_once_is_asked_again_before_an_upload_settles_for_fewer_copies() {
        // Three holders for three copies: one whose first request fails (a connection being
        // upgraded, a tab that just joined) must still end up holding every block.
        let net = FakeNet::new(3, 64 * MIB).await;
        let files = drive(&net).await;
        net.set(net.closest(&[])[1], Conduct::Flaky(1));
        let bytes = pattern((MIB + 9) as usize, 5);
        let report = files
            .upload("kept.bin", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert!(report.complete, "{report:?}");
        assert_eq!(report.file.copies, 3);
        assert_eq!(download(&files, &report.file.id).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_cancelled_upload_frees_every_block_it_placed() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        files
            .upload("first.txt", b"kept".as_slice(), |_| {
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        let before = net.blocks_held().await;
        let mut calls = 0;
        let cancelled = files
            .upload("big.bin", pattern((5 * MIB) as usize, 2).as_slice(), |_| {
                calls += 1;
                match calls {
                    1 => ControlFlow::Continue(()),
                    _ => ControlFlow::Break(()),
                }
            })
            .await;
        assert!(
            matches!(cancelled, Err(FileError::Cancelled)),
            "{cancelled:?}"
        );
        // What was placed ahead of the cancel (the manifest, the index) is freed in the
        // background.
        files.frees_done().await;
        assert_eq!(net.blocks_held().await, before, "nothing left behind");
        assert_eq!(files.list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_download_fetches_as_many_blocks_at_once_as_the_pipeline_holds_and_no_more() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let bytes = pattern((9 * MIB + 5) as usize, 9);
        let report = files
            .upload("film.mkv", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        // Every holder answers after a while, as across a real link: a download that waited
        // for each block before asking for the next would never have two fetches under way.
        net.set_all(Conduct::Slow(Duration::from_millis(20)));
        assert_eq!(download(&files, &report.file.id).await.unwrap(), bytes);
        assert_eq!(net.peak_fetching(), files.settings().pipeline);
    }

    #[tokio::test]
    async fn a_download_passes_over_a_corrupt_copy_and_a_delete_frees_every_copy() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let mut files = drive(&net).await;
        // Its manifest and the index placed, not kept inline: a corrupt copy of each is passed
        // over too.
        files.settings.inline_manifest_bytes = 0;
        files.settings.inline_index_bytes = 0;
        let bytes = pattern((MIB + 3) as usize, 3);
        let report = files
            .upload("notes.txt", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        // The copy a download asks for first (the nearest holder's) of every block is
        // flipped: each is checked against its address, and the next holder asked.
        let mut ids = std::collections::HashSet::new();
        for peer in net.closest(&[]) {
            ids.extend(net.store(peer).sample(usize::MAX).await.unwrap());
        }
        let mut flipped = 0;
        for id in ids {
            // The nearest holder that has it is the one its reference lists first.
            if let Some(first) = net
                .closest(&id.0)
                .into_iter()
                .find(|p| net.store(*p).tamper(&id))
            {
                flipped += 1;
                assert!(net.store(first).get(&id).await.unwrap().is_some());
            }
        }
        assert_eq!(flipped, 4, "two data blocks, the manifest and the index");
        assert_eq!(download(&files, &report.file.id).await.unwrap(), bytes);
        files.frees_done().await;
        let index_only = {
            let held = net.blocks_held().await.iter().sum::<u64>();
            held - (2 * 3 + 5) // two data blocks, three copies each, and a manifest, five
        };
        let freed = files.delete(&report.file.id).await.unwrap();
        assert_eq!(freed, 11);
        files.frees_done().await;
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), index_only);
        let gone = download(&files, &report.file.id).await;
        assert!(matches!(gone, Err(FileError::NoSuchFile)), "{gone:?}");
    }

    #[tokio::test]
    async fn a_holder_answering_with_too_few_proofs_fails_every_challenge_of_the_request() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let files = drive(&net).await;
        // Five blocks, 15 copies on 5 peers: one holds at least 3.
        let bytes = pattern((4 * MIB + 3) as usize, 5);
        files
            .upload("notes.txt", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        // The holder with the most blocks, asked about three it really holds.
        let mut held = Vec::new();
        for peer in net.closest(&[]) {
            held.push((peer, net.store(peer).sample(usize::MAX).await.unwrap()));
        }
        let (holder, ids) = held.into_iter().max_by_key(|(_, ids)| ids.len()).unwrap();
        let ids = &ids[..3];
        let honest = crate::audit::challenge_each(&net, holder, ids).await;
        assert!(
            honest
                .iter()
                .all(|o| matches!(o, crate::audit::Outcome::Held)),
            "{honest:?}"
        );
        // Leaving one proof out does not pass the other two: which proof is missing cannot
        // be told, so every block of the request counts as failed.
        net.set(holder, Conduct::ShortOfProofs);
        let short = crate::audit::challenge_each(&net, holder, ids).await;
        assert_eq!(short.len(), 3);
        for outcome in &short {
            match outcome {
                crate::audit::Outcome::Invalid(reason) => {
                    assert!(reason.contains("2 proofs for 3"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn holders_keep_every_copy_up_while_the_owner_is_away_and_every_first_holder_leaves() {
        use crate::repair;
        let net = FakeNet::new(6, 64 * MIB).await;
        let mut files = drive(&net).await;
        // The index placed as a blob of 5 copies, not riding in its record: repaired too.
        files.settings.inline_index_bytes = 0;
        let first = net.live();
        let big = pattern((2 * MIB + 100) as usize, 7);
        let small = pattern(300_000, 8);
        let mut ids = Vec::new();
        for (name, bytes) in [("big.bin", &big), ("small.bin", &small)] {
            let report = files
                .upload(name, bytes.as_slice(), |_| ControlFlow::Continue(()))
                .await
                .unwrap();
            assert!(report.complete, "{report:?}");
            ids.push(report.file.id);
        }
        // The owner is away from here on: only holders act. A peer that refuses every copy
        // (a tab that donates nothing) joins first: it lacks every block, so it is a place to
        // copy to for each, and must be passed over. Every round, two of the first holders
        // leave for good and two new peers join; then every live holder runs a repair round
        // (no grace: these leave for good, and the grace itself is tested in `repair`).
        let refuser = net.join(64 * MIB).await;
        net.set(
            refuser,
            Conduct::Refusing("this tab donates nothing".into()),
        );
        let settings = repair::Settings {
            interval: Duration::from_secs(1),
            tick: Duration::from_secs(1),
            grace: Duration::ZERO,
            ..Default::default()
        };
        let mut fleet = Fleet::new(settings);
        for leaving in first.chunks(2) {
            for peer in leaving {
                net.set(*peer, Conduct::Gone);
            }
            net.join(64 * MIB).await;
            net.join(64 * MIB).await;
            // A tick apart: each holder's walk owes its whole store again.
            fleet.rounds(&net, 2, Duration::from_secs(1)).await;
        }
        assert!(
            first.iter().all(|p| !net.live().contains(p)),
            "all first holders gone"
        );
        for (id, bytes) in ids.iter().zip([&big, &small]) {
            assert_eq!(&download(&files, id).await.unwrap(), bytes);
        }
        let log = fleet.log();
        let stored = (2 * MIB + 100 + 300_000) as f64;
        println!(
            "repair: {log:?}; {:.2} bytes copied per byte of file",
            log.bytes_copied as f64 / stored
        );
        assert!(log.copied > 0, "{log:?}");
        // Every block is back at the copies its owner asked for (5 for the manifests and the
        // index, 3 for data blocks) on live holders.
        let held = |net: FakeNet| async move {
            let mut copies: HashMap<crate::block::BlockId, (usize, u8)> = HashMap::new();
            for peer in net.live() {
                let store = net.store(peer);
                for id in store.ids_after(None, usize::MAX).await.unwrap() {
                    let wanted = store.warrants(&id).await.unwrap()[0].copies;
                    let entry = copies.entry(id).or_insert((0, wanted));
                    entry.0 += 1;
                }
            }
            copies
        };
        let copies = held(net.clone()).await;
        assert!(
            copies
                .values()
                .all(|(n, wanted)| *n >= usize::from(*wanted)),
            "{copies:?}"
        );
        assert!(copies.values().any(|(_, wanted)| *wanted == 5));
        // A delete frees the copies repair made too: nothing of either file is left, or the
        // holders would repair it back.
        for id in &ids {
            files.delete(id).await.unwrap();
        }
        files.frees_done().await;
        let left = held(net.clone()).await;
        assert_eq!(left.len(), 1, "only the index: {left:?}");
    }

    /// Six peers, each with a repairer on the shipped schedule but for the sweep (every
    /// second): each block is checked hourly, which never comes in a test, so only sweeps and
    /// the checks of blocks that just arrived run. With the clock the rounds are told.
    async fn swept_every_second(grace: Duration) -> (FakeNet, Fleet) {
        let settings = crate::repair::Settings {
            grace,
            sweep: Duration::from_secs(1),
            ..Default::default()
        };
        (FakeNet::new(6, 64 * MIB).await, Fleet::new(settings))
    }

    /// Alice's drive after it uploaded a file of 2 MiB and 100 bytes made from `seed`: three
    /// data blocks, a manifest and the index.
    async fn big_file_uploaded(net: &FakeNet, seed: u8) -> (Drive<FakeNet>, String, Vec<u8>) {
        let files = drive(net).await;
        let bytes = pattern((2 * MIB + 100) as usize, seed);
        let id = files
            .upload("big.bin", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap()
            .file
            .id;
        (files, id, bytes)
    }

    #[tokio::test]
    async fn on_the_hourly_schedule_holders_of_repair_copies_notice_their_fellows_leave() {
        // The repairers start before the upload and learn nothing from receipts: every holder
        // learns its fellows from the store requests that named them, the uploader's and then
        // the repairers' own.
        let (net, mut fleet) = swept_every_second(Duration::ZERO).await;
        fleet.rounds(&net, 1, SWEEP).await;
        let first = net.live();
        let (files, id, bytes) = big_file_uploaded(&net, 9).await;
        for leaving in first.chunks(2) {
            fleet.rounds(&net, 1, SWEEP).await;
            for peer in leaving {
                net.set(*peer, Conduct::Gone);
            }
            net.join(64 * MIB).await;
            net.join(64 * MIB).await;
            fleet.rounds(&net, 3, SWEEP).await;
        }
        assert_eq!(download(&files, &id).await.unwrap(), bytes);
        let log = fleet.log();
        assert!(log.copied > 0, "{log:?}");
    }

    #[tokio::test]
    async fn a_repairer_sweeps_the_holders_it_copied_to_and_notices_them_all_leave() {
        // A block's two other holders leave; the one left copies it to two new holders. Then
        // both of those leave: only the repairer is left to notice, and it sweeps them only
        // if it remembered whom it copied to (the hourly check never comes in a test).
        let (net, mut fleet) = swept_every_second(Duration::ZERO).await;
        fleet.rounds(&net, 1, SWEEP).await;
        let (files, id, bytes) = big_file_uploaded(&net, 21).await;
        let holders = async |block: BlockId| {
            let mut holding = Vec::new();
            for peer in net.live() {
                if net.held_by(peer).await.contains(&block) {
                    holding.push(peer);
                }
            }
            holding
        };
        // A data block (3 copies), and the holder that will be left with it.
        let mut block = None;
        for peer in net.live() {
            for held in net.held_by(peer).await {
                if net.store(peer).warrants(&held).await.unwrap()[0].copies == 3 {
                    block = Some(held);
                }
            }
        }
        let block = block.unwrap();
        let first = holders(block).await;
        assert_eq!(first.len(), 3, "{first:?}");
        let repairer = first[0];
        for wave in 0..2 {
            let leaving: Vec<PeerId> = holders(block)
                .await
                .into_iter()
                .filter(|p| *p != repairer)
                .collect();
            assert_eq!(leaving.len(), 2, "wave {wave}: {leaving:?}");
            for peer in &leaving {
                net.set(*peer, Conduct::Gone);
            }
            net.join(64 * MIB).await;
            net.join(64 * MIB).await;
            fleet.rounds(&net, 3, SWEEP).await;
            let now_held = holders(block).await;
            assert_eq!(
                now_held.len(),
                3,
                "wave {wave}: back at three: {now_held:?}"
            );
            assert!(now_held.iter().all(|p| !leaving.contains(p)));
        }
        assert_eq!(download(&files, &id).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn blocks_that_arrive_unnamed_are_surveyed_a_request_per_nearby_peer_and_named_ones_not_at_all(
    ) {
        let grace = crate::repair::Settings::default().grace;
        let (net, mut fleet) = swept_every_second(grace).await;
        fleet.round(&net).await;
        let files = drive(&net).await;
        let upload = async |seed: u8| {
            let bytes = pattern((6 * MIB) as usize, seed);
            files
                .upload("six.bin", bytes.as_slice(), |_| ControlFlow::Continue(()))
                .await
                .unwrap();
        };

        // An upload whose store requests named no fellow holders (as a peer older than the
        // names sends them): the names are dropped here before the repairers see them.
        upload(4).await;
        for peer in net.live() {
            net.named(peer).take();
        }
        let held = net.blocks_held().await;
        let copies: u64 = held.iter().sum();
        let before = net.challenges();
        fleet.rounds(&net, 1, SWEEP).await;

        // Every copy that arrived was checked, each against the other peers near it
        // (copies + spare of them, from the six)...
        let log = fleet.log();
        assert_eq!(log.checked, copies, "{log:?}");
        let (requests, challenged) = net.challenges();
        let (requests, challenged) = (requests - before.0, challenged - before.1);
        assert!(challenged as u64 >= copies * 5, "{challenged} challenges");
        // ... with one request from each holder to each of the others per batch of blocks
        // checked at once, not one per block and peer (copies × 5, here 105 or more).
        let others = net.live().len() - 1;
        let batches: u64 = held
            .iter()
            .map(|n| n.div_ceil(crate::holder::CHECKS_AT_ONCE as u64))
            .sum();
        assert!(
            requests as u64 <= batches * others as u64,
            "{requests} requests for {challenged} challenges in {batches} batches"
        );
        assert_eq!(log.copied, 0, "nothing was missing: {log:?}");

        // An upload that names each block's fellows: nothing is surveyed when its copies
        // arrive, and each sweep challenges each fellow holder on one block, whatever the
        // number of blocks they share (at most one request per pair of holders).
        upload(5).await;
        let fresh: u64 = net.blocks_held().await.iter().sum::<u64>() - copies;
        assert!(fresh >= 18, "{fresh} copies of the second upload");
        let pairs = (net.live().len() * others) as u64;
        for _ in 0..2 {
            let before = net.challenges();
            fleet.rounds(&net, 1, SWEEP).await;
            let (requests, challenged) = net.challenges();
            let (requests, challenged) = (requests - before.0, challenged - before.1);
            assert!(requests as u64 <= pairs, "{requests} requests");
            assert_eq!(requests, challenged, "one block a fellow");
        }
        assert_eq!(
            fleet.log(),
            log,
            "every fellow held its blocks: none checked"
        );
    }

    #[tokio::test]
    async fn an_owner_naming_made_up_fellow_holders_does_not_crowd_out_the_real_ones() {
        let (net, mut fleet) = swept_every_second(Duration::ZERO).await;
        fleet.rounds(&net, 1, SWEEP).await;
        let holders = net.live();
        let held = async || {
            let mut held = HashMap::new();
            for peer in net.live() {
                held.insert(peer, net.held_by(peer).await);
            }
            held
        };

        // Mallory's store requests name 7 made-up fellows each: 80 MiB puts about 40 blocks
        // on each of the six holders, 280 made-up names, more than a holder remembers (256).
        upload_naming(&net, Forged::MadeUp, 80, 7).await;

        // Alice uploads at the same time, honestly, before any holder's next sweep.
        let before = held().await;
        let alice = drive(&net).await;
        let bytes = pattern((4 * MIB) as usize, 8);
        let id = alice
            .upload("mine.bin", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap()
            .file
            .id;
        let after = held().await;
        let alices: std::collections::HashSet<BlockId> = after
            .iter()
            .flat_map(|(peer, ids)| ids.iter().filter(|id| !before[peer].contains(id)))
            .copied()
            .collect();
        assert!(alices.len() >= 4, "{} blocks of Alice's", alices.len());
        fleet.rounds(&net, 1, SWEEP).await;

        // The holder of most of Alice's blocks leaves: the others notice at their sweeps and
        // every one of her blocks has its three copies again.
        let leaving = *holders
            .iter()
            .max_by_key(|p| after[*p].iter().filter(|id| alices.contains(id)).count())
            .unwrap();
        net.set(leaving, Conduct::Gone);
        fleet.rounds(&net, 3, SWEEP).await;
        let now_held = held().await;
        for block in &alices {
            let copies = now_held.values().filter(|ids| ids.contains(block)).count();
            assert!(copies >= 3, "{copies} copies of {}", block.to_hex());
        }
        assert_eq!(download(&alice, &id).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn an_owner_naming_honest_holders_beside_its_own_blocks_costs_checks_of_those_blocks_only(
    ) {
        let (net, mut fleet) = swept_every_second(Duration::ZERO).await;
        fleet.rounds(&net, 1, SWEEP).await;
        // Alice's 16 MiB, named honestly; two sweeps and every holder has proven its fellows.
        let (alice, id, bytes) = big_file_uploaded(&net, 3).await;
        let more = pattern((14 * MIB) as usize, 4);
        alice
            .upload("more.bin", more.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        fleet.rounds(&net, 2, SWEEP).await;
        let mut before = HashMap::new();
        for peer in net.live() {
            before.insert(peer, net.held_by(peer).await);
        }

        // Mallory's store requests name every peer, most of which do not hold her blocks.
        upload_naming(&net, Forged::These(net.live()), 2, 5).await;
        // A wrong name costs a check of the block it was given for, once: at most one per
        // holder, block and peer named that does not hold it.
        let mut wrong = 0;
        for peer in net.live() {
            for block in net.held_by(peer).await {
                if !before[&peer].contains(&block) {
                    let copies = net.store(peer).warrants(&block).await.unwrap()[0].copies;
                    wrong += net.live().len() - usize::from(copies);
                }
            }
        }
        let checked = fleet.log().checked;
        fleet.rounds(&net, 8, SWEEP).await;
        let checked = fleet.log().checked - checked;
        // Were a wrong name to cost the honest peer it names its place among the fellows,
        // every block it shares with the holder (Alice's, mostly) would be checked each time.
        assert!(
            checked <= wrong as u64,
            "{checked} checks for {wrong} wrong names"
        );
        assert_eq!(download(&alice, &id).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn blocks_no_owner_renewed_for_the_keeping_time_are_dropped_and_renewed_ones_kept() {
        use crate::repair;
        const DAY: u64 = 24 * 60 * 60;
        let net = FakeNet::new(6, 64 * MIB).await;
        let (alice, bob) = (drive(&net).await, drive_of(&net, "bob").await);
        let mine = pattern((MIB + 100) as usize, 1);
        let theirs = pattern(200_000, 2);
        let mine_id = alice
            .upload("mine.bin", mine.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap()
            .file
            .id;
        let theirs_id = bob
            .upload("theirs.bin", theirs.as_slice(), |_| {
                ControlFlow::Continue(())
            })
            .await
            .unwrap()
            .file
            .id;
        alice.frees_done().await;
        bob.frees_done().await;
        let held_before: u64 = net.blocks_held().await.iter().sum();
        let signed = crate::platform::unix_secs();
        // Alice logs in 80 days later (her tab puts leases, here straight into the DHT); Bob
        // never comes back.
        for lease in alice.session().leases(signed + 80 * DAY).unwrap() {
            net.put_record(lease).await.unwrap();
        }
        let settings = repair::Settings {
            interval: Duration::from_secs(1),
            tick: Duration::from_secs(1),
            ..Default::default()
        };
        let mut fleet = Fleet::new(settings);
        let log = fleet.log.clone();
        // Each holder checks every block twice, a second apart (one interval): an owner is
        // taken as gone only when two lookups agree.
        let mut sweep = async |unix: u64| {
            fleet.unix = unix;
            fleet.rounds(&net, 2, Duration::from_secs(1)).await;
        };
        // 89 days after the upload, nothing has expired.
        sweep(signed + 89 * DAY).await;
        assert_eq!(log.lock().unwrap().expired, 0);
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), held_before);
        // 91 days after: Bob's blocks are gone everywhere (the space is free again), Alice's
        // are all there and her file reads back.
        sweep(signed + 91 * DAY).await;
        let expired = log.lock().unwrap().expired;
        assert!(expired > 0);
        let held_after: u64 = net.blocks_held().await.iter().sum();
        assert_eq!(held_after, held_before - expired);
        assert_eq!(download(&alice, &mine_id).await.unwrap(), mine);
        // Bob comes back in a new tab (a tab keeps the index it saw last): his index still
        // names the file (it rides in its record, which this network keeps; the DHT drops a
        // record 90 days after its owner last put it), but its blocks are gone.
        let bob = same_user_elsewhere(&bob);
        assert_eq!(bob.list().await.unwrap().len(), 1);
        let lost = download(&bob, &theirs_id).await;
        assert!(lost.is_err(), "Bob's blocks are gone: {lost:?}");
        // 171 days after: 91 since Alice renewed; hers go too.
        sweep(signed + 171 * DAY).await;
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), 0);
    }

    #[tokio::test]
    async fn an_upload_cut_short_by_a_closed_tab_is_freed_at_the_next_log_in() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let settings = Settings {
            abandoned_after: Duration::ZERO,
            ..Settings::default()
        };
        let (files, _) = journaled_drive(&net, settings).await;
        let kept = pattern(300_000, 9);
        let report = files
            .upload("kept.txt", kept.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        let before: u64 = net.blocks_held().await.iter().sum();
        // The tab closes mid-upload: the upload is dropped once two of its blocks are placed,
        // with more in flight; nothing frees them.
        let (placed, closed) = futures::channel::oneshot::channel::<()>();
        let mut placed = Some(placed);
        /// A file read slowly, as from a disk: each read waits a moment first, so the tab can
        /// close while the upload waits (the in-memory network itself never makes it wait).
        struct SlowDisk<'a>(&'a [u8]);
        impl Source for SlowDisk<'_> {
            fn size(&self) -> u64 {
                self.0.len() as u64
            }
            async fn read(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, FileError> {
                tokio::time::sleep(Duration::from_millis(1)).await;
                self.0.read(offset, len).await
            }
        }
        let big = pattern((6 * MIB) as usize, 10);
        let upload = files.upload("big.bin", SlowDisk(&big), |done| {
            if done >= 2 * MIB {
                placed.take().map(|p| p.send(()));
            }
            ControlFlow::Continue(())
        });
        futures::future::select(Box::pin(upload), closed).await;
        let left: u64 = net.blocks_held().await.iter().sum();
        assert!(
            left >= before + 2 * 3,
            "blocks left behind: {before} then {left}"
        );
        assert_eq!(files.list().await.unwrap().len(), 1);

        // The next log-in in this browser frees them; the finished file is untouched.
        let freed = files.finish_uploads().await.unwrap();
        assert!(freed >= 2, "{freed}");
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), before);
        assert_eq!(files.finish_uploads().await.unwrap(), 0, "done once");
        assert_eq!(download(&files, &report.file.id).await.unwrap(), kept);
    }

    #[tokio::test]
    async fn an_upload_over_the_quota_is_refused_before_anything_is_placed() {
        let net = FakeNet::new(4, 64 * MIB).await;
        let files = drive(&net).await.donating(Donation {
            keypair: Keypair::generate_ed25519(),
            bytes: 3 * MIB,
        });
        assert_eq!(files.quota().await.unwrap().quota, MIB);
        let over = files
            .upload(
                "too big.bin",
                pattern((MIB + 1) as usize, 4).as_slice(),
                |_| ControlFlow::Continue(()),
            )
            .await;
        assert!(
            matches!(over, Err(FileError::OverQuota { size, used: 0, quota }) if size == MIB + 1 && quota == MIB),
            "{over:?}"
        );
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), 0);
    }

    /// Waits (up to 5 s) until `net` has walked `walks` times in all, then checks that no
    /// store request went out and lets record lookups answer.
    async fn walked_then_answer(net: &FakeNet, walks: usize) {
        for _ in 0..5_000 {
            if net.walks() >= walks {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            net.walks() >= walks,
            "no placement walk while the index loaded: {} of {walks}",
            net.walks()
        );
        assert_eq!(
            net.stores(),
            0,
            "a block went out before its pledges were known"
        );
        net.answer_lookups();
    }

    #[tokio::test]
    async fn an_upload_seals_and_walks_for_its_first_blocks_while_the_index_loads() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let files = drive(&net).await;
        let data = pattern((3 * MIB) as usize, 5);
        // The DHT answers no record lookup until a walk for each of the 3 blocks is done (and
        // no store request has gone out): the upload must not wait for its index to start.
        net.hold_lookups();
        let walks = net.walks() + 3;
        let upload = files.upload("early.bin", data.as_slice(), |_| ControlFlow::Continue(()));
        let (report, ()) = futures::join!(upload, walked_then_answer(&net, walks));
        let report = report.unwrap();
        assert!(report.complete);
        assert_eq!(download(&files, &report.file.id).await.unwrap(), data);
    }

    #[tokio::test]
    async fn a_small_upload_reads_its_index_record_once_and_a_long_one_again_before_its_commit() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        // Every block is walked for right after the quota check's lookup: the commit ahead
        // changes the index that lookup read.
        let before = net.record_gets();
        let small = pattern((MIB + 7) as usize, 8);
        let report = files
            .upload("note.txt", small.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert_eq!(net.record_gets() - before, 1);
        assert_eq!(download(&files, &report.file.id).await.unwrap(), small);
        // Holders taking 1.5 s per request: the last of 14 blocks is walked for after three
        // rounds of 4 (pipeline) are under way, over 2 s after the lookup, so the commit reads
        // the record again (another browser may have saved meanwhile).
        net.set_all(Conduct::Slow(Duration::from_millis(1500)));
        let before = net.record_gets();
        let long = pattern((14 * MIB) as usize, 9);
        files
            .upload("long.bin", long.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert_eq!(net.record_gets() - before, 2);
        net.set_all(Conduct::Honest);
        assert_eq!(listed(&files).await, ["long.bin", "note.txt"]);
    }

    #[tokio::test]
    async fn a_holder_that_stalls_costs_a_download_the_hedge_not_the_fetch_deadline() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let mut files = drive(&net).await;
        files.settings.hedge_after = Duration::from_millis(300);
        let data = pattern((48 * MIB) as usize, 4);
        let id = files
            .upload("film.mkv", data.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap()
            .file
            .id;
        // The holder listed first for the most blocks (its first holder is the peer nearest a
        // block's address) takes every request and answers none within the fetch deadline: at
        // least 9 of the 50 blocks (48, the manifest and the index), so 7 or more of the file's.
        let mut first_for: HashMap<PeerId, usize> = HashMap::new();
        for peer in net.live() {
            for block in net.held_by(peer).await {
                *first_for.entry(net.closest(&block.0)[0]).or_default() += 1;
            }
        }
        let (&staller, &blocks) = first_for.iter().max_by_key(|(_, n)| **n).unwrap();
        assert!(blocks >= 9, "first for {blocks} blocks");
        net.set(staller, Conduct::Slow(Duration::from_secs(30)));
        let (started, asked) = (std::time::Instant::now(), net.fetches_to(staller));
        assert_eq!(download(&files, &id).await.unwrap(), data);
        // Waiting for it would take the deadline (10 s) per block it is first for.
        let took = started.elapsed();
        assert!(
            took < files.settings.fetch_deadline / 2,
            "the download took {took:?}"
        );
        // Once found slow it is asked last: the fetches that had already asked it when the
        // first hedge went past it (at most the pipeline's 4) did, and on a loaded machine a
        // few more whose honest holders took over the 300 ms hedge themselves (5 seen once,
        // with 200 tests at once on 2 cores). Without the memory it is asked 17 times.
        let asked = net.fetches_to(staller) - asked;
        assert!(asked <= 2 * files.settings.pipeline, "asked {asked} times");
    }

    #[tokio::test]
    async fn a_download_fetches_its_first_blocks_while_the_index_reloads() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let files = drive(&net).await;
        let data = pattern((6 * MIB + 3) as usize, 6);
        let report = files
            .upload("film.mkv", data.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        // The DHT answers no record lookup until the manifest and the first blocks were
        // fetched: the download must not wait for its index to start, nor hand a block on
        // before the index answered.
        net.hold_lookups();
        let answered = std::sync::atomic::AtomicBool::new(false);
        let before = net.fetches();
        let watch = async {
            let ahead = before + 1 + files.settings.pipeline;
            for _ in 0..5_000 {
                if net.fetches() >= ahead {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(net.fetches() >= ahead, "{} fetches", net.fetches() - before);
            answered.store(true, std::sync::atomic::Ordering::SeqCst);
            net.answer_lookups();
        };
        let mut out = Vec::new();
        let downloading = files.download(&report.file.id, |block| {
            assert!(
                answered.load(std::sync::atomic::Ordering::SeqCst),
                "a block before the index"
            );
            out.extend_from_slice(&block);
            ControlFlow::Continue(())
        });
        let (downloaded, ()) = futures::join!(downloading, watch);
        downloaded.unwrap();
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn a_file_deleted_in_another_browser_is_no_such_file_despite_the_head_start() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let here = drive(&net).await;
        let data = pattern((2 * MIB) as usize, 7);
        let report = here
            .upload("gone.bin", data.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        // The same user in another browser deletes it; this tab's cache still lists it.
        let there = same_user_elsewhere(&here);
        there.delete(&report.file.id).await.unwrap();
        let mut handed = 0;
        let downloaded = here
            .download(&report.file.id, |_| {
                handed += 1;
                ControlFlow::Continue(())
            })
            .await;
        assert!(
            matches!(downloaded, Err(FileError::NoSuchFile)),
            "{downloaded:?}"
        );
        assert_eq!(handed, 0, "blocks handed on");
    }

    #[tokio::test]
    async fn a_small_upload_places_its_index_while_its_block_is_on_its_way() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let mut files = drive(&net).await;
        // The index placed, not riding in its record.
        files.settings.inline_index_bytes = 0;
        let data = pattern(MIB as usize, 3);
        // Holders take 2 s to answer: the index's copies must go out before the block's
        // come back (placed after the block, they would wait for its answers).
        net.set_all(Conduct::Slow(Duration::from_secs(2)));
        let before = net.stores();
        let ahead = before + 3 + files.settings.meta_replicas;
        let watch = async {
            let deadline = std::time::Instant::now() + Duration::from_millis(1500);
            while net.stores() < ahead && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(net.stores(), ahead, "stores while the block was on its way");
        };
        let upload = files.upload("small.bin", data.as_slice(), |_| ControlFlow::Continue(()));
        let (report, ()) = futures::join!(upload, watch);
        let report = report.unwrap();
        assert!(report.complete, "{report:?}");
        net.set_all(Conduct::Honest);
        assert_eq!(download(&files, &report.file.id).await.unwrap(), data);
    }

    #[tokio::test]
    async fn blocks_that_land_off_their_walks_peers_are_listed_where_they_landed() {
        // One holder of four refuses: each block it was foreseen to hold goes to the fourth
        // peer instead, and what was placed ahead on the foresight (almost surely wrong for
        // one of 8 blocks) must be freed, with the file listed where its blocks are.
        let net = FakeNet::new(4, 64 * MIB).await;
        let files = drive(&net).await;
        let refuser = net.closest(&[])[0];
        net.set(refuser, Conduct::Refusing("full".into()));
        files
            .upload("first.txt", b"kept".as_slice(), |_| {
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        files.frees_done().await;
        let before: u64 = net.blocks_held().await.iter().sum();
        let data = pattern((8 * MIB) as usize, 4);
        let report = files
            .upload("moved.bin", data.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert!(report.complete, "{report:?}");
        assert_eq!(download(&files, &report.file.id).await.unwrap(), data);
        let (index, _, at, key) = entry_and_key(&files, &report.file.id).await.unwrap();
        let blocks = manifest(&files, &index.files[at], &key)
            .await
            .unwrap()
            .blocks;
        assert_eq!(blocks.len(), 8);
        for block in &blocks {
            assert!(!block.holders.contains(&refuser.to_string()), "{block:?}");
            for holder in &block.holders {
                let peer: PeerId = holder.parse().unwrap();
                assert!(net.store(peer).has(&block.id).await.unwrap(), "{block:?}");
            }
        }
        // Deleting the file leaves what was there before it: nothing placed ahead is left.
        files.delete(&report.file.id).await.unwrap();
        files.frees_done().await;
        let after: u64 = net.blocks_held().await.iter().sum();
        assert_eq!(
            after, before,
            "blocks held before the upload and after its delete"
        );
    }

    #[tokio::test]
    async fn an_upload_walks_for_two_blocks_ahead_while_its_slots_are_busy_and_sends_no_more() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let pipeline = files.settings.pipeline;
        let data = pattern((7 * MIB) as usize, 8);
        // Holders take 2 s to answer: the first `pipeline` blocks hold every slot meanwhile.
        net.set_all(Conduct::Slow(Duration::from_secs(2)));
        let before = net.walks();
        let watch = async {
            let ahead = before + pipeline + 2;
            // Well before the first answers, 2 s in.
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            while net.walks() < ahead && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(
                net.walks() >= ahead,
                "{} walks while {pipeline} blocks were being stored",
                net.walks() - before
            );
            assert!(net.stores() <= pipeline * 3, "{} stores", net.stores());
        };
        let upload = files.upload("ahead.bin", data.as_slice(), |_| ControlFlow::Continue(()));
        let (report, ()) = futures::join!(upload, watch);
        let report = report.unwrap();
        // Copies of `pipeline` blocks at once, and those of the manifest placed ahead while
        // the last blocks are on their way (`ahead.rs`).
        let peak = net.peak_storing();
        let most = pipeline * 3 + files.settings.meta_replicas;
        assert!(
            (pipeline * 3..=most).contains(&peak),
            "{peak} stores at once"
        );
        net.set_all(Conduct::Honest);
        assert_eq!(download(&files, &report.file.id).await.unwrap(), data);
    }

    #[tokio::test]
    async fn a_cancelled_upload_sends_none_of_the_blocks_it_walked_for_ahead() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let pipeline = files.settings.pipeline;
        net.set_all(Conduct::Slow(Duration::from_millis(300)));
        let data = pattern((10 * MIB) as usize, 9);
        // Cancelled as the first block is placed: 3 more are being sent and 2 walked for.
        let cancelled = files
            .upload("cancelled.bin", data.as_slice(), |_| ControlFlow::Break(()))
            .await;
        assert!(
            matches!(cancelled, Err(FileError::Cancelled)),
            "{cancelled:?}"
        );
        // Those being sent finish, and one walked for may take the first slot freed before the
        // cancel is heard; the other is never sent.
        let stores = net.stores();
        assert!(stores <= (pipeline + 1) * 3, "{stores} store requests");
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), 0, "all freed");
    }

    #[tokio::test]
    async fn an_upload_found_over_quota_after_its_first_blocks_were_sealed_stores_nothing() {
        let net = FakeNet::new(4, 64 * MIB).await;
        let journal = Shared::new(UploadJournal::in_memory());
        let files = drive(&net)
            .await
            .donating(Donation {
                keypair: Keypair::generate_ed25519(),
                bytes: 3 * MIB,
            })
            .journaling(journal.clone());
        net.hold_lookups();
        let walks = net.walks() + 2;
        let data = pattern((2 * MIB) as usize, 6);
        let upload = files.upload(
            "too big.bin",
            data.as_slice(),
            |_| ControlFlow::Continue(()),
        );
        let (over, ()) = futures::join!(upload, walked_then_answer(&net, walks));
        assert!(
            matches!(over, Err(FileError::OverQuota { size, used: 0, quota }) if size == 2 * MIB && quota == MIB),
            "{over:?}"
        );
        assert_eq!(net.stores(), 0);
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), 0);
        assert_eq!(
            files.finish_uploads().await.unwrap(),
            0,
            "nothing left to free"
        );
    }
}
