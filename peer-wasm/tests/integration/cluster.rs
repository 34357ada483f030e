//! A cluster of native peers in one process, over the in-memory transport: the same event loop and
//! protocol the browser runs, minus the browser.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashSet, future::Future, io, time::Duration};

use futures::{channel::mpsc, AsyncReadExt, AsyncWriteExt, StreamExt};
use jellyfish_peer::{
    net::{self, Client, Config, Event},
    protocol::{MAX_REQUEST_BYTES, RPC_PROTOCOL},
};
use libp2p::{
    identity::Keypair, request_response, swarm::SwarmEvent, Multiaddr, PeerId, StreamProtocol,
};

use crate::common;

const CLUSTER_SIZE: usize = 20;

async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts a peer listening on a fresh memory address and returns it with its dialable address.
async fn start_peer(bootstrap: Vec<Multiaddr>) -> (Client, mpsc::Receiver<Event>, Multiaddr) {
    let config = Config {
        listen: vec![common::LISTEN.parse().unwrap()],
        bootstrap,
        agent: "jellyfish-test".into(),
        ..Default::default()
    };
    let started = net::start(Keypair::generate_ed25519(), config).unwrap();
    let (client, events) = (started.client, started.events);
    let addr = eventually("a listen address", || async {
        let status = client.status().await.unwrap();
        status.listen_addrs.first().cloned()
    })
    .await;
    let addr: Multiaddr = format!("{addr}/p2p/{}", client.peer_id()).parse().unwrap();
    (client, events, addr)
}

/// CBOR for `{"v": version, "body": {"Hello": {"agent": "x"}}}`.
fn protocol_envelope_of_version(version: u16) -> Vec<u8> {
    let mut bytes = vec![0xa2, 0x61, b'v', 0x19];
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(&[0x64, b'b', b'o', b'd', b'y', 0xa1, 0x65]);
    bytes.extend_from_slice(b"Hello");
    bytes.extend_from_slice(&[0xa1, 0x65]);
    bytes.extend_from_slice(b"agent");
    bytes.extend_from_slice(&[0x61, b'x']);
    bytes
}

async fn addr_of(peer: &Client) -> Multiaddr {
    let status = peer.status().await.unwrap();
    format!("{}/p2p/{}", status.listen_addrs[0], peer.peer_id())
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_peers_find_each_other_through_the_dht_and_say_hello() {
    let (first, _first_events, first_addr) = start_peer(vec![]).await;
    let mut peers = vec![first];
    let mut event_streams = Vec::new();
    for _ in 1..CLUSTER_SIZE {
        let (client, events, _) = start_peer(vec![first_addr.clone()]).await;
        peers.push(client);
        event_streams.push(events);
    }
    let ids: Vec<PeerId> = peers.iter().map(Client::peer_id).collect();

    // Every peer learns every other one through DHT lookups alone: only the first peer's
    // address was given out. (With 20 peers all fit in one reply of k = 20.)
    for (i, peer) in peers.iter().enumerate() {
        let others: HashSet<PeerId> = ids.iter().copied().filter(|p| *p != ids[i]).collect();
        let mut seen = HashSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !others.is_subset(&seen) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "peer {i} found only {} of {} others",
                others.intersection(&seen).count(),
                others.len()
            );
            seen.extend(peer.discover().await.unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!seen.contains(&ids[i]), "a peer never discovers itself");
    }

    // A placement in a network smaller than k is answered from the routing table, with the
    // peers a walk confirms: every bucket has room, so no walk could name anyone else.
    let placer = &peers[1];
    let six = std::num::NonZeroUsize::new(6).unwrap();
    for round in 0..5u8 {
        let key = vec![round; 32];
        let walked = placer.closest_peers_for(key.clone(), six).await.unwrap();
        let placed = placer.placement_peers(key, six).await.unwrap();
        assert_eq!(
            placed[..6],
            walked[..6],
            "key {round}: table and walk disagree"
        );
    }
    let saved = placer.status().await.unwrap().placements_from_table;
    assert_eq!(saved, 5, "every placement was answered without a walk");

    // Each peer greets the next one, dialling it by id through what the DHT told it.
    for (i, peer) in peers.iter().enumerate() {
        let next = ids[(i + 1) % ids.len()];
        let reply = peer.hello(next).await.unwrap();
        assert_eq!(reply.peer_id, next.to_string());
        assert_eq!(reply.agent, "jellyfish-test");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_peers_give_a_clear_error() {
    let (peer, _events, _) = start_peer(vec![]).await;
    let err = peer.discover().await.unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");
    let err = peer.hello(PeerId::random()).await.unwrap_err();
    assert!(err.to_string().contains("request to"), "{err}");
}

/// A codec that sends whatever bytes it is given: a hostile or broken peer.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn read_response<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        self.read_request(p, io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        self.write_request(p, io, res).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_are_refused_and_the_peer_carries_on() {
    let (peer, events, _) = start_peer(vec![]).await;
    // It keeps the connection up after each answer, as a persistent attacker would.
    let mut attacker = common::swarm(Keypair::generate_ed25519(), |_| {
        request_response::Behaviour::with_codec(
            RawCodec,
            [(RPC_PROTOCOL, request_response::ProtocolSupport::Outbound)],
            request_response::Config::default(),
        )
    });
    attacker.dial(addr_of(&peer).await).unwrap();

    // What each refusal says is checked in protocol.rs; libp2p drops requests that never
    // decoded without an event, so here the proof is: no answer, and the peer carries on.
    let hostile = [
        vec![0xff, 0x13, 0x37, 0x00],
        vec![0xa5; MAX_REQUEST_BYTES + 1],
        // A well-formed envelope of another wire version.
        protocol_envelope_of_version(999),
    ];
    for bytes in hostile {
        attacker
            .behaviour_mut()
            .send_request(&peer.peer_id(), bytes);
        loop {
            match attacker.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { .. }) => break,
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                }) => {
                    // The stream was closed without a byte: nothing was answered.
                    assert!(
                        response.is_empty(),
                        "a hostile request must not be answered"
                    );
                    break;
                }
                _ => {}
            }
        }
    }
    drop(events);

    // The peer is still up and answers a proper hello from someone else.
    let (friend, _friend_events, _) = start_peer(vec![addr_of(&peer).await]).await;
    let reply = eventually("hello after the hostile requests", || {
        let friend = friend.clone();
        let id = peer.peer_id();
        async move { friend.hello(id).await.ok() }
    })
    .await;
    assert_eq!(reply.peer_id, peer.peer_id().to_string());
}
