//! The relay's settings, from flags or environment variables.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use libp2p::Multiaddr;

/// Jellyfish relay: serves the page, bootstraps the DHT and relays circuits. Stores no user data.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// Address of the HTTP server (the page, /api/relay, /health).
    #[arg(long, env = "JELLYFISH_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// libp2p listen addresses; browsers need a WebSocket one (`/ws`).
    #[arg(
        long = "listen",
        env = "JELLYFISH_LISTEN",
        value_delimiter = ',',
        default_value = "/ip4/127.0.0.1/tcp/8081/ws"
    )]
    pub listen: Vec<Multiaddr>,

    /// Addresses to announce instead of the listen addresses (behind NAT or a proxy).
    #[arg(
        long = "external-addr",
        env = "JELLYFISH_EXTERNAL_ADDR",
        value_delimiter = ','
    )]
    pub external_addrs: Vec<Multiaddr>,

    /// Fellow relays of the same network, by the libp2p WebSocket address browsers dial them
    /// at (`/ip4/192.0.2.7/tcp/8081/ws`, with or without `/p2p/<id>`). The relays join one DHT,
    /// and `/api/relay` lists the fellows after this relay's own addresses, so a tab keeps two
    /// relays and stays in the network when one goes down.
    #[arg(long = "fellow", env = "JELLYFISH_FELLOWS", value_delimiter = ',')]
    pub fellows: Vec<Multiaddr>,

    /// STUN (or TURN) server URLs the pages use to find direct paths between browsers behind
    /// NATs, such as `stun:stun.example.org:3478`. None is right on one machine or a LAN.
    #[arg(
        long = "ice-server",
        env = "JELLYFISH_ICE_SERVERS",
        value_delimiter = ','
    )]
    pub ice_servers: Vec<String>,

    /// Directory for the relay's identity key (nothing else is stored).
    #[arg(long, env = "JELLYFISH_DATA_DIR", default_value = "relay-data")]
    pub data_dir: PathBuf,

    /// Directory of the site to serve (assembled by scripts/build-web.sh).
    #[arg(long, env = "JELLYFISH_WWW_DIR", default_value = "www")]
    pub www_dir: PathBuf,

    /// Most circuit reservations held at once.
    #[arg(long, env = "JELLYFISH_MAX_RESERVATIONS", default_value_t = 1024)]
    pub max_reservations: usize,

    /// Most relayed circuits open at once.
    #[arg(long, env = "JELLYFISH_MAX_CIRCUITS", default_value_t = 256)]
    pub max_circuits: usize,

    /// Most relayed circuits open at once to or from one peer. A browser meets every peer it
    /// talks to here first (DHT walks touch many at once) before going direct, so this is
    /// above libp2p's 4.
    #[arg(long, env = "JELLYFISH_MAX_CIRCUITS_PER_PEER", default_value_t = 64)]
    pub max_circuits_per_peer: usize,

    /// Most bytes one relayed circuit may carry. Circuits are for signalling and the first DHT
    /// exchanges; blocks go over direct WebRTC. libp2p's default. Raise it to let browsers that
    /// find no direct path (strict firewalls, no STUN) still exchange blocks through the relay.
    #[arg(long, env = "JELLYFISH_MAX_CIRCUIT_BYTES", default_value_t = 128 * 1024)]
    pub max_circuit_bytes: u64,

    /// Longest a relayed circuit may stay open, in seconds (libp2p's default).
    #[arg(long, env = "JELLYFISH_MAX_CIRCUIT_SECS", default_value_t = 120)]
    pub max_circuit_secs: u64,

    /// Most circuits one peer may open per minute. A tab meets every peer of its first DHT
    /// walks through a circuit before going direct; libp2p's default (30 per 2 minutes) is too
    /// few for a tab joining a network of a few dozen peers.
    #[arg(
        long,
        env = "JELLYFISH_CIRCUITS_PER_PEER_PER_MINUTE",
        default_value_t = 120
    )]
    pub circuits_per_peer_per_minute: u32,

    /// Most circuits opened from one IP address per minute. libp2p's default of 60 counts every
    /// tab behind one address together: 12 tabs on one machine (or one office NAT) used it up
    /// within a minute of joining, and newcomers were then denied every circuit and stayed
    /// alone.
    #[arg(
        long,
        env = "JELLYFISH_CIRCUITS_PER_IP_PER_MINUTE",
        default_value_t = 1200
    )]
    pub circuits_per_ip_per_minute: u32,

    /// Most connections one IP address may hold at once. A tab holds one connection (and one
    /// reservation) here, so this is how many tabs one machine or NAT may have open; without
    /// it one address could take every reservation.
    #[arg(long, env = "JELLYFISH_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub connections_per_ip: u32,

    /// Most connections in all.
    #[arg(long, env = "JELLYFISH_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_connections: u32,

    /// New connections are refused while the relay's process uses more than this share of the
    /// machine's memory, in percent.
    #[arg(long, env = "JELLYFISH_MAX_MEMORY_PERCENT", default_value_t = 80.0)]
    pub max_memory_percent: f64,

    /// Let the pages answer transport probes (1 MiB of zeros for a 20-byte request): only on a
    /// network run for benchmarks. The pages read it from `/api/relay`.
    #[arg(long, env = "JELLYFISH_ALLOW_PROBES")]
    pub allow_probes: bool,

    /// How often the pages check each block they hold for repair, in seconds, and replicate
    /// their DHT records: only on a test network, where tabs come and go in seconds.
    /// Unset, pages run the shipped schedule (each block hourly). Pages read it from
    /// `/api/relay`.
    #[arg(long, env = "JELLYFISH_REPAIR_EVERY_SECS")]
    pub repair_every_secs: Option<u64>,
}

impl Config {
    /// A relayed circuit's time limit.
    pub fn max_circuit_duration(&self) -> Duration {
        Duration::from_secs(self.max_circuit_secs)
    }
}
