//! The relay as a library, on free ports: it serves its counters, refuses DHT records, and
//! survives garbage on its sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use jellyfish_relay::{Config, Relay};
use libp2p::{kad, noise, swarm::SwarmEvent, yamux, Multiaddr, StreamProtocol};
use std::io::{Read, Write};

const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new(jellyfish_protocols::KAD);

fn config(data_dir: &std::path::Path) -> Config {
    Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        listen: vec!["/ip4/127.0.0.1/tcp/0/ws".parse().unwrap()],
        external_addrs: vec![],
        fellows: vec![],
        ice_servers: vec!["stun:stun.example.org:3478".into()],
        data_dir: data_dir.to_owned(),
        www_dir: data_dir.join("www"),
        max_reservations: 16,
        max_circuits: 16,
        max_circuits_per_peer: 4,
        max_circuit_bytes: 1 << 20,
        max_circuit_secs: 60,
        circuits_per_peer_per_minute: 120,
        circuits_per_ip_per_minute: 1200,
        connections_per_ip: 256,
        max_connections: 1024,
        max_memory_percent: 95.0,
        allow_probes: false,
        repair_every_secs: None,
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap()
}

/// A Kademlia client (client mode, so the relay never asks it anything) over WebSocket.
async fn kad_client() -> libp2p::Swarm<kad::Behaviour<kad::store::MemoryStore>> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .unwrap()
        .with_behaviour(|key| {
            let id = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(
                id,
                kad::store::MemoryStore::new(id),
                kad::Config::new(KAD_PROTOCOL),
            );
            kad.set_mode(Some(kad::Mode::Client));
            kad
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

fn json_body(response: &str) -> serde_json::Value {
    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_records_survives_garbage_and_reports_counters() {
    let data_dir = std::env::temp_dir().join(format!("jf-relay-test-{}", std::process::id()));
    let relay = Relay::bind(config(&data_dir)).await.unwrap();
    let (http, stats, relay_id) = (relay.http_addr(), relay.stats(), relay.peer_id());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));

    let relay_addr: Multiaddr = loop {
        if let Some(addr) = stats.addrs().first() {
            break addr.parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(relay_addr
        .to_string()
        .ends_with(&format!("/p2p/{relay_id}")));

    // Garbage on the libp2p socket: the relay drops that connection and carries on.
    let ws_port = relay_addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let mut junk = std::net::TcpStream::connect(("127.0.0.1", ws_port)).unwrap();
    // The relay may hang up mid-write; that is fine too.
    let _ = junk.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(4096));
    drop(junk);

    // A DHT client puts a record on the relay, then asks for it back.
    let mut client = kad_client().await;
    client
        .behaviour_mut()
        .add_address(&relay_id, relay_addr.clone());
    let record = kad::Record::new(b"some-key".to_vec(), b"user data".to_vec());
    client
        .behaviour_mut()
        .put_record_to(record, std::iter::once(relay_id), kad::Quorum::One);
    let refused = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::PutRecord(_),
                ..
            }) = client.select_next_some().await
            {
                return;
            }
        }
    });
    refused.await.expect("the put query to finish");
    assert!(
        stats.snapshot().records_refused >= 1,
        "{:?}",
        stats.snapshot()
    );

    client
        .behaviour_mut()
        .get_record(kad::RecordKey::new(b"some-key"));
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetRecord(result),
                step,
                ..
            }) = client.select_next_some().await
            {
                if let Ok(kad::GetRecordOk::FoundRecord(_)) = result {
                    return true;
                }
                if step.last {
                    return false;
                }
            }
        }
    });
    assert!(
        !found.await.expect("the get query to finish"),
        "the relay must not store records"
    );

    // The HTTP side still answers, with counters that saw all this.
    let health = json_body(&http_get(http, "/health").await);
    assert_eq!(health["status"], "ok");
    assert!(
        health["connections_total"].as_u64().unwrap() >= 1,
        "{health}"
    );
    assert!(health["records_refused"].as_u64().unwrap() >= 1, "{health}");
    assert!(health["bytes_in"].as_u64().unwrap() > 0, "{health}");
    let info = json_body(&http_get(http, "/api/relay").await);
    assert_eq!(info["peer_id"], relay_id.to_string());
    assert_eq!(info["ice_servers"][0], "stun:stun.example.org:3478");
    assert_eq!(info["probes"], false);

    // The data directory holds the identity key and nothing else.
    let files: Vec<_> = std::fs::read_dir(&data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["identity.key"]);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("a prompt shutdown")
        .unwrap();
    std::fs::remove_dir_all(&data_dir).unwrap();
}

