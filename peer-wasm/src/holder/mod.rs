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
use libp2p::{identity::Keypair, PeerId};
use web_time::{Duration, Instant};

use crate::{
    block::{BlockId, MAX_SEALED_BLOCK},
    crypto::{rsa_keys::PublicKey, sha256},
    donor_audit::{self, Book},
    key_history,
    net::{Client, InboundRequest},
    platform::Shared,
    pledge,
    protocol::{
        claim_statement, delete_statement, PeerName, Proved, Request, Response, MAX_CHALLENGES,
        MAX_INVENTORY_SAMPLE, MAX_NAMED_FELLOWS,
    },
    receipt::{Receipt, Witnessed, Witnesses, MAX_RECEIPTS_PER_BLOCK, MAX_WITNESSED_BLOCKS},
    store::{BlockStore, OwnerHash, Proving, Release},
};

mod donors;
mod named;
mod repair;

pub(crate) use donors::audit_donors;
pub use donors::DonorAudits;
pub use named::{Named, NamedFellows};
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) use repair::CHECKS_AT_ONCE;
pub use repair::{RepairLog, Repairer, Round};

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

/// One holder: what it holds, its key (which signs its receipts), and how it answers.
#[derive(Clone, Copy)]
pub struct Holder<'a> {
    /// The blocks it holds.
    pub store: &'a BlockStore,
    /// This peer's key.
    pub keypair: &'a Keypair,
    /// Whether it answers transport probes.
    pub probes: Probes,
    /// How it counts pledges.
    pub pledges: Pledges<'a>,
    /// Where it notes the fellow holders a store request names, for its repairer; `None`:
    /// not noted (a holder without a repairer).
    pub named: Option<&'a NamedFellows>,
}

