//! A password change rotates the account's keys (hostile-peers item 6), over a cluster of 20
//! native peers with block stores: the real DHT, real crypto (PBKDF2 at 600,000 iterations;
//! RSA keys of 2,048 bits to keep key generation quick).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{cell::Cell, ops::ControlFlow};

use jellyfish_peer::{
    account::{self, AccountError, Directory, Session},
    files::{self, Donation, FileError, DEFAULT_REPLICAS},
    net::{Client, NetError},
    node::Node,
    record::{dht_key, FoundRecord, RecordKind, SignedRecord, VerifiedRecord},
};

const PEERS: usize = 20;
const PASSWORD: &str = "violet tractor sings under seven moons";
const NEW_PASSWORD: &str = "quiet harbour lanterns drift past midnight";
const MIB: u64 = 1024 * 1024;

use crate::common::{self, drive};
use jellyfish_peer::Shared;

use common::{download, pattern};

fn donation(node: &Node) -> Donation {
    Donation {
        keypair: node.keypair.clone(),
        bytes: 64 * MIB,
    }
}

/// Uploads `bytes` as `name`, and waits until the index it replaced is freed.
async fn upload(node: &Node, session: &Shared<Session>, name: &str, bytes: &[u8]) -> String {
    let drive = drive(&node.client, session).donating(donation(node));
    let report = drive
        .upload(name, bytes, |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    drive.frees_done().await;
    report.file.id
}

/// Every record of `kind` for `username` that the network holds, signed by `owner`'s key.
async fn copy_of(client: &Client, kind: RecordKind, session: &Session) -> VerifiedRecord {
    client
        .get_record(dht_key(kind, &session.account()))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.owner() == &session.public_key())
        .unwrap()
}

/// The network, plus a hostile holder that still answers with the account's old records (it
/// kept copies from before the password change and ignores the new ones).
struct WithStaleHolder<'a> {
    network: &'a Client,
    old: Vec<VerifiedRecord>,
}

impl Directory for WithStaleHolder<'_> {
    async fn find(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, AccountError> {
        let mut found = self.network.find(key.clone()).await?;
        for record in self.old.iter().filter(|r| r.record().key() == key) {
            // Answered by many Sybils: the old records are the most widely held.
            found.insert(
                0,
                FoundRecord {
                    record: record.clone(),
                    remote_holders: 50,
                },
            );
        }
        Ok(found)
    }

    async fn put(&self, record: SignedRecord) -> Result<(), AccountError> {
        self.network.put(record).await
    }
}

/// The old copies to read from, and whatever is put kept aside (a thief working offline).
struct Collecting {
    old: OldCopies,
    put: std::sync::Mutex<Vec<SignedRecord>>,
}

