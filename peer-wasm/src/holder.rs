//! Serving what this peer holds: answers other peers' block requests from the [`BlockStore`].
//!
//! A store request is honoured only if the block is no larger than a sealed block, its owner's
//! key is a usable RSA key, the owner signed the block's address, it fits in the donated space,
//! and the owner's pledges ([`crate::pledge`]) cover what this peer would then hold for them.
//! A delete, signed by an owner, drops only that owner's claim on the block: the bytes stay
//! for any other owner who stored the same sealed block.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Mutex,
};

use futures::{channel::mpsc, StreamExt};
use libp2p::PeerId;
use web_time::Instant;

use crate::{
    block::{BlockId, MAX_SEALED_BLOCK},
    crypto::{rsa_keys::PublicKey, sha256},
    donor_audit::{self, Book},
    key_history,
    net::{Client, InboundRequest},
    platform::Shared,
    pledge,
    protocol::{delete_statement, store_statement, Request, Response, MAX_INVENTORY_SAMPLE},
    store::{BlockStore, Release},
};

/// Whether a holder answers transport probes (`Discard`, `Fill`): only on networks run for
/// benchmarks ([`crate::net::Config::answer_probes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probes {
    /// Answered: the network measures its transport.
    Answered,
    /// Refused: a 20-byte request for 1 MiB is an amplifier anywhere else.
    Refused,
}

/// How a holder counts an owner's pledges.
#[derive(Clone, Copy)]
pub enum Pledges<'a> {
    /// Each valid pledge in full (unit tests of the other rules).
    InFull,
    /// Each by its peer's audits ([`crate::donor_audit`]); peers due for one are queued for the
    /// auditor that runs beside the holder.
    Audited(&'a DonorAudits),
}

/// What the holder knows of pledging peers, and the queue of peers to audit.
pub struct DonorAudits {
    book: Mutex<Book>,
    /// Peers queued and not yet audited (each is queued once).
    queued: Mutex<HashSet<PeerId>>,
    /// One sender, locked: a clone per send would each bring a slot of its own and leave the
    /// queue unbounded.
    due: Mutex<mpsc::Sender<PeerId>>,
}

/// Peers waiting for an audit at once; beyond, a peer is queued at its owner's next store (and
/// its pledge stays within the owner's one provisional share meanwhile).
const AUDIT_QUEUE: usize = 64;

impl DonorAudits {
    /// The book, and the queue the auditor ([`audit_donors`]) reads.
    pub fn new() -> (Shared<Self>, mpsc::Receiver<PeerId>) {
        let (due, queue) = mpsc::channel(AUDIT_QUEUE);
        let audits = Self {
            book: Mutex::new(Book::default()),
            queued: Mutex::new(HashSet::new()),
            due: Mutex::new(due),
        };
        (Shared::new(audits), queue)
    }

