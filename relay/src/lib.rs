//! # The Jellyfish relay
//!
//! A small native server that browsers need and nobody has to trust: it serves the page,
//! tells the page where to reach it over libp2p, lets browser peers reserve a circuit so others
//! can reach them through NAT, and bootstraps the DHT. It stores no user data: it refuses DHT
//! records, holds no blocks, and its data directory holds only its identity key.
//!
//! The parts:
//! - [`Config`]: the command line and environment.
//! - `identity`: the relay's key, kept in the data directory so its peer id survives restarts.
//! - `counting`: a socket wrapper that counts the bytes the relay moves.
//! - `network`: the libp2p swarm (WebSocket, noise, yamux, identify, ping, circuit relay v2,
//!   Kademlia) and its event loop.
//! - `per_ip`: a cap on the connections (so the reservations) one IP address holds.
//! - `http`: the site, `/api/relay` (where to reach us) and `/health` (counters).
//! - [`Stats`]: the counters both sides share.

mod config;
mod counting;
mod http;
mod identity;
mod network;
mod per_ip;
mod stats;

use std::net::SocketAddr;

pub use config::Config;
use libp2p::PeerId;
pub use stats::Stats;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The data directory or identity key could not be read or written.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The path involved.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The identity key file exists but is not a key.
    #[error("identity key {path} is corrupt: {reason}; move it away to make a new one")]
    BadKey {
        /// The key file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP address could not be bound.
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// libp2p could not be set up or could not listen.
    #[error("cannot start libp2p: {0}")]
    Network(String),
}

/// A relay whose sockets are bound, ready to [`run`](Relay::run).
pub struct Relay {
    http: http::Server,
    network: network::Network,
    stats: std::sync::Arc<Stats>,
}

impl Relay {
    /// Loads or creates the identity, binds HTTP and the libp2p listeners.
    pub async fn bind(config: Config) -> Result<Self, RelayError> {
        let stats = std::sync::Arc::new(Stats::default());
        let keypair = identity::load_or_create(&config.data_dir)?;
        let network = network::Network::new(keypair, &config, stats.clone())?;
        let http =
            http::Server::bind(&config, stats.clone(), network.peer_id().to_string()).await?;
        Ok(Self {
            http,
            network,
            stats,
        })
    }

    /// The address the HTTP server listens on (useful when asked for port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// The relay's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.network.peer_id()
    }

    /// The shared counters.
    pub fn stats(&self) -> std::sync::Arc<Stats> {
        self.stats.clone()
    }

    /// Serves until `shutdown` completes, then closes connections and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut http_stop = stop_rx.clone();
        let mut network_stop = stop_rx;
        let http = tokio::spawn(self.http.serve(async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        }));
        let network = tokio::spawn(self.network.run(async move {
            let _ = network_stop.wait_for(|stop| *stop).await;
        }));
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = tokio::join!(http, network);
        tracing::info!("stopped");
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
