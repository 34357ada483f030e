//! What the native cluster tests share: starting many peers over loopback TCP.
#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod hostile;

use std::time::Duration;

use jellyfish_peer::{
    net::Config,
    node::{self, Node},
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
