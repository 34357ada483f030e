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

/// The page may run its own scripts and wasm, and talk to this relay and its fellows over
/// WebSocket; nothing else. `{connect}` becomes the relays' WebSocket addresses
/// ([`content_security_policy`]): a modified or injected script cannot send what it reads to
/// another host. (WebRTC between tabs is not governed by `connect-src`; its peers are found through
/// this relay.) `blob:` images: a shared picture is shown from the bytes the tab fetched and
/// checked.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     connect-src 'self'{connect}; style-src 'self'; img-src 'self' data: blob:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy with `connect-src` limited to the relay's announced WebSocket addresses
/// (multiaddrs such as `/ip4/127.0.0.1/tcp/9090/ws/p2p/...` become `ws://127.0.0.1:9090`).
/// Addresses that are not WebSocket, or not a plain IP or DNS host, are left out.
pub(crate) fn content_security_policy(addrs: &[String]) -> String {
    let mut sources: Vec<String> = addrs.iter().filter_map(|a| websocket_url(a)).collect();
    sources.sort();
    sources.dedup();
    let connect: String = sources.iter().map(|s| format!(" {s}")).collect();
    CONTENT_SECURITY_POLICY.replace("{connect}", &connect)
}

fn websocket_url(multiaddr: &str) -> Option<String> {
    let parts: Vec<&str> = multiaddr.split('/').collect();
    let (host, rest) = match parts.get(1..3)? {
        ["ip4", ip] => (ip.to_string(), &parts[3..]),
        ["ip6", ip] => (format!("[{ip}]"), &parts[3..]),
        ["dns" | "dns4" | "dns6", name] => (name.to_string(), &parts[3..]),
        _ => return None,
    };
    let ok_host = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "[]:.-".contains(c));
    let (port, scheme) = match rest {
        ["tcp", port, "ws", ..] => (*port, "ws"),
        ["tcp", port, "wss", ..] | ["tcp", port, "tls", "ws", ..] => (*port, "wss"),
        _ => return None,
    };
    let port: u16 = port.parse().ok()?;
    ok_host.then(|| format!("{scheme}://{host}:{port}"))
}

#[derive(Clone)]
struct AppState {
    stats: Arc<Stats>,
    ice_servers: Arc<Vec<String>>,
    probes: bool,
    repair_every_secs: Option<u64>,
    peer_id: String,
    started: Instant,
}

/// What `/api/relay` returns: where the page reaches the relay over libp2p.
#[derive(Serialize)]
struct RelayInfo {
    peer_id: String,
    addrs: Vec<String>,
    /// The fellow relays of this network (`--fellow`), each ending in `/p2p/<id>`: a page keeps
    /// two relays, so it stays in the network when one goes down.
    fellows: Vec<String>,
    /// For direct WebRTC between pages (`--ice-server`).
    ice_servers: Vec<String>,
    /// Whether pages answer transport probes (`--allow-probes`, benchmark networks only).
    probes: bool,
    /// How often pages check each block they hold (`--repair-every-secs`, test networks
    /// only); absent: the shipped schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    repair_every_secs: Option<u64>,
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
            stats: stats.clone(),
            ice_servers: Arc::new(config.ice_servers.clone()),
            probes: config.allow_probes,
            repair_every_secs: config.repair_every_secs,
            peer_id,
            started: Instant::now(),
        };
        let header = |name, value: &'static str| {
            SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
        };
        // The site's files as scripts/build-web.sh left them, with their brotli and gzip
        // copies (written once at build time, at the highest settings) for browsers that
        // accept them: the wasm module is about a quarter of its size in brotli.
        let site = ServeDir::new(&config.www_dir)
            .precompressed_br()
            .precompressed_gzip();
        let router = Router::new()
            .route("/api/relay", get(relay_info))
            .route("/health", get(health))
            .fallback_service(site)
            .with_state(state)
            .layer(axum::middleware::map_response_with_state(
                stats,
                with_content_security_policy,
            ))
            .layer(axum::middleware::from_fn(with_cache_policy))
            .layer(axum::middleware::from_fn(log_request))
            .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .layer(header(header::REFERRER_POLICY, "no-referrer"))
            .layer(header(header::X_FRAME_OPTIONS, "DENY"));
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