/// Answers inbound block requests until the network stops.
pub(crate) async fn serve(
    client: Client,
    mut inbound: mpsc::Receiver<InboundRequest>,
    store: Shared<BlockStore>,
    keypair: Keypair,
    probes: Probes,
    audits: Shared<DonorAudits>,
    named: Shared<NamedFellows>,
) {
    let holder = Holder {
        store: &store,
        keypair: &keypair,
        probes,
        pledges: Pledges::Audited(&audits),
        named: Some(&named),
    };
    while let Some(InboundRequest { id, peer, request }) = inbound.next().await {
        let response = answer(holder, request).await;
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
pub async fn answer(holder: Holder<'_>, request: Request) -> Response {
    let Holder {
        store,
        keypair,
        probes,
        pledges: pledges_count,
        named,
    } = holder;
    match request {
        Request::StoreBlock {
            block,
            warrant,
            repair,
            fellows,
        } => {
            if block.len() > MAX_SEALED_BLOCK {
                return refused(format!("a block is at most {MAX_SEALED_BLOCK} bytes"));
            }
            if fellows.len() > MAX_NAMED_FELLOWS {
                return refused(format!(
                    "a store names at most {MAX_NAMED_FELLOWS} fellow holders"
                ));
            }
            let Some(fellows) = fellows
                .iter()
                .map(PeerName::peer)
                .collect::<Option<Vec<_>>>()
            else {
                return refused("a named fellow holder is not a peer id");
            };
            let started = web_time::Instant::now();
            // The leaf hashes give the address and are kept beside the block, so that a
            // storage challenge reads one leaf of it ([`BlockStore::put_with_leaves`]).
            let leaves = crate::proof::leaf_hashes(&block);
            let Some(address) = crate::proof::address_of_leaves(block.len() as u64, &leaves) else {
                return refused(format!("a block is at most {MAX_SEALED_BLOCK} bytes"));
            };
            let id = BlockId(address);
            let hashed = web_time::Instant::now();
            let owner = match warrant.verify_fast(&id).await {
                Ok(owner) => owner,
                Err(e) => return refused(e.to_string()),
            };
            // An owner's own store is signed just now: a time far off this peer's clock is a
            // wrong clock, or a made-up age that would make the block expire early (or never).
            // Repair copies carry the warrant as signed, however old.
            // A repair copy may be old, never from the future (a block that never expires).
            if let Some(at) = warrant.signed_at {
                let now = crate::platform::unix_secs();
                let off = match repair {
                    false => at.abs_diff(now),
                    true => at.saturating_sub(now),
                };
                if off > crate::warrant::CLOCK_SLACK_SECS {
                    return refused(
                        "the warrant's signing time is more than a day off this peer's clock; check the computer's date",
                    );
                }
            }
            let donors = match pledge::donors(&warrant.pledges, &owner) {
                Ok(donors) => donors,
                Err(e) => return refused(e.to_string()),
            };
            let allowance = pledge::allowance_of(match pledges_count {
                Pledges::InFull => donors.values().sum(),
                Pledges::Audited(audits) if repair => audits.kept(&donors),
                Pledges::Audited(audits) => audits.donated(&donors),
            });
            let checked = web_time::Instant::now();
            let bytes = block.len();
            let put = store.put_with_leaves(id, block, &leaves, owner, allowance, Some(&warrant));
            if let Err(e) = put.await {
                return refused(e.to_string());
            }
            // Where a stored block's time goes, for `tests/bench/cluster.mjs --profile`.
            tracing::debug!(
                target: crate::TIMING,
                hash_ms = (hashed - started).as_millis() as u64,
                check_ms = (checked - hashed).as_millis() as u64,
                put_ms = checked.elapsed().as_millis() as u64,
                bytes,
                "block stored"
            );
            if let Some(named) = named {
                let me = keypair.public().to_peer_id();
                let mut peers: Vec<PeerId> = Vec::with_capacity(fellows.len());
                for peer in fellows {
                    // Each once: `[a, a]` names one fellow, not two.
                    if peer != me && !peers.contains(&peer) {
                        peers.push(peer);
                    }
                }
                named.note(Named {
                    id,
                    peers,
                    copies: warrant.copies,
                });
            }
            match Receipt::sign(keypair, &id, &owner) {
                Ok(receipt) => Response::Stored { receipt },
                Err(e) => refused(e.to_string()),
            }
        }
        Request::Witness { blocks } => {
            if blocks.len() > MAX_WITNESSED_BLOCKS {
                return refused(format!(
                    "at most {MAX_WITNESSED_BLOCKS} blocks per witness request"
                ));
            }
            let kept = match pledges_count {
                Pledges::Audited(audits) => {
                    let me = keypair.public().to_peer_id();
                    audits.witness(store, me, blocks).await
                }
                Pledges::InFull => 0,
            };
            Response::Noted { kept }
        }
        Request::ProveEach { challenges } => {
            if challenges.len() > MAX_CHALLENGES {
                return refused(format!("at most {MAX_CHALLENGES} challenges per request"));
            }
            // One block named twice would buy its reads twice (a whole block's, for one stored
            // without its leaf hashes); an honest challenger names each once.
            let named: HashSet<&BlockId> = challenges.iter().map(|(id, _)| id).collect();
            if named.len() < challenges.len() {
                return refused("a block named twice in one challenge request");
            }
            let mut answers = Vec::with_capacity(challenges.len());
            for (id, challenge) in challenges {
                answers.push(match prove(store, &id, challenge).await {
                    Ok(proof) => Proved::Proof(proof),
                    Err(reason) => Proved::Refused(reason),
                });
            }
            Response::Proofs { answers }
        }
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
        Request::FetchBlock { id } => {
            let started = web_time::Instant::now();
            match store.get(&id).await {
                Ok(Some(bytes)) => {
                    // For `tests/bench/cluster.mjs --profile`, as "block stored".
                    tracing::debug!(
                        target: crate::TIMING,
                        read_ms = started.elapsed().as_millis() as u64,
                        "block served"
                    );
                    Response::Block { bytes }
                }
                Ok(None) => refused("block not held here"),
                Err(e) => refused(e.to_string()),
            }
        }
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
        Request::Claim {
            id,
            owner,
            signature,
            history,
        } => claim(store, id, &owner, &signature, &history).await,
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

/// A proof that this holder holds block `id`, at the leaf `challenge` names, or why not.
async fn prove(
    store: &BlockStore,
    id: &BlockId,
    challenge: u32,
) -> Result<crate::proof::Proof, String> {
    match store.prove(id, challenge).await {
        Ok(Proving::Proof(proof)) => Ok(proof),
        // A block stored before addresses were hash-tree roots (its address is the plain
        // SHA-256), or whose bytes changed on disk since, cannot be proved: say so rather
        // than send a proof that fails as a lie.
        Ok(Proving::Unprovable) => Err(
            "this block cannot be proved: it predates storage proofs, or its bytes changed on disk"
                .into(),
        ),
        Ok(Proving::NotHeld) => Err("block not held here".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Moves the claim of the newest of `owner`'s earlier keys on block `id` to `owner`. The bytes
/// held do not change, so the move takes nothing from the donation nor needs an allowance.
async fn claim(
    store: &BlockStore,
    id: BlockId,
    owner: &[u8],
    signature: &[u8],
    history: &[key_history::KeyLink],
) -> Response {
    let Ok(key) = PublicKey::from_der(owner) else {
        return refused("unusable owner key");
    };
    if key.verify(&claim_statement(&id), signature).is_err() {
        return refused("the owner's signature does not cover this claim");
    }
    if let Err(e) = key_history::verify(history, owner) {
        return refused(e.to_string());
    }
    let claims = match store.claims(&id).await {
        Ok(claims) if claims.is_empty() => return Response::Claimed,
        Ok(claims) => claims,
        Err(e) => return refused(e.to_string()),
    };
    let current = sha256(owner);
    if claims.contains(&current) {
        return Response::Claimed;
    }
    let Some(earlier) = history
        .iter()
        .rev()
        .map(|link| sha256(&link.previous))
        .find(|earlier| claims.contains(earlier))
    else {
        return refused("no earlier key of this account claims the block");
    };
    // Take the new claim before dropping the old one: a failure between leaves both.
    let bytes = match store.get(&id).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Response::Claimed,
        Err(e) => return refused(e.to_string()),
    };
    // The earlier key's warrant stays (re-added after the release drops it): it is the only
    // signed word the holder has to repair the block with. Its copies then go out under the
    // earlier key's claim, which the account's later keys free through its key history.
    let warrant = match store.warrants(&id).await {
        Ok(warrants) => warrants.into_iter().find(|w| w.owner_hash() == earlier),
        Err(e) => return refused(e.to_string()),
    };
    if let Err(e) = store.put(id, bytes.clone(), current, u64::MAX, None).await {
        return refused(e.to_string());
    }
    if let Err(e) = store.release(&id, &earlier).await {
        return refused(e.to_string());
    }
    if let Some(warrant) = warrant {
        if let Err(e) = store
            .put(id, bytes, current, u64::MAX, Some(&warrant))
            .await
        {
            return refused(e.to_string());
        }
    }
    Response::Claimed
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
        answer(holder(store, Probes::Answered), request).await
    }

    fn holder(store: &BlockStore, probes: Probes) -> Holder<'_> {
        static KEY: std::sync::OnceLock<Keypair> = std::sync::OnceLock::new();
        Holder {
            store,
            keypair: KEY.get_or_init(Keypair::generate_ed25519),
            probes,
            pledges: Pledges::InFull,
            named: None,
        }
    }

    fn is_stored(response: &Response) -> bool {
        matches!(response, Response::Stored { .. })
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
            let warrant = crate::warrant::Warrant::new(
                &BlockId::of(&block),
                self.der.clone(),
                3,
                pledges,
                crate::platform::unix_secs(),
                |m| self.key.sign(m),
            );
            Request::StoreBlock {
                block,
                warrant,
                repair: false,
                fellows: Vec::new(),
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
            assert!(is_stored(&stored.await));
        }
        let over = ask(&store, alice.store(block(200), vec![alices.clone()])).await;
        assert!(is_refused(&over, "donations do not cover"), "{over:?}");
        assert_eq!(store.held_for(&alice.hash()).await.unwrap(), fits * MIB);
        assert_eq!(store.held_for(&mallory.hash()).await.unwrap(), 0);

        // Deleting frees the owner's allowance again.
        let first = BlockId::of(&block(10));
        assert_eq!(ask(&store, delete(&alice, first)).await, Response::Deleted);
        let again = ask(&store, alice.store(block(200), vec![alices])).await;
        assert!(is_stored(&again), "{again:?}");
    }

    #[tokio::test]
    async fn a_store_notes_the_fellow_holders_it_names_and_refuses_too_many_or_malformed_names() {
        let store = BlockStore::open(1024 * MIB).await.unwrap();
        let owner = Owner::new();
        let pledge = Pledge::sign(&Keypair::generate_ed25519(), owner.hash(), 64 * MIB).unwrap();
        let named = NamedFellows::default();
        let holder = Holder {
            named: Some(&named),
            ..holder(&store, Probes::Refused)
        };
        let me = holder.keypair.public().to_peer_id();
        let naming = |seed: u8, fellows: Vec<PeerName>| {
            let mut request = owner.store(block(seed), vec![pledge.clone()]);
            if let Request::StoreBlock { fellows: f, .. } = &mut request {
                *f = fellows;
            }
            request
        };
        let names = |peers: &[PeerId]| peers.iter().map(PeerName::from).collect::<Vec<_>>();

        // Too many names, or one that is no peer id: refused, nothing stored or noted.
        let many: Vec<PeerId> = (0..=MAX_NAMED_FELLOWS).map(|_| PeerId::random()).collect();
        let refused = answer(holder, naming(1, names(&many))).await;
        assert!(is_refused(&refused, "at most"), "{refused:?}");
        let mut bad = names(&many[..1]);
        // A CBOR byte string of three bytes, as a hostile sender would put it on the wire.
        bad.push(cbor4ii::serde::from_slice(&[0x43, 1, 2, 3]).unwrap());
        let refused = answer(holder, naming(2, bad)).await;
        assert!(is_refused(&refused, "not a peer id"), "{refused:?}");
        assert_eq!(store.usage().await.unwrap().blocks, 0);
        assert!(named.take().is_empty());

        // Two fellows named (itself and one twice among the names, as a careless or hostile
        // sender might): noted without itself, each once, with the warrant's copies.
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(is_stored(
            &answer(holder, naming(3, names(&[a, me, b, a]))).await
        ));
        assert!(is_stored(&answer(holder, naming(4, names(&[a]))).await));
        let noted = named.take();
        assert_eq!(
            noted,
            vec![
                Named {
                    id: BlockId::of(&block(3)),
                    peers: vec![a, b],
                    copies: 3
                },
                Named {
                    id: BlockId::of(&block(4)),
                    peers: vec![a],
                    copies: 3
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_store_signed_far_from_the_holders_clock_is_refused_and_an_old_repair_copy_is_not() {
        let store = BlockStore::open(1024 * MIB).await.unwrap();
        let owner = Owner::new();
        let pledge = Pledge::sign(&Keypair::generate_ed25519(), owner.hash(), 64 * MIB).unwrap();
        let signed_at = |at: u64, block: Vec<u8>, repair: bool| Request::StoreBlock {
            warrant: crate::warrant::Warrant::new(
                &BlockId::of(&block),
                owner.der.clone(),
                3,
                vec![pledge.clone()],
                at,
                |m| owner.key.sign(m),
            ),
            block,
            repair,
            fellows: Vec::new(),
        };
        let now = crate::platform::unix_secs();
        // Made-up ages (an early expiry) and future times (none) are refused from the owner...
        for (seed, at) in [(1, now - 2 * 86_400), (2, now + 2 * 86_400)] {
            let refused = ask(&store, signed_at(at, block(seed), false)).await;
            assert!(is_refused(&refused, "clock"), "{refused:?}");
        }
        // ...a clock a few hours off is fine, and a repair copy carries its warrant as signed.
        assert!(is_stored(
            &ask(&store, signed_at(now - 3 * 3600, block(3), false)).await
        ));
        assert!(is_stored(
            &ask(&store, signed_at(now - 60 * 86_400, block(4), true)).await
        ));
        // A repair copy from the future is refused too: it would never expire.
        let future = ask(&store, signed_at(now + 2 * 86_400, block(5), true)).await;
        assert!(is_refused(&future, "clock"), "{future:?}");
        assert_eq!(store.usage().await.unwrap().blocks, 2);
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
        assert!(is_stored(
            &ask(&store, old.store(bytes, vec![pledge])).await
        ));
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
    async fn a_later_key_takes_over_the_claim_and_the_old_key_can_free_nothing() {
        use crate::key_history::KeyLink;
        let store = BlockStore::open(1024 * MIB).await.unwrap();
        let (old, new, thief) = (Owner::new(), Owner::new(), Owner::new());
        let donor = Keypair::generate_ed25519();
        let pledge = Pledge::sign(&donor, old.hash(), 30 * MIB).unwrap();
        let bytes = block(8);
        let id = BlockId::of(&bytes);
        assert!(is_stored(
            &ask(&store, old.store(bytes.clone(), vec![pledge])).await
        ));
        let claim = |owner: &Owner, history: Vec<KeyLink>| Request::Claim {
            id,
            owner: owner.der.clone(),
            signature: owner.key.sign(&claim_statement(&id)),
            history,
        };
        // A thief naming the old key as his past, without its hand-over, takes nothing.
        let forged = KeyLink {
            previous: old.der.clone(),
            signature: thief.key.sign(b"anything"),
        };
        let refused = ask(&store, claim(&thief, vec![forged])).await;
        assert!(is_refused(&refused, "key history refused"), "{refused:?}");
        let bare = ask(&store, claim(&new, Vec::new())).await;
        assert!(is_refused(&bare, "no earlier key"), "{bare:?}");

        let link = KeyLink::sign(&old.key, &new.key.public()).unwrap();
        let usage = store.usage().await.unwrap();
        assert_eq!(
            ask(&store, claim(&new, vec![link.clone()])).await,
            Response::Claimed
        );
        assert_eq!(
            ask(&store, claim(&new, vec![link])).await,
            Response::Claimed,
            "again: done already"
        );
        assert_eq!(store.claims(&id).await.unwrap(), vec![new.hash()]);
        assert_eq!(store.usage().await.unwrap(), usage, "the same bytes");
        assert_eq!(store.held_for(&old.hash()).await.unwrap(), 0);
        assert_eq!(store.held_for(&new.hash()).await.unwrap(), MIB);

        // Whoever knew the old password, and so holds the old key, can free nothing.
        let stale = ask(&store, delete(&old, id)).await;
        assert!(is_refused(&stale, "only an owner"), "{stale:?}");
        let fetched = ask(&store, Request::FetchBlock { id }).await;
        assert_eq!(fetched, Response::Block { bytes });
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
        assert!(is_stored(&first), "{first:?}");
        let second = ask(&store, alice.store(bytes.clone(), vec![alices])).await;
        assert!(is_stored(&second), "{second:?}");
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
    async fn a_block_from_before_storage_proofs_is_declined_not_proved_wrong() {
        let store = BlockStore::open(64 * MIB).await.unwrap();
        let bytes = block(3);
        let legacy = BlockId(sha256(&bytes));
        store
            .put(legacy, bytes, [1; 32], u64::MAX, None)
            .await
            .unwrap();
        let challenges = vec![(legacy, 7)];
        let answer = ask(&store, Request::ProveEach { challenges }).await;
        assert!(
            matches!(&answer, Response::Proofs { answers } if matches!(&answers[..],
                [Proved::Refused(reason)] if reason.contains("predates storage proofs"))),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn challenges_of_many_blocks_are_answered_each_in_order() {
        let store = BlockStore::open(64 * MIB).await.unwrap();
        let (first, second) = (block(4), block(5));
        let ids = [BlockId::of(&first), BlockId::of(&second)];
        for (id, bytes) in ids.iter().zip([first, second]) {
            store
                .put(*id, bytes, [1; 32], u64::MAX, None)
                .await
                .unwrap();
        }
        let missing = BlockId::of(&block(6));
        let challenges = vec![(ids[0], 7), (missing, 8), (ids[1], 9)];
        let Response::Proofs { answers } = ask(
            &store,
            Request::ProveEach {
                challenges: challenges.clone(),
            },
        )
        .await
        else {
            panic!("not proofs");
        };
        assert_eq!(answers.len(), challenges.len());
        for ((id, challenge), answer) in challenges.iter().zip(&answers) {
            match answer {
                Proved::Proof(proof) => crate::proof::verify(&id.0, *challenge, proof).unwrap(),
                Proved::Refused(reason) => {
                    assert_eq!(*id, missing);
                    assert!(reason.contains("not held"), "{reason}");
                }
            }
        }
        assert!(matches!(answers[1], Proved::Refused(_)), "{answers:?}");

        // More than a request may carry, or a block named twice, is refused whole, before
        // any block is read.
        let flood: Vec<(BlockId, u32)> = (0..=MAX_CHALLENGES)
            .map(|i| (BlockId::of(&[i as u8]), 1))
            .collect();
        let answer = ask(&store, Request::ProveEach { challenges: flood }).await;
        assert!(is_refused(&answer, "at most 64"), "{answer:?}");
        let twice = vec![(ids[0], 1), (ids[1], 2), (ids[0], 3)];
        let answer = ask(&store, Request::ProveEach { challenges: twice }).await;
        assert!(is_refused(&answer, "named twice"), "{answer:?}");
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
            let off = answer(holder(&store, Probes::Refused), request.clone()).await;
            assert!(is_refused(&off, "probes are off"), "{off:?}");
            let on = ask(&store, request).await;
            assert!(!matches!(on, Response::Refused { .. }), "{on:?}");
        }
    }
}
