//! A large Jellyfish network in one process: real peers (the same event loop, DHT, placement,
//! pledges and holders the browser runs), connected over in-memory transports instead of
//! WebRTC, so a thousand of them fit on one machine.
//!
//! It grows the network step by step, newcomers arriving in waves of `--wave` (default 100),
//! each joining through a random earlier peer, and measures DHT lookups at each size (requests
//! sent, failures, time, and hops: the lookup replayed in rounds on the peers' real routing
//! tables). Then it stores files with the shipped parameters (1 MiB blocks, 3 copies, the sealed
//! index and records in the DHT), makes a growing share of peers leave at once (no repair runs
//! in between: the worst case), and measures what is still there: account records (log in),
//! the file index, and whole files (download), beside what independent loss of 3 copies
//! predicts.
//!
//! ```sh
//! cargo run --release -p jellyfish-peer --example simulate -- \
//!     --steps 100,300,1000 --lookups 50 --files 30 --leave 10,25,50,75
//! ```
//! In-memory latency is CPU time only: lookup times show the cost of the work, not of a WAN.
//!
//! Idle connections close after `--idle-secs` (default 60, as in a browser). Two timers are
//! slower than a browser's, because here one machine pays for what a thousand would each pay
//! for themselves: peers ping every `--ping-secs` (default 600; a browser every 15 s, but in
//! memory there is no latency to measure) and refresh their routing tables every
//! `--bootstrap-secs` (default 3600; a browser every 5 min: 1,000 peers doing that saturate two
//! cores, lookups start to time out at 30 s, and the figures show the machine, not the DHT).
//! Keeping idle connections longer saves Noise handshakes (300 peers come up in 70 s with 900 s,
//! against 111 s with a browser's 60 s and 15 s) but holds every connection a peer ever made: a
//! 1,000-peer run with 900 s ran out of 24 GiB.

