//! A hostile DHT peer: a plain libp2p swarm that speaks Jellyfish's Kademlia and identify, joins
//! a cluster like any other peer, takes the records it is asked to store, and answers record
//! queries with whatever its [`Forge`] says, not with what it holds.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use futures::{channel::mpsc, channel::oneshot, SinkExt, StreamExt};
use jellyfish_peer::protocol::KAD_PROTOCOL;
use libp2p::{
    identify,
    identity::Keypair,
    kad::{
        self,
        store::{MemoryStore, RecordStore},
        ProviderRecord, Record, RecordKey,
    },
    swarm::NetworkBehaviour,
    Multiaddr, PeerId,
};

/// What a hostile peer answers to a record query.
#[derive(Clone)]
pub(crate) enum Forge {
    /// The first record it was asked to store (another account's, validly signed, under that
    /// account's key), whatever key was asked for.
    FirstStoredForAnyKey,
    /// These records for these keys (records it made up itself, under the right keys), and
    /// nothing for any other key.
    These(HashMap<Vec<u8>, Vec<u8>>),
}

/// What the test can see of a running hostile peer, and how it tells it to act.
#[derive(Clone)]
pub(crate) struct Hostile {
    pub(crate) peer_id: PeerId,
    flood: mpsc::Sender<(Vec<Record>, oneshot::Sender<usize>)>,
    /// Record queries answered with a forged record.
    pub(crate) forged_answers: Arc<AtomicUsize>,
    /// Records it was asked to store.
    pub(crate) stored: Arc<AtomicUsize>,
}

struct ForgingStore {
    inner: MemoryStore,
    forge: Forge,
    first: Arc<Mutex<Option<Record>>>,
    forged_answers: Arc<AtomicUsize>,
    stored: Arc<AtomicUsize>,
}

impl RecordStore for ForgingStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, key: &RecordKey) -> Option<Cow<'_, Record>> {
        let forged = match &self.forge {
            Forge::FirstStoredForAnyKey => self.first.lock().unwrap().clone(),
            Forge::These(records) => records
                .get(key.as_ref())
                .map(|value| Record::new(key.clone(), value.clone())),
        };
        if forged.is_some() {
            self.forged_answers.fetch_add(1, Ordering::SeqCst);
        }
        forged.map(Cow::Owned)
    }

    fn put(&mut self, record: Record) -> kad::store::Result<()> {
        self.stored.fetch_add(1, Ordering::SeqCst);
        self.first
            .lock()
            .unwrap()
            .get_or_insert_with(|| record.clone());
        self.inner.put(record)
    }

    fn remove(&mut self, key: &RecordKey) {
        self.inner.remove(key);
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> kad::store::Result<()> {
        self.inner.add_provider(record)
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.inner.providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.inner.provided()
    }

    fn remove_provider(&mut self, key: &RecordKey, provider: &PeerId) {
        self.inner.remove_provider(key, provider);
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    kad: kad::Behaviour<ForgingStore>,
}

/// Starts a hostile peer on the in-memory transport and walks the DHT from `bootstrap`.
pub(crate) async fn start(bootstrap: Multiaddr, forge: Forge) -> Hostile {
    let key = Keypair::generate_ed25519();
    let peer_id = key.public().to_peer_id();
    let forged_answers = Arc::new(AtomicUsize::new(0));
    let stored = Arc::new(AtomicUsize::new(0));
    let store = ForgingStore {
        inner: MemoryStore::new(peer_id),
        forge,
        first: Arc::default(),
        forged_answers: forged_answers.clone(),
        stored: stored.clone(),
    };
    let mut swarm = super::swarm(key, |key| {
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad::Config::new(KAD_PROTOCOL));
        kad.set_mode(Some(kad::Mode::Server));
        Behaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                jellyfish_protocols::IDENTIFY.into(),
                key.public(),
            )),
            kad,
        }
    });
    swarm.listen_on(super::LISTEN.parse().unwrap()).unwrap();
    let Some(libp2p::multiaddr::Protocol::P2p(first)) = bootstrap.iter().last() else {
        panic!("the bootstrap address must end in /p2p/<peer id>");
    };
    swarm.behaviour_mut().kad.add_address(&first, bootstrap);
    swarm.behaviour_mut().kad.bootstrap().unwrap();
    let (flood, mut floods) = mpsc::channel::<(Vec<Record>, oneshot::Sender<usize>)>(1);
    tokio::spawn(async move {
        // Puts in flight, and how many other peers acknowledged the flood so far.
        let mut pending: HashMap<kad::QueryId, ()> = HashMap::new();
        let mut acknowledged = 0;
        let mut done: Option<oneshot::Sender<usize>> = None;
        loop {
            tokio::select! {
                event = swarm.select_next_some() => {
                    if let libp2p::swarm::SwarmEvent::Behaviour(BehaviourEvent::Kad(
                        kad::Event::OutboundQueryProgressed {
                            id,
                            result: kad::QueryResult::PutRecord(result),
                            ..
                        },
                    )) = event
                    {
                        if pending.remove(&id).is_some() && result.is_ok() {
                            acknowledged += 1;
                        }
                        if pending.is_empty() {
                            if let Some(done) = done.take() {
                                let _ = done.send(acknowledged);
                            }
                        }
                    }
                }
                Some((records, reply)) = floods.next() => {
                    for record in records {
                        if let Ok(id) = swarm.behaviour_mut().kad.put_record(record, kad::Quorum::One) {
                            pending.insert(id, ());
                        }
                    }
                    done = Some(reply);
                }
            }
        }
    });
    Hostile {
        peer_id,
        flood,
        forged_answers,
        stored,
    }
}

impl Hostile {
    /// Puts `records` into the DHT as fast as Kademlia goes; resolves to how many puts at least
    /// one other peer acknowledged (an acknowledgement says nothing of whether it kept it).
    pub(crate) async fn flood(&self, records: Vec<Record>) -> usize {
        let (tx, rx) = oneshot::channel();
        self.flood.clone().send((records, tx)).await.unwrap();
        rx.await.unwrap()
    }
}