impl Directory for Collecting {
    async fn find(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, AccountError> {
        let mut found = self.old.find(key.clone()).await?;
        for record in self.put.lock().unwrap().iter().filter(|r| r.key() == key) {
            found.insert(
                0,
                FoundRecord {
                    record: VerifiedRecord::from_wire(&key, &record.to_wire()).unwrap(),
                    remote_holders: 1,
                },
            );
        }
        Ok(found)
    }

    async fn put(&self, record: SignedRecord) -> Result<(), AccountError> {
        self.put.lock().unwrap().push(record);
        Ok(())
    }
}

/// Only old copies: someone who kept the old records, offline.
struct OldCopies(Vec<VerifiedRecord>);

impl Directory for OldCopies {
    async fn find(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, AccountError> {
        Ok(self
            .0
            .iter()
            .filter(|r| r.record().key() == key)
            .map(|r| FoundRecord {
                record: r.clone(),
                remote_holders: 3,
            })
            .collect())
    }

    async fn put(&self, _: SignedRecord) -> Result<(), AccountError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_rotates_the_keys_and_the_old_password_opens_nothing_new() {
    let nodes = common::cluster(PEERS, |_| 64 * MIB).await;
    let (author, reader) = (&nodes[2], &nodes[9]);
    let alice = Shared::new(
        account::sign_up_with_key_bits(&author.client, "alice", PASSWORD, 2048)
            .await
            .unwrap(),
    );
    let before = pattern((MIB + 777) as usize, 3);
    let before_id = upload(author, &alice, "before.bin", &before).await;

    // Someone keeps copies of the account's records as they are before the change.
    let mut old = Vec::new();
    for kind in [
        RecordKind::PublicKey,
        RecordKind::PrivateKey,
        RecordKind::UserKey,
        RecordKind::FileIndex,
    ] {
        old.push(copy_of(&author.client, kind, &alice).await);
    }

    let rotated = Shared::new(
        account::change_password(&author.client, &alice, PASSWORD, NEW_PASSWORD)
            .await
            .unwrap(),
    );
    assert_ne!(rotated.public_key(), alice.public_key());
    // The index and its file keys are re-sealed under the new keys, once.
    // Never without this browser's pledge: the old key's pledges do not count for the new.
    let refused = drive(&author.client, &rotated).finish_rotation().await;
    assert!(matches!(refused, Err(FileError::NoDonation)), "{refused:?}");
    let files = drive(&author.client, &rotated).donating(donation(author));
    assert!(files.finish_rotation().await.unwrap());
    assert!(!files.finish_rotation().await.unwrap(), "done once");
    assert_eq!(
        files.move_claims().await.unwrap(),
        1,
        "the one file's blocks"
    );
    assert_eq!(files.move_claims().await.unwrap(), 0, "done once");
    // Each save freed the index before it in the background: let those frees land before
    // the holders are looked at (a block freed mid-scan answers the old key's delete with
    // `Deleted`, as any delete of a block no longer held).
    files.frees_done().await;

    // Every copy of the file's blocks is now claimed by the new key: whoever knew the old
    // password, and so can open the old private key, frees none of them.
    let old_hash = jellyfish_peer::crypto::sha256(&alice.public_key().to_der().unwrap());
    let new_hash = jellyfish_peer::crypto::sha256(&rotated.public_key().to_der().unwrap());
    let mut copies = 0;
    for node in &nodes {
        for id in node.store.sample(usize::MAX).await.unwrap() {
            let claims = node.store.claims(&id).await.unwrap();
            assert!(
                !claims.contains(&old_hash),
                "still the old key's: {claims:?}"
            );
            if !claims.contains(&new_hash) {
                continue;
            }
            copies += 1;
            let delete = jellyfish_peer::protocol::Request::DeleteBlock {
                id,
                owner: alice.public_key().to_der().unwrap(),
                signature: alice.sign_statement(&jellyfish_peer::protocol::delete_statement(&id)),
                history: Vec::new(),
            };
            let answer = reader
                .client
                .request(node.client.peer_id(), delete)
                .await
                .unwrap();
            assert!(
                matches!(&answer, jellyfish_peer::protocol::Response::Refused { reason } if reason.contains("only an owner")),
                "{answer:?}"
            );
        }
    }
    assert!(
        copies >= 2 * 3,
        "{copies} copies of two data blocks (the manifest rides in the index, the index in its record)"
    );
    let after = pattern(5000, 9);
    let after_id = upload(author, &rotated, "after.txt", &after).await;

    // A fresh peer: the new password opens everything, old and new, bit-exact.
    let session = Shared::new(
        account::log_in(&reader.client, "alice", NEW_PASSWORD)
            .await
            .unwrap(),
    );
    assert_eq!(session.public_key(), rotated.public_key());
    let names: Vec<String> = drive(&reader.client, &session)
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["before.bin", "after.txt"]);
    assert_eq!(
        download(reader, &session, &before_id).await.unwrap(),
        before
    );
    assert_eq!(download(reader, &session, &after_id).await.unwrap(), after);

    // The old password fails, even with hostile holders answering with the old records.
    let wrong = account::log_in(&reader.client, "alice", PASSWORD).await;
    assert!(
        matches!(wrong, Err(AccountError::WrongPassword)),
        "{wrong:?}"
    );
    let stale = WithStaleHolder {
        network: &reader.client,
        old: old.clone(),
    };
    let wrong = account::log_in(&stale, "alice", PASSWORD).await;
    assert!(
        matches!(wrong, Err(AccountError::WrongPassword)),
        "{wrong:?}"
    );
    let through_stale = Shared::new(
        account::log_in(&stale, "alice", NEW_PASSWORD)
            .await
            .unwrap(),
    );
    assert_eq!(through_stale.public_key(), rotated.public_key());

    // The old records with the old password open the old keys, and those open nothing written
    // after the change: not the new index, not the new file.
    let thief = Shared::new(
        account::log_in(&OldCopies(old.clone()), "alice", PASSWORD)
            .await
            .unwrap(),
    );
    assert_eq!(thief.public_key(), alice.public_key());
    assert!(drive(&reader.client, &thief)
        .list()
        .await
        .unwrap()
        .is_empty());
    let stolen = download(reader, &thief, &after_id).await;
    assert!(matches!(stolen, Err(FileError::NoSuchFile)), "{stolen:?}");

    // The thief forks: his old key hands over to a key of his own, sealed under the old
    // password, and Sybils answer with it. Holders of the new records refuse it; a log-in that
    // hears it opens the right key with the new password, the fork with the old one, and says
    // the account forked either way (the page warns as for a changed key).
    let fork = Collecting {
        old: OldCopies(old.clone()),
        put: Default::default(),
    };
    account::change_password(&fork, &thief, PASSWORD, PASSWORD)
        .await
        .unwrap();
    let forked: Vec<VerifiedRecord> = fork
        .put
        .lock()
        .unwrap()
        .iter()
        .map(|r| VerifiedRecord::from_wire(&r.key(), &r.to_wire()).unwrap())
        .collect();
    let refused = reader.client.put_record(forked[0].record().clone()).await;
    assert!(refused.is_err(), "{refused:?}");
    let sybils = WithStaleHolder {
        network: &reader.client,
        old: forked,
    };
    let right = Shared::new(
        account::log_in(&sybils, "alice", NEW_PASSWORD)
            .await
            .unwrap(),
    );
    assert_eq!(right.public_key(), rotated.public_key());
    assert!(right.forked());
    let into_fork = Shared::new(account::log_in(&sybils, "alice", PASSWORD).await.unwrap());
    assert_ne!(into_fork.public_key(), rotated.public_key());
    assert!(into_fork.forked());
    assert!(!session.forked(), "no fork heard, no warning");

    // The new key frees what the old key stored: deleting the old file empties the network.
    let freed = drive(&reader.client, &session)
        .delete(&before_id)
        .await
        .unwrap();
    assert!(freed >= 2 * DEFAULT_REPLICAS, "freed {freed} copies");
}

/// A tab that closes right after the new private-key record went out (the commit point)
/// leaves a change that the next log-in, anywhere, completes.
struct CutShort<'a> {
    network: &'a Client,
    puts_left: Cell<usize>,
}

impl Directory for CutShort<'_> {
    async fn find(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, AccountError> {
        self.network.find(key).await
    }

    async fn put(&self, record: SignedRecord) -> Result<(), AccountError> {
        match self.puts_left.get() {
            0 => Err(AccountError::Network(NetError::Stopped)),
            n => {
                self.puts_left.set(n - 1);
                self.network.put(record).await
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_cut_short_completes_at_the_next_log_in() {
    let nodes = common::cluster(PEERS, |_| 64 * MIB).await;
    let (author, reader) = (&nodes[4], &nodes[13]);
    let alice = Shared::new(
        account::sign_up_with_key_bits(&author.client, "alice", PASSWORD, 2048)
            .await
            .unwrap(),
    );
    let bytes = pattern(3000, 5);
    let id = upload(author, &alice, "kept.txt", &bytes).await;

    let cut = CutShort {
        network: &author.client,
        puts_left: Cell::new(1),
    };
    // Past the commit point the change is done: the new session comes back (the tab must not
    // stay on the old keys, whose retry would fork the account).
    let interrupted = Shared::new(
        account::change_password(&cut, &alice, PASSWORD, NEW_PASSWORD)
            .await
            .unwrap(),
    );
    assert_ne!(interrupted.public_key(), alice.public_key());

    // Before anyone finishes the change, whoever knew the old password writes with the old
    // key: a file planted in the index the old key still signs. (Writing the index frees the
    // one before; this attacker plants only, so the test puts the freed copies back. One who
    // also frees them destroys the index: a risk for as long as a change stays unfinished.)
    let mut held = Vec::new();
    for node in &nodes {
        for id in node.store.sample(usize::MAX).await.unwrap() {
            let bytes = node.store.get(&id).await.unwrap().unwrap();
            held.push((node, id, bytes, node.store.claims(&id).await.unwrap()));
        }
    }
    let planted = upload(author, &alice, "planted.exe", &pattern(2000, 6)).await;
    for (node, id, bytes, claims) in held {
        if node.store.get(&id).await.unwrap().is_none() {
            for owner in claims {
                let bytes = bytes.clone();
                node.store
                    .put(id, bytes, owner, u64::MAX, None)
                    .await
                    .unwrap();
            }
        }
    }

    // The new password opens the account; the old one no longer does; the file is there,
    // still under the index the old key wrote, and the log-in published the missing records.
    let wrong = account::log_in(&reader.client, "alice", PASSWORD).await;
    assert!(
        matches!(wrong, Err(AccountError::WrongPassword)),
        "{wrong:?}"
    );
    let session = Shared::new(
        account::log_in(&reader.client, "alice", NEW_PASSWORD)
            .await
            .unwrap(),
    );
    assert_ne!(session.public_key(), alice.public_key());
    assert_eq!(download(reader, &session, &id).await.unwrap(), bytes);
    // The index read is the one pinned at the change: the planted file is not there.
    let names = |listed: Vec<files::FileInfo>| -> Vec<String> {
        listed.into_iter().map(|f| f.name).collect()
    };
    let listed = drive(&reader.client, &session).list().await.unwrap();
    assert_eq!(names(listed), ["kept.txt"]);
    let hidden = download(reader, &session, &planted).await;
    assert!(matches!(hidden, Err(FileError::NoSuchFile)), "{hidden:?}");
    let claim = copy_of(&reader.client, RecordKind::PublicKey, &session).await;
    assert!(claim.descends_from(&alice.public_key().to_der().unwrap()));
    copy_of(&reader.client, RecordKind::UserKey, &session).await;

    let files = drive(&reader.client, &session).donating(donation(reader));
    assert!(files.finish_rotation().await.unwrap());
    assert_eq!(download(reader, &session, &id).await.unwrap(), bytes);
    let again = Shared::new(
        account::log_in(&nodes[17].client, "alice", NEW_PASSWORD)
            .await
            .unwrap(),
    );
    assert_eq!(download(&nodes[17], &again, &id).await.unwrap(), bytes);
    let listed = drive(&nodes[17].client, &again).list().await.unwrap();
    assert_eq!(names(listed), ["kept.txt"], "re-sealed without it");
    // And the old key can no longer write the index at all.
    let refused = drive(&author.client, &alice)
        .donating(donation(author))
        .upload("late.exe", pattern(100, 1).as_slice(), |_| {
            ControlFlow::Continue(())
        })
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let listed = drive(&nodes[17].client, &again).list().await.unwrap();
    assert_eq!(names(listed), ["kept.txt"]);
}
