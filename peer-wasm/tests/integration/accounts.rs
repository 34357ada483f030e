//! Accounts over a cluster of 20 native peers: the real DHT, real crypto (PBKDF2 at 600,000
//! iterations; RSA keys of 2048 bits instead of 3072 to keep key generation quick).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use jellyfish_peer::{
    account::{self, AccountError},
    crypto::rsa_keys::PrivateKey,
    net::{Client, NetError},
    record::{dht_key, RecordError, RecordKind, SignedRecord},
};

const PEERS: usize = 20;
const BITS: usize = 2048;
const PASSWORD: &str = "violet tractor sings under seven moons";
const NEW_PASSWORD: &str = "quiet harbour lanterns drift past midnight";

use crate::common;

/// 20 peers with block stores; the account tests use their network handles.
async fn cluster() -> Vec<Client> {
    common::cluster(PEERS, |_| 0)
        .await
        .into_iter()
        .map(|node| node.client)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_log_in_change_password_and_refuse_bad_input() {
    let peers = cluster().await;

    // Sign up on one peer.
    let alice = account::sign_up_with_key_bits(&peers[3], "Alice", PASSWORD, BITS)
        .await
        .unwrap();
    assert_eq!(alice.username(), "alice");

    // A weak password and a taken name fail and change nothing.
    let weak = account::sign_up_with_key_bits(&peers[5], "bob", "password123", BITS).await;
    assert!(
        matches!(weak, Err(AccountError::WeakPassword { .. })),
        "{weak:?}"
    );
    let taken = account::sign_up_with_key_bits(&peers[9], "alice", NEW_PASSWORD, BITS).await;
    assert!(matches!(taken, Err(AccountError::NameTaken)), "{taken:?}");

    // Log in from another peer: the same user key comes back.
    let again = account::log_in(&peers[15], "alice", PASSWORD)
        .await
        .unwrap();
    assert_eq!(again.user_key(), alice.user_key());
    assert_eq!(again.public_key(), alice.public_key());

    // Wrong password and unknown user: distinct errors.
    let wrong = account::log_in(&peers[11], "alice", "not the password at all").await;
    assert!(
        matches!(wrong, Err(AccountError::WrongPassword)),
        "{wrong:?}"
    );
    let unknown = account::log_in(&peers[12], "nobody-here", PASSWORD).await;
    assert!(
        matches!(unknown, Err(AccountError::UnknownUser)),
        "{unknown:?}"
    );

    // A forged record (someone else's key) cannot replace Alice's private key...
    let mallory = PrivateKey::generate_bits(BITS).unwrap();
    let account_key = dht_key(RecordKind::PublicKey, &account::account_id("alice"));
    let held = peers[0].get_record(account_key).await.unwrap().remove(0);
    let forged = SignedRecord::sign(
        RecordKind::PrivateKey,
        held.record().account,
        99,
        &mallory,
        vec![1, 2, 3],
    )
    .unwrap();
    // Holders of Alice's record refuse it; a peer that held nothing keeps it apart, and a login
    // there still picks the records signed by Alice's key.
    let _ = peers[17].put_record(forged).await;
    let via_forger = account::log_in(&peers[17], "alice", PASSWORD)
        .await
        .unwrap();
    assert_eq!(via_forger.user_key(), alice.user_key());
    // ...and a record with a tampered body fails its signature before it leaves the peer.
    let mut tampered = alice.sign(RecordKind::UserKey, 5, vec![9; 10]).unwrap();
    tampered.body[0] ^= 1;
    let refused = peers[2].put_record(tampered).await;
    assert!(
        matches!(refused, Err(NetError::Record(RecordError::BadSignature(_)))),
        "{refused:?}"
    );

    // Change the password from the second session, keeping the old record to replay it.
    let private_key = dht_key(RecordKind::PrivateKey, &account::account_id("alice"));
    let old_record = peers[15]
        .get_record(private_key.clone())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.owner() == &alice.public_key())
        .unwrap()
        .record()
        .clone();
    assert_eq!(old_record.seq, 1);
    let session = again;
    let unconfirmed = account::change_password(
        &peers[15],
        &session,
        "a wrong current password",
        NEW_PASSWORD,
    )
    .await;
    assert!(
        matches!(unconfirmed, Err(AccountError::WrongPassword)),
        "{unconfirmed:?}"
    );
    let rotated = account::change_password(&peers[15], &session, PASSWORD, NEW_PASSWORD)
        .await
        .unwrap();
    // The keys rotated: a new key pair and user key; the old user key stays readable.
    assert_ne!(rotated.public_key(), alice.public_key());
    assert_ne!(rotated.user_key(), alice.user_key());
    assert!(rotated.user_keys().any(|k| k == alice.user_key()));
    assert!(rotated.is_own_key(&alice.public_key()));

    // Replaying the old private-key record is refused where the new one is held...
    let replay = peers[15].put_record(old_record.clone()).await;
    assert!(
        matches!(replay, Err(NetError::Record(RecordError::NotOwner))),
        "{replay:?}"
    );
    // ...and pushed from elsewhere, it does not win either (checked by the logins below).
    let _ = peers[6].put_record(old_record).await;

    // Everywhere: the new password opens the new keys, the old one opens nothing.
    for (i, peer) in peers.iter().enumerate().step_by(4) {
        let session = account::log_in(peer, "alice", NEW_PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("peer {i}: {e}"));
        assert_eq!(session.user_key(), rotated.user_key());
        assert_eq!(session.public_key(), rotated.public_key());
        let old = account::log_in(peer, "alice", PASSWORD).await;
        assert!(
            matches!(old, Err(AccountError::WrongPassword)),
            "peer {i}: {old:?}"
        );
    }
    let newest = peers[19].get_record(private_key).await.unwrap();
    let alices = newest
        .iter()
        .find(|r| r.owner() == &rotated.public_key())
        .unwrap();
    assert_eq!(alices.record().seq, 2);
    assert!(alices.descends_from(&alice.public_key().to_der().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_outlive_the_peer_that_wrote_them() {
    let mut peers = cluster().await;
    let _bob = account::sign_up_with_key_bits(&peers[4], "bob", PASSWORD, BITS)
        .await
        .unwrap();
    // The peer Bob signed up on leaves.
    let gone = peers.remove(4);
    let gone_id = gone.peer_id();
    gone.shutdown().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!peers.iter().any(|p| p.peer_id() == gone_id));
    let session = account::log_in(&peers[10], "bob", PASSWORD).await.unwrap();
    assert_eq!(session.username(), "bob");
}

/// A peer started with no contact: a browser tab whose network has not answered yet.
async fn newcomer() -> Client {
    let config = jellyfish_peer::net::Config {
        listen: vec![common::LISTEN.parse().unwrap()],
        agent: "jellyfish-test".into(),
        ..Default::default()
    };
    jellyfish_peer::node::start(libp2p::identity::Keypair::generate_ed25519(), config, 0)
        .await
        .unwrap()
        .client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_from_silence_a_tab_that_has_not_joined_waits_for_the_network() {
    let nodes = common::cluster(4, |_| 0).await;
    let peers: Vec<Client> = nodes.iter().map(|n| n.client.clone()).collect();
    let alice = account::sign_up_with_key_bits(&peers[1], "alice", PASSWORD, BITS)
        .await
        .unwrap();
    let contact = common::dialable(&nodes[0]).await;

    // Alone, a lookup heard nobody: that is not "no record".
    let lone = newcomer().await;
    let key = dht_key(RecordKind::PublicKey, &account::account_id("alice"));
    let silence = lone.get_record(key).await;
    assert!(
        matches!(silence, Err(NetError::TooFewPeers { heard: 0, .. })),
        "{silence:?}"
    );

    // Log-in and sign-up typed the instant the tab opens wait for it to join, then answer
    // right: Alice's account opens, and her name is taken.
    let login = tokio::spawn({
        let lone = lone.clone();
        async move { account::log_in(&lone, "alice", PASSWORD).await }
    });
    let other = newcomer().await;
    let signup = tokio::spawn({
        let other = other.clone();
        async move { account::sign_up_with_key_bits(&other, "alice", NEW_PASSWORD, BITS).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !login.is_finished(),
        "log-in answered before any peer was heard"
    );
    assert!(
        !signup.is_finished(),
        "sign-up answered before any peer was heard"
    );
    lone.connect(contact.clone()).await.unwrap();
    other.connect(contact).await.unwrap();
    let session = login.await.unwrap().unwrap();
    assert_eq!(session.user_key(), alice.user_key());
    let taken = signup.await.unwrap();
    assert!(matches!(taken, Err(AccountError::NameTaken)), "{taken:?}");
}

/// Starts a peer that keeps its records across restarts, as a tab does in IndexedDB: its
/// record changes go to `journal`, and it starts with `kept`.
async fn restartable(
    keypair: &libp2p::identity::Keypair,
    bootstrap: libp2p::Multiaddr,
    kept: Vec<jellyfish_peer::net::journaled_store::PersistedRecord>,
) -> (
    jellyfish_peer::node::Node,
    futures::channel::mpsc::UnboundedReceiver<jellyfish_peer::net::journaled_store::Change>,
) {
    let (journal, changes) = futures::channel::mpsc::unbounded();
    let config = jellyfish_peer::net::Config {
        listen: vec![common::LISTEN.parse().unwrap()],
        bootstrap: vec![bootstrap],
        agent: "jellyfish-test".into(),
        record_journal: Some(journal),
        persisted_records: kept,
        ..Default::default()
    };
    let node = jellyfish_peer::node::start(keypair.clone(), config, 0)
        .await
        .unwrap();
    (node, changes)
}

/// A holder that restarts (a tab reloaded, a browser reopened) still serves the records it
/// held, from its journal, even when every other peer that held them is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_restarts_still_serves_the_records_it_held() {
    use futures::StreamExt;
    use jellyfish_peer::net::journaled_store::Change;

    let mut nodes = common::cluster(3, |_| 0).await;
    let first = common::dialable(&nodes[0]).await;
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let (holder, mut changes) = restartable(&keypair, first, Vec::new()).await;
    for _ in 0..50 {
        if holder.client.discover().await.unwrap_or_default().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    account::sign_up_with_key_bits(&nodes[1].client, "alice", PASSWORD, 2048)
        .await
        .unwrap();

    // What the holder journalled, applied in order: its store as it would be reloaded.
    let mut kept: std::collections::BTreeMap<Vec<u8>, _> = Default::default();
    holder.client.shutdown().await;
    drop(holder);
    while let Some(change) = changes.next().await {
        match change {
            Change::Put(record) => {
                kept.insert(record.key.clone(), record);
            }
            Change::Remove(key) => {
                kept.remove(&key);
            }
        }
    }
    assert!(
        kept.len() >= 3,
        "the account's three records: {}",
        kept.len()
    );

    // Everyone who held the account goes; a new network forms around the restarted holder.
    for node in nodes.drain(..) {
        node.client.shutdown().await;
    }
    let bootstrap = common::cluster(1, |_| 0).await;
    let meeting = common::dialable(&bootstrap[0]).await;
    let (again, _changes) =
        restartable(&keypair, meeting.clone(), kept.into_values().collect()).await;
    let reader = restartable(
        &libp2p::identity::Keypair::generate_ed25519(),
        meeting,
        Vec::new(),
    )
    .await
    .0;
    for _ in 0..50 {
        if reader
            .client
            .discover()
            .await
            .unwrap_or_default()
            .contains(&again.client.peer_id())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let session = account::log_in(&reader.client, "alice", PASSWORD)
        .await
        .unwrap();
    assert_eq!(session.username(), "alice");
}

/// The first person on a network with no other peer yet signs up in their tab alone; the
/// account goes out as soon as peers appear, and then opens anywhere, with the first tab gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_person_on_an_empty_network_signs_up_and_the_account_goes_out_when_peers_come() {
    let first = common::cluster(1, |_| 0).await;
    let lone = &first[0].client;
    // (An ordinary sign-up here waits 30 s and says it can't reach enough peers:
    // no_answer_from_silence_a_tab_that_has_not_joined_waits_for_the_network.)
    let (alice, unpublished) = account::sign_up_alone(lone, "alice", PASSWORD, BITS)
        .await
        .unwrap();
    assert_eq!(alice.username(), "alice");
    let again =
        account::sign_up_alone(lone, "alice", "another long password for alice", BITS).await;
    assert!(matches!(again, Err(AccountError::NameTaken)), "{again:?}");
    let opened = account::log_in(lone, "alice", PASSWORD).await.unwrap();
    assert_eq!(opened.public_key(), alice.public_key());

    // Others come; the records go out to them and are read back.
    let meeting = common::dialable(&first[0]).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        let config = jellyfish_peer::net::Config {
            listen: vec![common::LISTEN.parse().unwrap()],
            bootstrap: vec![meeting.clone()],
            agent: "jellyfish-test".into(),
            ..Default::default()
        };
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        others.push(
            jellyfish_peer::node::start(keypair, config, 0)
                .await
                .unwrap(),
        );
    }
    unpublished.publish(lone).await.unwrap();

    // The first tab goes for good; the account opens from the others.
    first[0].client.shutdown().await;
    let session = account::log_in(&others[2].client, "alice", PASSWORD)
        .await
        .unwrap();
    assert_eq!(session.public_key(), alice.public_key());
    let taken = account::sign_up_with_key_bits(&others[1].client, "alice", PASSWORD, 2048).await;
    assert!(matches!(taken, Err(AccountError::NameTaken)), "{taken:?}");
}

/// A record put to the peers a walk just found (as an index's pointer is, walked for while
/// its blob is placed) is read back from anywhere, a newer one replaces it the same way, and
/// the putter holds the newest itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_put_to_walked_peers_is_read_from_anywhere() {
    let peers = cluster().await;
    let owner = PrivateKey::generate_bits(BITS).unwrap();
    let account = account::account_id("walked-to");
    let key = dht_key(RecordKind::FileIndex, &account);
    let mut last = None;
    for seq in 1..=2u64 {
        let walked = peers[4].closest_peers(key.clone()).await.unwrap();
        assert!(walked.len() >= 10, "{} peers walked", walked.len());
        let record = SignedRecord::sign(
            RecordKind::FileIndex,
            account,
            seq,
            &owner,
            vec![seq as u8; 40],
        )
        .unwrap();
        peers[4]
            .put_record_to(record.clone(), walked)
            .await
            .unwrap();
        for reader in [&peers[0], &peers[11], &peers[19]] {
            let found = reader.get_record(key.clone()).await.unwrap();
            assert_eq!(found.len(), 1, "one owner's record");
            assert_eq!(
                found[0].record(),
                &record,
                "seq {seq} read from another peer"
            );
        }
        last = Some(record);
    }
    // The putter holds the newest itself.
    let held = peers[4].get_record(key).await.unwrap();
    assert_eq!(held[0].record(), last.as_ref().unwrap());
}