/// Sets the policy from the addresses the relay and its fellows announce now (they are known
/// once the libp2p listeners are up and the fellows were reached, and may change).
async fn with_content_security_policy(
    State(stats): State<Arc<Stats>>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let mut relays = stats.addrs();
    relays.extend(stats.fellows());
    if let Ok(value) = HeaderValue::from_str(&content_security_policy(&relays)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Logs each request's method and target (path and query: all a browser sends; a share
/// link's fragment never reaches here, and the e2e test of sharing reads this log to show it).
/// At debug level, under the target `jellyfish_relay::http`.
async fn log_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    tracing::debug!(%method, %uri, status = response.status().as_u16(), "HTTP request");
    response
}

/// How long browsers keep what they fetched: a file in a content-hashed folder
/// ([`is_content_hashed`]) for a year without asking again (a new build is a new name);
/// anything else only after asking whether it changed (`no-cache`), so a new page, which names
/// the new folder, is seen at once. Either way the answer depends on `Accept-Encoding`.
async fn with_cache_policy(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let hashed = is_content_hashed(request.uri().path());
    let mut response = next.run(request).await;
    let keep = if hashed && response.status().is_success() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(keep));
    if !headers.contains_key(header::VARY) {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether `path` lies in a folder named by its content's hash, as scripts/build-web.sh names
/// the wasm module's: `/pkg-` and 16 lowercase hex digits.
fn is_content_hashed(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/pkg-") else {
        return false;
    };
    let (hash, file) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    hash.len() == 16
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && file.len() > 1
}

async fn relay_info(State(state): State<AppState>) -> Json<RelayInfo> {
    Json(RelayInfo {
        peer_id: state.peer_id.clone(),
        addrs: state.stats.addrs(),
        fellows: state.stats.fellows(),
        ice_servers: state.ice_servers.to_vec(),
        probes: state.probes,
        repair_every_secs: state.repair_every_secs,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_in_a_content_hashed_folder_are_kept_for_good() {
        assert!(is_content_hashed(
            "/pkg-0123456789abcdef/jellyfish_peer_bg.wasm"
        ));
        assert!(is_content_hashed("/pkg-0123456789abcdef/snippets/a/b.js"));
        for path in [
            "/",
            "/index.html",
            "/app.js",
            "/pkg/jellyfish_peer.js",
            "/pkg-0123456789abcdef/",
            "/pkg-0123456789abcdef",
            "/pkg-0123456789ABCDEF/x.js",
            "/pkg-0123456789abcde/x.js",
            "/pkg-0123456789abcdef0/x.js",
            "/ui/pkg-0123456789abcdef/x.js",
        ] {
            assert!(!is_content_hashed(path), "{path}");
        }
    }

    #[test]
    fn connect_src_names_only_the_relays_websocket_addresses() {
        let addrs = [
            "/ip4/127.0.0.1/tcp/9090/ws/p2p/12D3KooW".to_string(),
            "/ip4/10.0.0.5/tcp/9090/ws/p2p/12D3KooW".to_string(),
            "/ip6/::1/tcp/9091/ws/p2p/12D3KooW".to_string(),
            "/dns4/relay.example.org/tcp/443/tls/ws/p2p/12D3KooW".to_string(),
            "/ip4/127.0.0.1/tcp/9092/p2p/12D3KooW".to_string(),
            "/ip4/127.0.0.1/udp/9093/webrtc-direct/p2p/12D3KooW".to_string(),
            "/dns4/evil.org;script-src *;/tcp/1/ws".to_string(),
            "garbage".to_string(),
        ];
        let policy = content_security_policy(&addrs);
        assert!(
            policy.contains(
                "connect-src 'self' ws://10.0.0.5:9090 ws://127.0.0.1:9090 ws://[::1]:9091 \
                 wss://relay.example.org:443; style-src"
            ),
            "{policy}"
        );
        assert!(!policy.contains("evil"), "{policy}");
        assert!(!policy.contains("ws: "), "{policy}");
        let none = content_security_policy(&[]);
        assert!(none.contains("connect-src 'self'; style-src"), "{none}");
    }
}