/// A libp2p client that dials the relay and reports, after `hold`, whether it is still
/// connected (the relay drops a connection it refuses right after the handshake).
async fn stays_connected(
    relay: Multiaddr,
    hold: Duration,
    leave: tokio::sync::oneshot::Receiver<()>,
) -> bool {
    let mut client = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .unwrap()
        .with_behaviour(|_| libp2p::swarm::dummy::Behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    client.dial(relay).unwrap();
    let mut connected = false;
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            event = client.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { .. } => connected = true,
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => connected = false,
                _ => {}
            },
        }
    }
    // Stay connected until told to leave, so the relay keeps counting this connection.
    if connected {
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::select! {
                _ = leave => {}
                () = async { loop { client.select_next_some().await; } } => {}
            }
        })
        .await;
    }
    connected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_slot() {
    let data_dir = std::env::temp_dir().join(format!("jf-relay-ip-{}", std::process::id()));
    let relay = Relay::bind(Config {
        connections_per_ip: 3,
        ..config(&data_dir)
    })
    .await
    .unwrap();
    let stats = relay.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    let relay_addr: Multiaddr = loop {
        if let Some(addr) = stats.addrs().first() {
            break addr.parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Five clients from 127.0.0.1, one after another: three are let in, two are refused.
    let mut leave = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..5 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        leave.push(tx);
        let addr = relay_addr.clone();
        clients.push(tokio::spawn(stays_connected(
            addr,
            Duration::from_secs(2),
            rx,
        )));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The first three leave; a newcomer from the same address then gets in.
    for tx in leave.drain(..3) {
        let _ = tx.send(());
    }
    let mut connected = Vec::new();
    for client in clients {
        connected.push(client.await.unwrap());
    }
    assert_eq!(connected, [true, true, true, false, false]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_tx, rx) = tokio::sync::oneshot::channel();
    let newcomer = tokio::spawn(stays_connected(relay_addr, Duration::from_secs(2), rx));
    drop(_tx);
    assert!(
        newcomer.await.unwrap(),
        "a slot freed by a leaver is taken again"
    );

    drop(leave);
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two relays name each other as fellows (by address alone, and one with a dead third): each
/// learns the other's id, lists it in `/api/relay` and lets the page connect to it, and a DHT
/// client that knows only the first relay is handed the second (one DHT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fellow_relays_list_each_other_and_share_one_dht() {
    let base = std::env::temp_dir().join(format!("jf-relay-fellows-{}", std::process::id()));
    let (port_a, port_b, dead) = (free_port(), free_port(), free_port());
    let ws = |port: u16| -> Multiaddr { format!("/ip4/127.0.0.1/tcp/{port}/ws").parse().unwrap() };
    let start = |dir: &str, port: u16, fellows: Vec<Multiaddr>| {
        let mut c = config(&base.join(dir));
        c.listen = vec![ws(port)];
        c.fellows = fellows;
        Relay::bind(c)
    };
    let a = start("a", port_a, vec![ws(port_b), ws(dead)])
        .await
        .unwrap();
    let b = start("b", port_b, vec![ws(port_a)]).await.unwrap();
    let (http_a, stats_a, id_a) = (a.http_addr(), a.stats(), a.peer_id());
    let (stats_b, id_b) = (b.stats(), b.peer_id());
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let running_a = tokio::spawn(a.run(async {
        let _ = stopped_a.await;
    }));
    let running_b = tokio::spawn(b.run(async {
        let _ = stopped_b.await;
    }));

    let want_b = format!("/ip4/127.0.0.1/tcp/{port_b}/ws/p2p/{id_b}");
    let want_a = format!("/ip4/127.0.0.1/tcp/{port_a}/ws/p2p/{id_a}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stats_a.fellows() != [want_b.clone()] || stats_b.fellows() != [want_a.clone()] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fellows not learnt: {:?} {:?}",
            stats_a.fellows(),
            stats_b.fellows()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = http_get(http_a, "/api/relay").await;
    let info = json_body(&response);
    assert_eq!(info["fellows"], serde_json::json!([want_b]), "{info}");
    let csp = response
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .expect("a policy")
        .to_owned();
    assert!(csp.contains(&format!("ws://127.0.0.1:{port_a}")), "{csp}");
    assert!(csp.contains(&format!("ws://127.0.0.1:{port_b}")), "{csp}");
    assert!(
        !csp.contains(&format!(":{dead}")),
        "an unreached fellow: {csp}"
    );

    // A DHT client that knows only relay A walks the DHT and meets relay B.
    let mut client = kad_client().await;
    client
        .behaviour_mut()
        .add_address(&id_a, want_a.parse().unwrap());
    client.behaviour_mut().get_closest_peers(id_b);
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(result),
                ..
            }) = client.select_next_some().await
            {
                let peers = match result {
                    Ok(ok) => ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                return peers.into_iter().map(|p| p.peer_id).collect::<Vec<_>>();
            }
        }
    })
    .await
    .expect("the walk ends");
    assert!(
        found.contains(&id_b),
        "relay B not found through A: {found:?}"
    );

    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), running_a).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), running_b).await;
    let _ = std::fs::remove_dir_all(&base);
}