// The simulation runs natively only; for the browser target this example is empty.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod native {

    use std::{
        collections::{BTreeMap, HashMap, HashSet},
        num::NonZeroUsize,
        ops::ControlFlow,
        path::PathBuf,
        time::Duration,
    };

    use futures::{stream, StreamExt};
    use jellyfish_peer::{
        account,
        files::{self, Donation, DEFAULT_REPLICAS},
        net::{Config, LookupStats},
        node::{self, Node},
        record::{dht_key, RecordKind},
    };
    use libp2p::{identity::Keypair, kad::KBucketKey, multiaddr::Protocol, Multiaddr, PeerId};
    use serde::Serialize;

    const PASSWORD: &str = "violet tractor sings under seven moons";
    const MIB: u64 = 1024 * 1024;

    struct Args {
        steps: Vec<usize>,
        lookups: usize,
        files: usize,
        leave: Vec<u32>,
        out: PathBuf,
        idle_secs: u64,
        ping_secs: u64,
        bootstrap_secs: u64,
        wave: usize,
    }

    fn parse_args() -> Args {
        let mut args = Args {
            steps: vec![100, 300, 1000],
            lookups: 50,
            files: 30,
            leave: vec![10, 25, 50, 75],
            out: PathBuf::from("tests/bench/results/simulation.json"),
            idle_secs: 60,
            ping_secs: 600,
            bootstrap_secs: 3600,
            wave: 100,
        };
        fn list<T: std::str::FromStr>(v: &str) -> Vec<T>
        where
            T::Err: std::fmt::Debug,
        {
            v.split(',').map(|x| x.trim().parse().unwrap()).collect()
        }
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
            match flag.as_str() {
                "--steps" => args.steps = list(&value),
                "--lookups" => args.lookups = value.parse().unwrap(),
                "--files" => args.files = value.parse().unwrap(),
                "--leave" => args.leave = list(&value),
                "--out" => args.out = value.into(),
                "--idle-secs" => args.idle_secs = value.parse().unwrap(),
                "--ping-secs" => args.ping_secs = value.parse().unwrap(),
                "--bootstrap-secs" => args.bootstrap_secs = value.parse().unwrap(),
                "--wave" => args.wave = value.parse::<usize>().unwrap().max(1),
                other => panic!("unknown flag {other}; see the file's header"),
            }
        }
        args
    }

    /// A small, fast pseudo-random sequence: the simulation needs spread, not secrecy.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn key(&mut self) -> Vec<u8> {
            (0..4).flat_map(|_| self.next().to_le_bytes()).collect()
        }
    }

    fn memory_addr(i: usize) -> Multiaddr {
        Multiaddr::empty().with(Protocol::Memory(i as u64 + 1))
    }

    async fn start(i: usize, bootstrap: Option<&Multiaddr>, args: &Args) -> Node {
        let config = Config {
            listen: vec![memory_addr(i)],
            bootstrap: bootstrap.cloned().into_iter().collect(),
            agent: "jellyfish-sim".into(),
            idle_timeout: Some(Duration::from_secs(args.idle_secs)),
            ping_interval: Some(Duration::from_secs(args.ping_secs)),
            bootstrap_interval: Some(Duration::from_secs(args.bootstrap_secs)),
            ..Default::default()
        };
        node::start(Keypair::generate_ed25519(), config, 256 * MIB)
            .await
            .unwrap()
    }

    #[derive(Debug, Clone, Serialize)]
    struct LookupRow {
        peers: usize,
        left_percent: u32,
        lookups: usize,
        requests_p50: u32,
        requests_p95: u32,
        failures_mean: f64,
        found_mean: f64,
        millis_p50: f64,
        millis_p95: f64,
        /// Rounds of α requests until the closest live peer to the key was known ([`hops`]).
        hops_p50: u32,
        hops_p95: u32,
        /// Rounds until the lookup ends (the k closest known peers all asked).
        rounds_p50: u32,
        rounds_p95: u32,
        /// Share of replayed lookups that met the closest live peer at all.
        found_closest: f64,
        /// Requests of a placement's walk (it confirms 6 peers, for 3 copies, not 20).
        placement_requests_p50: u32,
        placement_requests_p95: u32,
        /// Share of keys whose 3 first candidates are the 3 closest live peers: by a
        /// placement's walk, and by a full walk.
        placement_exact: f64,
        full_exact: f64,
    }

    /// Kademlia's bucket size and parallelism, as the peers run it (libp2p's defaults).
    const K: usize = 20;
    const ALPHA: usize = 3;

    /// Every live peer's routing table, as it is now.
    async fn routing_tables(nodes: &[Node], alive: &[bool]) -> HashMap<PeerId, Vec<PeerId>> {
        // Asked concurrently: one at a time, a thousand busy event loops take minutes to answer.
        let live = nodes.iter().zip(alive).filter(|(_, alive)| **alive);
        stream::iter(live)
            .map(|(node, _)| async move {
                let table = node.client.peers().await.unwrap_or_default();
                let ids = table
                    .iter()
                    .filter_map(|p| p.peer_id.parse().ok())
                    .collect();
                (node.client.peer_id(), ids)
            })
            .buffer_unordered(64)
            .collect()
            .await
    }

    /// Replays a lookup for `key` from `from` on the peers' real routing tables, in rounds:
    /// each round asks the α closest not yet asked among the k closest known, and each live
    /// peer asked answers with the k closest in its table (a peer that left answers nothing).
    /// On a WAN every round is one round trip, which in-memory times cannot show. Returns the
    /// round in which the closest live peer was first known (0: `from` knew it, or is it), if
    /// ever, and the rounds until the lookup ended.
    fn hops(tables: &HashMap<PeerId, Vec<PeerId>>, from: PeerId, key: &[u8]) -> (Option<u32>, u32) {
        let target = KBucketKey::new(key.to_vec());
        let distance = |p: &PeerId| KBucketKey::from(*p).distance(&target);
        let closest = tables.keys().min_by_key(|p| distance(p)).copied();
        let mut known: BTreeMap<_, PeerId> =
            tables[&from].iter().map(|p| (distance(p), *p)).collect();
        let mut asked = HashSet::from([from]);
        let knows_closest = |known: &BTreeMap<_, PeerId>| {
            closest == Some(from) || known.values().any(|p| Some(*p) == closest)
        };
        let mut found_at = knows_closest(&known).then_some(0);
        let mut rounds = 0;
        loop {
            let batch: Vec<PeerId> = known
                .values()
                .take(K)
                .filter(|p| !asked.contains(*p))
                .take(ALPHA)
                .copied()
                .collect();
            if batch.is_empty() {
                return (found_at, rounds);
            }
            rounds += 1;
            for peer in batch {
                asked.insert(peer);
                let Some(table) = tables.get(&peer) else {
                    known.retain(|_, p| *p != peer);
                    continue;
                };
                let mut answer: Vec<_> = table.iter().map(|p| (distance(p), *p)).collect();
                answer.sort();
                known.extend(answer.into_iter().take(K));
            }
            if found_at.is_none() && knows_closest(&known) {
                found_at = Some(rounds);
            }
        }
    }

    fn percentile<T: Copy + PartialOrd + Default>(values: &mut [T], p: f64) -> T {
        if values.is_empty() {
            return T::default();
        }
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        values[((values.len() - 1) as f64 * p).round() as usize]
    }

    async fn measure_lookups(
        nodes: &[Node],
        alive: &[bool],
        count: usize,
        left_percent: u32,
        rng: &mut Rng,
    ) -> LookupRow {
        let askers: Vec<usize> = (0..count)
            .map(|_| loop {
                let i = (rng.next() as usize) % nodes.len();
                if alive[i] {
                    break i;
                }
            })
            .collect();
        let keys: Vec<Vec<u8>> = (0..count).map(|_| rng.key()).collect();
        let stats: Vec<LookupStats> = stream::iter(askers.iter().zip(&keys))
            .map(|(i, key)| async move { nodes[*i].client.lookup(key.clone()).await.unwrap() })
            .buffer_unordered(8)
            .collect()
            .await;
        let tables = routing_tables(nodes, alive).await;
        let replayed: Vec<(Option<u32>, u32)> = askers
            .iter()
            .zip(&keys)
            .map(|(i, key)| hops(&tables, nodes[*i].client.peer_id(), key))
            .collect();
        let mut hops_to_closest: Vec<u32> = replayed.iter().filter_map(|r| r.0).collect();
        let mut rounds: Vec<u32> = replayed.iter().map(|r| r.1).collect();
        let mut requests: Vec<u32> = stats.iter().map(|s| s.requests).collect();
        // Placement walks of the same keys from the same peers: what they cost, and whether
        // their first 3 candidates are the 3 closest live peers (the truth, from every id).
        let placement = NonZeroUsize::new(6).unwrap();
        let placed: Vec<(LookupStats, bool, bool)> = stream::iter(askers.iter().zip(&keys))
            .map(|(i, key)| async move {
                let client = &nodes[*i].client;
                let stats = client.lookup_for(key.clone(), placement).await.unwrap();
                let target = KBucketKey::new(key.clone());
                let mut truth: Vec<PeerId> = (0..nodes.len())
                    .filter(|j| alive[*j] && j != i)
                    .map(|j| nodes[j].client.peer_id())
                    .collect();
                truth.sort_by_key(|p| KBucketKey::from(*p).distance(&target));
                truth.truncate(3);
                let exact = |found: Vec<PeerId>| {
                    found.len() >= 3 && truth.iter().all(|p| found[..3].contains(p))
                };
                let few = client.closest_peers_for(key.clone(), placement).await;
                let full = client.closest_peers(key.clone()).await;
                (
                    stats,
                    exact(few.unwrap_or_default()),
                    exact(full.unwrap_or_default()),
                )
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let mut placement_requests: Vec<u32> = placed.iter().map(|p| p.0.requests).collect();
        let share = |f: &dyn Fn(&(LookupStats, bool, bool)) -> bool| {
            placed.iter().filter(|p| f(p)).count() as f64 / count.max(1) as f64
        };
        let mut millis: Vec<f64> = stats.iter().map(|s| s.millis).collect();
        let mean =
            |f: &dyn Fn(&LookupStats) -> f64| stats.iter().map(f).sum::<f64>() / count as f64;
        LookupRow {
            peers: alive.iter().filter(|a| **a).count(),
            left_percent,
            lookups: count,
            requests_p50: percentile(&mut requests, 0.5),
            requests_p95: percentile(&mut requests, 0.95),
            failures_mean: mean(&|s| s.failures as f64),
            found_mean: mean(&|s| s.found as f64),
            millis_p50: percentile(&mut millis, 0.5),
            millis_p95: percentile(&mut millis, 0.95),
            hops_p50: percentile(&mut hops_to_closest, 0.5),
            hops_p95: percentile(&mut hops_to_closest, 0.95),
            rounds_p50: percentile(&mut rounds, 0.5),
            rounds_p95: percentile(&mut rounds, 0.95),
            found_closest: replayed.iter().filter(|r| r.0.is_some()).count() as f64
                / count.max(1) as f64,
            placement_requests_p50: percentile(&mut placement_requests, 0.5),
            placement_requests_p95: percentile(&mut placement_requests, 0.95),
            placement_exact: share(&|p| p.1),
            full_exact: share(&|p| p.2),
        }
    }

    #[derive(Debug, Clone, Serialize)]
    struct AvailabilityRow {
        left_percent: u32,
        peers_left: usize,
        log_in: bool,
        index_record: bool,
        files_downloadable: usize,
        files: usize,
        /// What independent loss predicts: each of a file's 3 sealed objects (data block,
        /// manifest, index blob) survives unless all 3 of its holders left.
        predicted_percent: f64,
    }

    /// Waits for the work a wave of newcomers sets off (every newcomer's routing-table refresh,
    /// at once) to die down, so the lookups measured next show the DHT rather than a machine
    /// running a thousand start-ups: until 8 probe lookups all finish within 5 s, for at most
    /// 15 minutes. Returns how long that took.
    async fn settle(nodes: &[Node], alive: &[bool], rng: &mut Rng) -> Duration {
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let probe = measure_lookups(nodes, alive, 8, 0, rng).await;
            if probe.millis_p95 < 5000.0 || started.elapsed() > Duration::from_secs(15 * 60) {
                return started.elapsed();
            }
            eprintln!(
                "  settling: probe lookups p95 {:.0} ms after {:.0} s",
                probe.millis_p95,
                started.elapsed().as_secs_f64()
            );
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }

    #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    pub(crate) async fn main() {
        let args = parse_args();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut nodes: Vec<Node> = Vec::new();
        let mut lookups = Vec::new();
        // Per step: peers, seconds since the start when they were all up, seconds to settle.
        let mut growth: Vec<(usize, f64, f64)> = Vec::new();
        let started = std::time::Instant::now();

        // Grow the network step by step; new peers join through the first one.
        for &target in &args.steps {
            while nodes.len() < target {
                // Newcomers arrive in waves: hundreds starting in the same second would each
                // walk the DHT at once, and on two cores the walks time out and are tried again
                // faster than they finish (700 at once had not come up after 30 min).
                let first = nodes.len();
                while nodes.len() < target.min(first + args.wave) {
                    // Through a random earlier peer: one bootstrap peer for all would serve
                    // every newcomer's first lookups alone (browsers spread the same way over
                    // relays).
                    let bootstrap = (!nodes.is_empty()).then(|| {
                        let j = (rng.next() as usize) % nodes.len();
                        memory_addr(j).with(Protocol::P2p(nodes[j].client.peer_id()))
                    });
                    nodes.push(start(nodes.len(), bootstrap.as_ref(), &args).await);
                }
                // Each newcomer walks the DHT once, as a browser does when it starts.
                stream::iter(&nodes[first..])
                    .for_each_concurrent(16, |n| async move {
                        let _ = n.client.discover().await;
                    })
                    .await;
                eprintln!(
                    "  {} peers up after {:.0} s",
                    nodes.len(),
                    started.elapsed().as_secs_f64()
                );
            }
            let alive = vec![true; nodes.len()];
            let up_after = started.elapsed().as_secs_f64();
            let settled = settle(&nodes, &alive, &mut rng).await.as_secs_f64();
            growth.push((nodes.len(), up_after, settled));
            let row = measure_lookups(&nodes, &alive, args.lookups, 0, &mut rng).await;
            eprintln!(
                "{} peers up after {up_after:.0} s, settled in {settled:.0} s: {row:?}",
                nodes.len(),
            );
            lookups.push(row);
        }

        // Store files the way the app does: one user, 3 copies of every sealed block.
        let (author, reader) = (&nodes[1], &nodes[2]);
        let session = account::sign_up_with_key_bits(&author.client, "sim", PASSWORD, 2048)
            .await
            .unwrap();
        let drive = files::Drive::new(
            author.client.clone(),
            std::sync::Arc::new(session),
            files::Settings::default(),
        )
        .donating(Donation {
            keypair: author.keypair.clone(),
            bytes: 64 * 1024 * MIB,
        });
        let mut ids = Vec::new();
        for f in 0..args.files {
            let bytes: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 + f) as u8).collect();
            let report = drive
                .upload(&format!("file-{f}.bin"), bytes.as_slice(), |_| {
                    ControlFlow::Continue(())
                })
                .await
                .unwrap();
            if report.file.copies < DEFAULT_REPLICAS as u32 {
                eprintln!("  file-{f}: {} copies of its blocks", report.file.copies);
            }
            ids.push(report.file.id);
        }
        eprintln!("{} files stored", ids.len());

        // Peers leave (cumulatively); the author, the reader and the bootstrap peer stay.
        let mut alive = vec![true; nodes.len()];
        let mut availability = Vec::new();
        for &percent in std::iter::once(&0).chain(&args.leave) {
            let keep = [0, 1, 2];
            let target_gone = nodes.len() * percent as usize / 100;
            while alive.iter().filter(|a| !**a).count() < target_gone {
                let i = (rng.next() as usize) % nodes.len();
                if alive[i] && !keep.contains(&i) {
                    alive[i] = false;
                    nodes[i].client.shutdown().await;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let log_in = account::log_in(&reader.client, "sim", PASSWORD)
                .await
                .map(std::sync::Arc::new);
            let index_record = reader
                .client
                .get_record(dht_key(RecordKind::FileIndex, &drive.session().account()))
                .await
                .is_ok_and(|r| !r.is_empty());
            let mut downloadable = 0;
            if let Ok(reader_session) = &log_in {
                let files = files::Drive::new(
                    reader.client.clone(),
                    reader_session.clone(),
                    files::Settings::default(),
                );
                for id in &ids {
                    let ok = files
                        .download(id, |_| ControlFlow::Continue(()))
                        .await
                        .map_err(|e| eprintln!("  download of file {id} failed: {e}"))
                        .is_ok();
                    downloadable += usize::from(ok);
                }
            }
            let lost = f64::from(percent) / 100.0;
            let object_survives = 1.0 - lost.powi(DEFAULT_REPLICAS as i32);
            let row = AvailabilityRow {
                left_percent: percent,
                peers_left: alive.iter().filter(|a| **a).count(),
                log_in: log_in.is_ok(),
                index_record,
                files_downloadable: downloadable,
                files: ids.len(),
                predicted_percent: 100.0 * object_survives.powi(3),
            };
            eprintln!("{row:?}");
            availability.push(row);
            lookups.push(measure_lookups(&nodes, &alive, args.lookups, percent, &mut rng).await);
        }

        println!("\nGrowing the network (newcomers join through a random earlier peer)");
        println!("| peers | all up after, s | settled after, s |");
        println!("|---:|---:|---:|");
        for (peers, up, settled) in &growth {
            println!("| {peers} | {up:.0} | {settled:.0} |");
        }
        println!("\nDHT lookups (Kademlia k = 20, alpha = 3), in-memory transport, one process");
        println!("| peers up | left % | requests p50 / p95 | failed requests (mean) | peers found (mean) | ms p50 / p95 | hops to closest p50 / p95 | rounds p50 / p95 | closest met |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &lookups {
            println!(
                "| {} | {} | {} / {} | {:.1} | {:.1} | {:.1} / {:.1} | {} / {} | {} / {} | {:.0} % |",
                r.peers,
                r.left_percent,
                r.requests_p50,
                r.requests_p95,
                r.failures_mean,
                r.found_mean,
                r.millis_p50,
                r.millis_p95,
                r.hops_p50,
                r.hops_p95,
                r.rounds_p50,
                r.rounds_p95,
                100.0 * r.found_closest
            );
        }
        println!("\nPlacement walks (confirming 6 peers for 3 copies) against full walks (20), same keys and peers");
        println!("| peers up | left % | requests p50 / p95, placement | requests p50 / p95, full | 3 closest found, placement | 3 closest found, full |");
        println!("|---:|---:|---:|---:|---:|---:|");
        for r in &lookups {
            println!(
                "| {} | {} | {} / {} | {} / {} | {:.0} % | {:.0} % |",
                r.peers,
                r.left_percent,
                r.placement_requests_p50,
                r.placement_requests_p95,
                r.requests_p50,
                r.requests_p95,
                100.0 * r.placement_exact,
                100.0 * r.full_exact
            );
        }
        println!(
        "\nAvailability after peers leave at once, no repair ({} files, 3 copies of each block)",
        ids.len()
    );
        println!(
            "| left % | peers up | log in | file index record | files downloadable | predicted |"
        );
        println!("|---:|---:|---|---:|---:|---:|");
        for r in &availability {
            println!(
                "| {} | {} | {} | {} | {} / {} ({:.0} %) | {:.0} % |",
                r.left_percent,
                r.peers_left,
                if r.log_in { "yes" } else { "no" },
                if r.index_record { "found" } else { "lost" },
                r.files_downloadable,
                r.files,
                100.0 * r.files_downloadable as f64 / r.files.max(1) as f64,
                r.predicted_percent
            );
        }
        let mut out = BTreeMap::new();
        out.insert("lookups", serde_json::to_value(&lookups).unwrap());
        out.insert("availability", serde_json::to_value(&availability).unwrap());
        let growth: Vec<_> = growth
            .iter()
            .map(|(peers, up, settled)| {
                serde_json::json!({ "peers": peers, "up_after_s": up, "settled_s": settled })
            })
            .collect();
        out.insert("growth", serde_json::Value::Array(growth));
        out.insert(
            "seconds",
            serde_json::to_value(started.elapsed().as_secs_f64()).unwrap(),
        );
        if let Some(dir) = args.out.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&args.out, serde_json::to_string_pretty(&out).unwrap()).unwrap();
        println!("JSON: {}", args.out.display());
    }
}