    /// What `donors` count for now; queues those due for an audit.
    fn donated(&self, donors: &BTreeMap<PeerId, u64>) -> u64 {
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

    fn record(&self, peer: PeerId, outcome: donor_audit::Outcome) {
        if let Ok(mut book) = self.book.lock() {
            book.record(peer, outcome, Instant::now());
        }
        if let Ok(mut queued) = self.queued.lock() {
            queued.remove(&peer);
        }
    }
}

/// Audits the pledging peers the holder queues, one at a time, until the network stops.
pub(crate) async fn audit_donors(
    client: Client,
    mut queue: mpsc::Receiver<PeerId>,
    audits: Shared<DonorAudits>,
) {
    while let Some(peer) = queue.next().await {
        let outcome = crate::audit::audit_donor(&client, peer).await;
        tracing::info!(%peer, ?outcome, "pledging peer audited");
        audits.record(peer, outcome);
    }
}

/// Answers inbound block requests until the network stops.
pub(crate) async fn serve(
    client: Client,
    mut inbound: mpsc::Receiver<InboundRequest>,
    store: Shared<BlockStore>,
    probes: Probes,
    audits: Shared<DonorAudits>,
) {
    while let Some(InboundRequest { id, peer, request }) = inbound.next().await {
        let response = answer(&store, request, probes, Pledges::Audited(&audits)).await;
        if let Response::Refused { reason } = &response {
            tracing::info!(%peer, "block request refused: {reason}");
        }
        if client.respond(id, response).await.is_err() {
            return;
        }
    }
}

fn refused(reason: impl Into<String>) -> Response {
    Response::Refused {
        reason: reason.into(),
    }
}

/// The answer to one request, and its effect on the store.
pub async fn answer(
    store: &BlockStore,
    request: Request,
    probes: Probes,
    pledges_count: Pledges<'_>,
) -> Response {
    match request {
        Request::StoreBlock {
            block,
            owner,
            signature,
            pledges,
        } => {
            if block.len() > MAX_SEALED_BLOCK {
                return refused(format!("a block is at most {MAX_SEALED_BLOCK} bytes"));
            }
            let id = BlockId::of(&block);
            let key = match PublicKey::from_der(&owner) {
                Ok(key) => key,
                Err(e) => return refused(format!("owner key: {e}")),
            };
            if key.verify(&store_statement(&id), &signature).is_err() {
                return refused("the owner's signature does not cover this block");
            }
            let owner = sha256(&owner);
            let donors = match pledge::donors(&pledges, &owner) {
                Ok(donors) => donors,
                Err(e) => return refused(e.to_string()),
            };
            let allowance = pledge::allowance_of(match pledges_count {
                Pledges::InFull => donors.values().sum(),
                Pledges::Audited(audits) => audits.donated(&donors),
            });
            match store.put(id, block, owner, allowance).await {
                Ok(()) => Response::Stored,
                Err(e) => refused(e.to_string()),
            }
        }
        Request::Prove { id, challenge } => match store.get(&id).await {
            Ok(Some(bytes)) => Response::Proof {
                proof: crate::proof::prove(&bytes, challenge),
            },
            Ok(None) => refused("block not held here"),
            Err(e) => refused(e.to_string()),
        },
        Request::Inventory => {
            let held = match store.usage().await {
                Ok(usage) => usage.used,
                Err(e) => return refused(e.to_string()),
            };
            match store.sample(MAX_INVENTORY_SAMPLE).await {
                Ok(sample) => Response::Inventory { held, sample },
                Err(e) => refused(e.to_string()),
            }
        }
        Request::FetchBlock { id } => match store.get(&id).await {
            Ok(Some(bytes)) => Response::Block { bytes },
            Ok(None) => refused("block not held here"),
            Err(e) => refused(e.to_string()),
        },
        Request::DeleteBlock {
            id,
            owner,
            signature,
            history,
        } => {
            let Ok(key) = PublicKey::from_der(&owner) else {
                return refused("unusable owner key");
            };
            if key.verify(&delete_statement(&id), &signature).is_err() {
                return refused("the owner's signature does not cover this delete");
            }
            if let Err(e) = key_history::verify(&history, &owner) {
                return refused(e.to_string());
            }
            // The signer's own claim, else one of its earlier keys' (newest first): after a
            // password change the account frees what it stored before.
            let claimants = std::iter::once(owner.as_slice())
                .chain(history.iter().rev().map(|l| l.previous.as_slice()));
            for claimant in claimants {
                match store.release(&id, &sha256(claimant)).await {
                    Ok(Release::NotClaimed) => continue,
                    Ok(Release::NotHeld | Release::Released | Release::Deleted) => {
                        return Response::Deleted
                    }
                    Err(e) => return refused(e.to_string()),
                }
            }
            refused("only an owner who stored the block may delete it")
        }
        Request::Discard { .. } | Request::Fill { .. } if probes == Probes::Refused => {
            refused("transport probes are off on this network")
        }
        Request::Discard { .. } => Response::Discarded,
        Request::Fill { len } => Response::Block {
            bytes: vec![0; (len as usize).min(MAX_SEALED_BLOCK)],
        },
        Request::Hello { .. } => refused("hello is answered by the network layer"),
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use libp2p::identity::Keypair;

    use super::*;
    use crate::{
        crypto::rsa_keys::PrivateKey,
        pledge::{Pledge, ALLOWANCE_SLACK, NETWORK_REPLICAS},
    };

    const MIB: u64 = 1024 * 1024;

    /// A holder's answer where probes are on and pledges count in full (other rules' tests).
    async fn ask(store: &BlockStore, request: Request) -> Response {
        answer(store, request, Probes::Answered, Pledges::InFull).await
    }

    struct Owner {
        key: PrivateKey,
        der: Vec<u8>,
    }

    impl Owner {
        fn new() -> Self {
            let key = PrivateKey::generate_bits(2048).unwrap();
            let der = key.public().to_der().unwrap();
            Self { key, der }
        }

        fn hash(&self) -> [u8; 32] {
            sha256(&self.der)
        }

        fn store(&self, block: Vec<u8>, pledges: Vec<Pledge>) -> Request {
            Request::StoreBlock {
                signature: self.key.sign(&store_statement(&BlockId::of(&block))),
                block,
                owner: self.der.clone(),
                pledges,
            }
        }
    }

    fn block(seed: u8) -> Vec<u8> {
        vec![seed; MIB as usize]
    }

    fn is_refused(response: &Response, needle: &str) -> bool {
        matches!(response, Response::Refused { reason } if reason.contains(needle))
    }

    #[tokio::test]
    async fn holders_refuse_owners_their_pledges_do_not_cover() {
        let store = BlockStore::open(1024 * MIB).await.unwrap();
        let (alice, mallory) = (Owner::new(), Owner::new());
        let donor = Keypair::generate_ed25519();

        // A freeloader: no pledge, nothing stored.
        let refused = ask(&store, mallory.store(block(1), vec![])).await;
        assert!(
            is_refused(&refused, "donations do not cover"),
            "{refused:?}"
        );

        // Borrowing alice's pledge does not help mallory.
        let alices = Pledge::sign(&donor, alice.hash(), 3 * MIB).unwrap();
        let refused = ask(&store, mallory.store(block(2), vec![alices.clone()])).await;
        assert!(is_refused(&refused, "another user"), "{refused:?}");

        // Alice's 3 MiB donation earns 1 MiB here, plus the slack for manifests and indexes.
        let allowance = 3 * MIB / NETWORK_REPLICAS + ALLOWANCE_SLACK;
        let fits = allowance / MIB;
        for seed in 0..fits {
            let stored = ask(
                &store,
                alice.store(block(10 + seed as u8), vec![alices.clone()]),
            );
            assert_eq!(stored.await, Response::Stored);
        }
        let over = ask(&store, alice.store(block(200), vec![alices.clone()])).await;
        assert!(is_refused(&over, "donations do not cover"), "{over:?}");
        assert_eq!(store.held_for(&alice.hash()).await.unwrap(), fits * MIB);
        assert_eq!(store.held_for(&mallory.hash()).await.unwrap(), 0);

        // Deleting frees the owner's allowance again.
        let first = BlockId::of(&block(10));
        assert_eq!(ask(&store, delete(&alice, first)).await, Response::Deleted);
        let again = ask(&store, alice.store(block(200), vec![alices])).await;
        assert_eq!(again, Response::Stored);
    }

    fn delete(owner: &Owner, id: BlockId) -> Request {
        Request::DeleteBlock {
            id,
            owner: owner.der.clone(),
            signature: owner.key.sign(&delete_statement(&id)),
            history: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_later_key_frees_what_an_earlier_one_stored_and_a_thief_does_not() {
        use crate::key_history::KeyLink;
        let store = BlockStore::open(1024 * MIB).await.unwrap();
        let (old, new, thief) = (Owner::new(), Owner::new(), Owner::new());
        let donor = Keypair::generate_ed25519();
        let pledge = Pledge::sign(&donor, old.hash(), 30 * MIB).unwrap();
        let bytes = block(7);
        let id = BlockId::of(&bytes);
        assert_eq!(
            ask(&store, old.store(bytes, vec![pledge])).await,
            Response::Stored
        );
        let delete_with = |owner: &Owner, history: Vec<KeyLink>| Request::DeleteBlock {
            id,
            owner: owner.der.clone(),
            signature: owner.key.sign(&delete_statement(&id)),
            history,
        };
        // The thief names the old key as his past, without its signature: refused.
        let forged = KeyLink {
            previous: old.der.clone(),
            signature: thief.key.sign(b"anything"),
        };
        let refused = ask(&store, delete_with(&thief, vec![forged])).await;
        assert!(is_refused(&refused, "key history refused"), "{refused:?}");
        // Without history the new key has no claim; with the old key's hand-over it frees it.
        let bare = ask(&store, delete_with(&new, Vec::new())).await;
        assert!(is_refused(&bare, "only an owner"), "{bare:?}");
        let link = KeyLink::sign(&old.key, &new.key.public()).unwrap();
        assert_eq!(
            ask(&store, delete_with(&new, vec![link])).await,
            Response::Deleted
        );
        assert_eq!(store.held_for(&old.hash()).await.unwrap(), 0);
        assert_eq!(store.usage().await.unwrap().used, 0);
    }

    #[tokio::test]
    async fn a_first_storer_cannot_delete_another_owners_block() {
        let store = BlockStore::open(1024 * MIB).await.unwrap();
        let (alice, mallory, eve) = (Owner::new(), Owner::new(), Owner::new());
        let donor = Keypair::generate_ed25519();
        let alices = Pledge::sign(&donor, alice.hash(), 30 * MIB).unwrap();
        let mallorys = Pledge::sign(&donor, mallory.hash(), 30 * MIB).unwrap();
        let bytes = block(5);
        let id = BlockId::of(&bytes);

        // The attack: Mallory has a copy of Alice's sealed block (she held it, or saw it
        // pass), stores it first, and deletes it once Alice has stored it too.
        let first = ask(&store, mallory.store(bytes.clone(), vec![mallorys])).await;
        assert_eq!(first, Response::Stored);
        let second = ask(&store, alice.store(bytes.clone(), vec![alices])).await;
        assert_eq!(second, Response::Stored);
        assert_eq!(store.usage().await.unwrap().used, MIB, "held once");
        assert_eq!(store.held_for(&alice.hash()).await.unwrap(), MIB);
        assert_eq!(store.held_for(&mallory.hash()).await.unwrap(), MIB);
        assert_eq!(ask(&store, delete(&mallory, id)).await, Response::Deleted);

        // Alice's block is untouched, and Mallory's share of it is gone.
        let fetched = ask(&store, Request::FetchBlock { id }).await;
        assert_eq!(fetched, Response::Block { bytes });
        assert_eq!(store.held_for(&mallory.hash()).await.unwrap(), 0);
        assert_eq!(store.claims(&id).await.unwrap(), vec![alice.hash()]);

        // Someone with no claim cannot delete it at all.
        let stranger = ask(&store, delete(&eve, id)).await;
        assert!(is_refused(&stranger, "only an owner"), "{stranger:?}");

        // Alice's delete takes it.
        assert_eq!(ask(&store, delete(&alice, id)).await, Response::Deleted);
        let gone = ask(&store, Request::FetchBlock { id }).await;
        assert!(is_refused(&gone, "not held"), "{gone:?}");
        assert_eq!(store.usage().await.unwrap().used, 0);
        assert_eq!(store.held_for(&alice.hash()).await.unwrap(), 0);
        // Deleting what is gone is done, not an error: deletes are retried.
        assert_eq!(ask(&store, delete(&alice, id)).await, Response::Deleted);
    }

    #[tokio::test]
    async fn transport_probes_are_answered_only_where_probes_are_on() {
        let store = BlockStore::open(MIB).await.unwrap();
        for request in [
            Request::Fill { len: 1 << 20 },
            Request::Discard {
                payload: vec![1; 10],
            },
        ] {
            let off = answer(&store, request.clone(), Probes::Refused, Pledges::InFull).await;
            assert!(is_refused(&off, "probes are off"), "{off:?}");
            let on = ask(&store, request).await;
            assert!(!matches!(on, Response::Refused { .. }), "{on:?}");
        }
    }
}
