//! Files over a cluster of 20 native peers with block stores: placement, replication, tamper
//! detection, holder loss, full holders, delete.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{ops::ControlFlow, time::Duration};

use jellyfish_peer::{
    account,
    files::{Donation, FileError, DEFAULT_REPLICAS},
    node::Node,
    probe,
};

const PEERS: usize = 20;
const PASSWORD: &str = "violet tractor sings under seven moons";
const MIB: u64 = 1024 * 1024;

use crate::common::{self, drive};
use jellyfish_peer::Shared;

use common::{download, pattern};

async fn cluster(donation: impl Fn(usize) -> u64) -> Vec<Node> {
    common::cluster(PEERS, donation).await
}

fn donation(node: &Node, bytes: u64) -> Donation {
    Donation {
        keypair: node.keypair.clone(),
        bytes,
    }
}

async fn blocks_held(nodes: &[Node]) -> Vec<u64> {
    let mut held = Vec::new();
    for node in nodes {
        held.push(node.store.usage().await.unwrap().blocks);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_download_tamper_loss_and_delete() {
    let nodes = cluster(|_| 64 * MIB).await;
    let author = &nodes[2];
    let session = Shared::new(
        account::sign_up_with_key_bits(&author.client, "alice", PASSWORD, 2048)
            .await
            .unwrap(),
    );

    let contents = [
        ("empty.txt", Vec::new()),
        ("one.bin", vec![42u8]),
        ("note.txt", pattern(5 * 1024, 1)),
        ("big.bin", pattern((3 * MIB + 12345) as usize, 7)),
    ];
    let mut ids = Vec::new();
    let uploader = drive(&author.client, &session).donating(donation(author, 64 * MIB));
    for (name, bytes) in &contents {
        let mut last = 0;
        let report = uploader
            .upload(name, bytes.as_slice(), |done| {
                last = done;
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert!(report.complete, "{report:?}");
        assert_eq!(report.file.copies, DEFAULT_REPLICAS as u32);
        assert_eq!(last, bytes.len() as u64, "progress reaches the whole size");
        ids.push(report.file.id);
    }
    // The uploader holds none of its own blocks; every data block has R copies elsewhere
    // (once the older indexes' frees are done); these small files' manifests ride in the
    // index (`Settings::inline_manifest_bytes`), and the index in its record
    // (`Settings::inline_index_bytes`).
    uploader.frees_done().await;
    let held = blocks_held(&nodes).await;
    assert_eq!(held[2], 0, "never the uploader itself: {held:?}");
    // 4 files: 1 + 1 + 1 + 4 data blocks 3 times.
    assert_eq!(held.iter().sum::<u64>(), 3 * 7, "{held:?}");

    // Cancelled after its first block: an error, nothing listed, and every placed block freed.
    let cancelled = drive(&author.client, &session)
        .donating(donation(author, 64 * MIB))
        .upload(
            "cancelled.bin",
            pattern((6 * MIB) as usize, 9).as_slice(),
            |_| ControlFlow::Break(()),
        )
        .await;
    assert!(
        matches!(cancelled, Err(FileError::Cancelled)),
        "{cancelled:?}"
    );
    assert_eq!(
        blocks_held(&nodes).await,
        held,
        "the cancelled upload left no block behind"
    );
    assert_eq!(
        drive(&author.client, &session).list().await.unwrap().len(),
        4
    );

    // The benchmark's transport probes move bytes the same way, and store nothing.
    let others: Vec<_> = nodes[3..6].iter().map(|n| n.client.peer_id()).collect();
    probe::push(&author.client, &others, 3 * MIB + 5)
        .await
        .unwrap();
    probe::pull(&author.client, &others[..1], 2 * MIB + 5, 1)
        .await
        .unwrap();
    probe::pull(&author.client, &others, 5 * MIB + 5, 4)
        .await
        .unwrap();
    assert_eq!(blocks_held(&nodes).await, held, "probes store nothing");

    // Another peer logs in and sees the same files, and downloads them bit-exact.
    let reader = &nodes[11];
    let elsewhere = Shared::new(
        account::log_in(&reader.client, "alice", PASSWORD)
            .await
            .unwrap(),
    );
    let listed = drive(&reader.client, &elsewhere).list().await.unwrap();
    assert_eq!(
        listed.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["empty.txt", "one.bin", "note.txt", "big.bin"]
    );
    for ((_, bytes), id) in contents.iter().zip(&ids) {
        assert_eq!(&download(reader, &elsewhere, id).await.unwrap(), bytes);
    }

    // A holder alters everything it holds: downloads notice and use other copies.
    let liar = nodes.iter().position(|n| n.store.tamper_all() > 0).unwrap();
    assert_eq!(
        &download(reader, &elsewhere, &ids[3]).await.unwrap(),
        &contents[3].1
    );

    // One more holder vanishes: with three copies, every block keeps a good one.
    let mut gone = 0;
    for (i, node) in nodes.iter().enumerate() {
        if i != liar
            && i != 2
            && i != 11
            && node.store.usage().await.unwrap().blocks > 0
            && gone < 1
        {
            node.client.shutdown().await;
            gone += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for ((_, bytes), id) in contents.iter().zip(&ids) {
        assert_eq!(&download(reader, &elsewhere, id).await.unwrap(), bytes);
    }

    // Delete: gone from the index everywhere, and holders free the space.
    let before: u64 = blocks_held(&nodes).await.iter().sum();
    let freed = drive(&reader.client, &elsewhere)
        .delete(&ids[3])
        .await
        .unwrap();
    assert!(
        freed >= 5,
        "at least one copy of each of its 5 blocks: {freed}"
    );
    let after: u64 = blocks_held(&nodes).await.iter().sum();
    assert!(after < before, "{before} -> {after}");
    let listed = drive(&author.client, &session).list().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(matches!(
        download(reader, &elsewhere, &ids[3]).await,
        Err(FileError::NoSuchFile)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_nobody_can_hold_fails_and_changes_nothing() {
    // Every peer but the author donates 100 KiB: enough for small blocks, not for 1 MiB ones.
    let nodes = cluster(|i| if i == 0 { 64 * MIB } else { 100 * 1024 }).await;
    let author = &nodes[0];
    let session = Shared::new(
        account::sign_up_with_key_bits(&author.client, "bob", PASSWORD, 2048)
            .await
            .unwrap(),
    );
    drive(&author.client, &session)
        .donating(donation(author, 64 * MIB))
        .upload("small.txt", &b"fits"[..], |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    let big = pattern(MIB as usize, 3);
    let err = drive(&author.client, &session)
        .donating(donation(author, 64 * MIB))
        .upload("big.bin", big.as_slice(), |_| ControlFlow::Continue(()))
        .await
        .unwrap_err();
    assert!(matches!(err, FileError::NoHolder { index: 0, .. }), "{err}");
    assert!(
        err.to_string().contains("full"),
        "the holders' reason reaches the user: {err}"
    );
    let listed = drive(&author.client, &session).list().await.unwrap();
    assert_eq!(
        listed.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["small.txt"]
    );
}

/// A reader that holds a copy of the block it wants reads it from its own holder: when the
/// other copies are gone or altered, that copy is the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_holding_a_copy_reads_it_from_itself() {
    use jellyfish_peer::{
        block::BlockId,
        protocol::{Request, Response},
    };

    let nodes = common::cluster(3, |_| 64 * MIB).await;
    let me = &nodes[1];
    let bytes = vec![42u8; 1000];
    let id = BlockId::of(&bytes);
    me.store
        .put(id, bytes.clone(), [1; 32], u64::MAX, None)
        .await
        .unwrap();
    let answer = me
        .client
        .request(me.client.peer_id(), Request::FetchBlock { id })
        .await
        .unwrap();
    assert_eq!(answer, Response::Block { bytes });
}

/// A holder that takes blocks and throws them away is found by the owner's audit, which asks
/// for a random leaf of a block and checks the answer against the address alone; a holder
/// that left does not answer. Both count as gone; honest holders pass, and the file still
/// downloads from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_finds_holders_that_dropped_or_left() {
    let mut nodes = cluster(|_| 64 * MIB).await;
    let author = 2;
    let session = Shared::new(
        account::sign_up_with_key_bits(&nodes[author].client, "alice", PASSWORD, 2048)
            .await
            .unwrap(),
    );
    let bytes = pattern((2 * MIB + 999) as usize, 5);
    let report = drive(&nodes[author].client, &session)
        .donating(donation(&nodes[author], 64 * MIB))
        .upload("kept.bin", bytes.as_slice(), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!(report.file.copies, DEFAULT_REPLICAS as u32);

    // All honest: every challenge is answered with a valid proof.
    let clean = drive(&nodes[author].client, &session)
        .auditing(10)
        .audit()
        .await
        .unwrap();
    assert_eq!(
        clean.blocks, 3,
        "3 data blocks (the manifest rides in the index)"
    );
    assert_eq!(clean.held, clean.challenges, "{clean:?}");
    assert!(
        clean.failures.is_empty() && clean.files_degraded == 0,
        "{clean:?}"
    );

    // One holder of a data block drops what it holds (keeping its books), another holder
    // leaves the network. (A data block has 3 copies; the manifest rides in the index and the
    // index in its record.)
    let mut copies: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    let mut held_by = Vec::new();
    for node in &nodes {
        let ids = node.store.sample(usize::MAX).await.unwrap();
        for id in &ids {
            *copies.entry(*id).or_default() += 1;
        }
        held_by.push(ids);
    }
    let holds_data = |i: usize| held_by[i].iter().any(|id| copies[id] == DEFAULT_REPLICAS);
    let holders: Vec<usize> = (0..nodes.len())
        .filter(|&i| {
            clean
                .holders
                .contains(&nodes[i].client.peer_id().to_string())
        })
        .collect();
    assert!(holders.len() >= 2, "{holders:?}");
    let dropper = *holders.iter().find(|&&i| holds_data(i)).unwrap();
    let leaver = *holders.iter().find(|&&i| i != dropper).unwrap();
    let dropper_id = nodes[dropper].client.peer_id().to_string();
    assert!(nodes[dropper].store.drop_all() > 0);
    let gone = nodes.remove(leaver);
    let leaver_id = gone.client.peer_id().to_string();
    gone.client.shutdown().await;
    let author = if leaver < author { author - 1 } else { author };

    let found = drive(&nodes[author].client, &session)
        .auditing(10)
        .audit()
        .await
        .unwrap();
    let failed: Vec<(&str, bool)> = found
        .failures
        .iter()
        .map(|f| (f.peer.as_str(), f.answered))
        .collect();
    assert!(failed.contains(&(dropper_id.as_str(), true)), "{found:?}");
    assert!(failed.contains(&(leaver_id.as_str(), false)), "{found:?}");
    assert!(
        found
            .failures
            .iter()
            .all(|f| f.peer == dropper_id || f.peer == leaver_id),
        "only the dropper and the leaver fail: {found:?}"
    );
    assert_eq!(found.held + found.failures.len(), found.challenges);
    assert_eq!(found.files_degraded, 1);

    // The index now says so, and the file still downloads from the honest holders.
    let listed = drive(&nodes[author].client, &session).list().await.unwrap();
    assert!(listed[0].copies < DEFAULT_REPLICAS as u32, "{listed:?}");
    let reader = &nodes[11];
    let again = Shared::new(
        account::log_in(&reader.client, "alice", PASSWORD)
            .await
            .unwrap(),
    );
    assert_eq!(
        download(reader, &again, &report.file.id).await.unwrap(),
        bytes
    );
}