/// One GET with extra header lines; the response's head (as text) and body (as bytes).
async fn http_get_raw(addr: std::net::SocketAddr, path: &str, headers: &str) -> (String, Vec<u8>) {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: relay\r\n{headers}Connection: close\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
        (head, response[split + 4..].to_vec())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_precompressed_copies_and_keeps_content_hashed_files_for_good() {
    let data_dir = std::env::temp_dir().join(format!("jf-relay-site-{}", std::process::id()));
    let pkg = data_dir.join("www").join("pkg-0123456789abcdef");
    std::fs::create_dir_all(&pkg).unwrap();
    let wasm = b"\0asm plain bytes".repeat(64);
    std::fs::write(pkg.join("peer_bg.wasm"), &wasm).unwrap();
    std::fs::write(pkg.join("peer_bg.wasm.br"), b"brotli copy").unwrap();
    std::fs::write(pkg.join("peer_bg.wasm.gz"), b"gzip copy").unwrap();
    std::fs::write(data_dir.join("www").join("index.html"), b"<!doctype html>").unwrap();
    let relay = Relay::bind(config(&data_dir)).await.unwrap();
    let http = relay.http_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    let path = "/pkg-0123456789abcdef/peer_bg.wasm";

    let (head, body) = http_get_raw(http, path, "Accept-Encoding: gzip, br\r\n").await;
    assert!(head.contains("content-encoding: br"), "{head}");
    assert!(head.contains("content-type: application/wasm"), "{head}");
    assert!(
        head.contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    assert!(head.contains("vary: accept-encoding"), "{head}");
    assert_eq!(body, b"brotli copy");

    let (head, body) = http_get_raw(http, path, "Accept-Encoding: gzip\r\n").await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(body, b"gzip copy");

    let (head, body) = http_get_raw(http, path, "").await;
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(body, wasm);

    // The page itself is asked about each time (it names the module's folder of the day), and
    // so is anything missing.
    let (head, _) = http_get_raw(http, "/", "Accept-Encoding: br\r\n").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    let (head, _) = http_get_raw(http, "/pkg-0123456789abcdef/gone.js", "").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");

    stop.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    let _ = std::fs::remove_dir_all(&data_dir);
}
