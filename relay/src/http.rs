//! The HTTP side: the site from `www/`, `/api/relay` and `/health`.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    extract::State,
    http::{header, HeaderValue},
    routing::get,
    Json, Router,
};
use serde::Serialize;
use tokio::net::TcpListener;
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

use crate::{stats::Snapshot, Config, RelayError, Stats};

/// The page may run its own scripts and wasm, and talk to the relay over WebSocket; nothing else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     connect-src 'self' ws: wss:; style-src 'self'; img-src 'self' data:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Clone)]
struct AppState {
    stats: Arc<Stats>,
    ice_servers: Arc<Vec<String>>,
    peer_id: String,
    started: Instant,
}

/// What `/api/relay` returns: where the page reaches the relay over libp2p.
#[derive(Serialize)]
struct RelayInfo {
    peer_id: String,
    addrs: Vec<String>,
    /// For direct WebRTC between pages (`--ice-server`).
    ice_servers: Vec<String>,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    peer_id: String,
    uptime_secs: u64,
    #[serde(flatten)]
    counters: Snapshot,
}

pub(crate) struct Server {
    listener: TcpListener,
    router: Router,
}

impl Server {
    pub(crate) async fn bind(
        config: &Config,
        stats: Arc<Stats>,
        peer_id: String,
    ) -> Result<Self, RelayError> {
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| RelayError::Http {
                addr: config.http_addr,
                source,
            })?;
        let state = AppState {
            stats,
            ice_servers: Arc::new(config.ice_servers.clone()),
            peer_id,
            started: Instant::now(),
        };
        let header = |name, value: &'static str| {
            SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
        };
        let router = Router::new()
            .route("/api/relay", get(relay_info))
            .route("/health", get(health))
            .fallback_service(ServeDir::new(&config.www_dir))
            .with_state(state)
            .layer(header(
                header::CONTENT_SECURITY_POLICY,
                CONTENT_SECURITY_POLICY,
            ))
            .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .layer(header(header::REFERRER_POLICY, "no-referrer"))
            .layer(header(header::X_FRAME_OPTIONS, "DENY"))
            .layer(header(header::CACHE_CONTROL, "no-cache"));
        Ok(Self { listener, router })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub(crate) async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        tracing::info!(addr = %self.local_addr(), "HTTP listening");
        if let Err(e) = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("HTTP server failed: {e}");
        }
    }
}

async fn relay_info(State(state): State<AppState>) -> Json<RelayInfo> {
    Json(RelayInfo {
        peer_id: state.peer_id.clone(),
        addrs: state.stats.addrs(),
        ice_servers: state.ice_servers.to_vec(),
    })
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        peer_id: state.peer_id.clone(),
        uptime_secs: state.started.elapsed().as_secs(),
        counters: state.stats.snapshot(),
    })
}
