//! What the native cluster tests share: starting many peers over loopback TCP.
#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod hostile;

use std::{ops::ControlFlow, time::Duration};

use jellyfish_peer::{
    account::Session,
    files::{self, Drive, FileError},
    net::{Client, Config},
    node::{self, Node},
    Shared,
};
use libp2p::{identity::Keypair, Multiaddr};

/// Starts `count` peers, each donating `donation(i)` bytes, all bootstrapped from the first,
/// and waits until every one's DHT lookups see at least half of the others.
pub(crate) async fn cluster(count: usize, donation: impl Fn(usize) -> u64) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut first: Option<Multiaddr> = None;
    for i in 0..count {
        let config = Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: first.iter().cloned().collect(),
            agent: "jellyfish-test".into(),
            // The files tests measure the transport with probes; the spam test sends them.
            answer_probes: true,
            ..Default::default()
        };
        let node = node::start(Keypair::generate_ed25519(), config, donation(i))
            .await
            .unwrap();
        if first.is_none() {
            first = Some(dialable(&node).await);
        }
        nodes.push(node);
    }
    for node in &nodes {
        for _ in 0..50 {
            let found = node.client.discover().await.map(|p| p.len()).unwrap_or(0);
            if found >= count / 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    nodes
}

/// The node's first listen address, with its peer id.
pub(crate) async fn dialable(node: &Node) -> Multiaddr {
    loop {
        if let Some(addr) = node.client.status().await.unwrap().listen_addrs.first() {
            return format!("{addr}/p2p/{}", node.client.peer_id())
                .parse()
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deterministic bytes for a test file.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Downloads a whole file through `node`.
pub(crate) async fn download(
    node: &Node,
    session: &Shared<Session>,
    id: &str,
) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::new();
    drive(&node.client, session)
        .download(id, |block| {
            out.extend_from_slice(&block);
            ControlFlow::Continue(())
        })
        .await?;
    Ok(out)
}

/// `session`'s files through `client`, with the default settings and no donation.
pub(crate) fn drive(client: &Client, session: &Shared<Session>) -> Drive {
    Drive::new(client.clone(), session.clone(), files::Settings::default())
}
