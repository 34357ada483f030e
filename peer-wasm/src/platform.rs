//! Everything that differs between the browser and a native process: how the swarm reaches
//! other peers, and how tasks are spawned. The rest of the crate is the same on both.

use std::time::Duration;

use libp2p::{identity::Keypair, noise, yamux, Swarm, SwarmBuilder};

use crate::net::{Behaviour, NetError};

/// Connections with no open stream close after this long. The relay connection stays up
/// regardless, held by its reservation.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

fn setup_error(e: impl std::fmt::Display) -> NetError {
    NetError::Setup(e.to_string())
}

/// Builds the swarm for a browser tab: WebSocket to the relay, circuits through it.
#[cfg(target_arch = "wasm32")]
pub(crate) fn build_swarm(keypair: Keypair, agent: &str) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::{core::upgrade::Version, websocket_websys, Transport};

    Ok(SwarmBuilder::with_existing_identity(keypair)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(websocket_websys::Transport::default()
                .upgrade(Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
        })
        .map_err(setup_error)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(setup_error)?
        .with_behaviour(|key, relay_client| Behaviour::new(key, relay_client, agent))
        .map_err(setup_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build())
}

/// Builds the swarm for a native process (tests, simulations): TCP, plus circuits.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn build_swarm(keypair: Keypair, agent: &str) -> Result<Swarm<Behaviour>, NetError> {
    Ok(SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(setup_error)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(setup_error)?
        .with_behaviour(|key, relay_client| Behaviour::new(key, relay_client, agent))
        .map_err(setup_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build())
}

/// Runs a task in the background: on the page's event loop in the browser.
#[cfg(target_arch = "wasm32")]
pub(crate) fn spawn(task: impl std::future::Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(task);
}

/// Runs a task in the background: on the current tokio runtime natively.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    tokio::spawn(task);
}

/// Shared ownership across tasks: `Arc` natively (tasks may move between threads), `Rc` in the
/// browser (one thread; the IndexedDB handle is not `Send`).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type Shared<T> = std::sync::Arc<T>;
/// Shared ownership across tasks: `Rc` in the browser.
#[cfg(target_arch = "wasm32")]
pub(crate) type Shared<T> = std::rc::Rc<T>;
