//! What the native cluster tests share: starting many peers, connected in memory.
#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod hostile;

use std::{ops::ControlFlow, time::Duration};

use jellyfish_peer::{
    account::Session,
    files::{self, Drive, FileError},
    net::{Client, Config, Tuning},
    node::{self, Node},
    repair, Shared,
};
use libp2p::{identity::Keypair, swarm::NetworkBehaviour, Multiaddr, Swarm, SwarmBuilder};

/// Where every test peer listens: an in-process memory transport (`/memory/<n>`, a fresh `n`
/// for each), so the cluster tests open no sockets and pay no TCP; the peers still speak noise,
/// yamux, Kademlia and Jellyfish's protocols as over any other transport.
pub(crate) const LISTEN: &str = "/memory/0";

/// Starts `count` peers, each donating `donation(i)` bytes, all bootstrapped from the first,
/// and waits until every one's DHT lookups see at least half of the others.
pub(crate) async fn cluster(count: usize, donation: impl Fn(usize) -> u64) -> Vec<Node> {
    cluster_with(count, donation, &Schedule::default()).await
}

/// How fast a test cluster repairs and re-replicates (the defaults: as the app runs).
#[derive(Clone, Default)]
pub(crate) struct Schedule {
    pub(crate) repair: repair::Settings,
    pub(crate) tuning: Tuning,
}

/// Starts one peer donating `donation` bytes, bootstrapped from `bootstrap`.
pub(crate) async fn start(
    bootstrap: Option<Multiaddr>,
    donation: u64,
    schedule: &Schedule,
) -> Node {
    let config = Config {
        listen: vec![LISTEN.parse().unwrap()],
        bootstrap: bootstrap.into_iter().collect(),
        agent: "jellyfish-test".into(),
        // The files tests measure the transport with probes; the spam test sends them.
        answer_probes: true,
        tuning: schedule.tuning.clone(),
        ..Default::default()
    };
    node::start_with(
        Keypair::generate_ed25519(),
        config,
        donation,
        schedule.repair.clone(),
    )
    .await
    .unwrap()
}

/// [`cluster`], on `schedule`.
pub(crate) async fn cluster_with(
    count: usize,
    donation: impl Fn(usize) -> u64,
    schedule: &Schedule,
) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut first: Option<Multiaddr> = None;
    for i in 0..count {
        let node = start(first.clone(), donation(i), schedule).await;
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

/// A bare libp2p swarm with `behaviour`, for a test that plays a peer Jellyfish's own code
/// would never be (an attacker, a forger): it reaches the cluster over the same memory
/// transport, with noise and yamux, and keeps idle connections for 60 s as a persistent
/// attacker would.
pub(crate) fn swarm<B: NetworkBehaviour>(
    key: Keypair,
    behaviour: impl FnOnce(&Keypair) -> B,
) -> Swarm<B> {
    use libp2p::{
        core::{transport::MemoryTransport, upgrade::Version},
        noise, yamux, Transport,
    };
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            Ok(MemoryTransport::default()
                .upgrade(Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default()))
        })
        .unwrap()
        .with_behaviour(|key| behaviour(key))
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}
