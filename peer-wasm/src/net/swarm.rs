//! Builds the swarm: the transports that differ between a browser tab (WebSocket to the relay,
//! circuits, direct WebRTC) and a native process (TCP, in-process memory connections,
//! circuits), around the same [`Behaviour`] and [`Config`].

use std::time::Duration;

use libp2p::{identity::Keypair, noise, yamux, Swarm, SwarmBuilder};

use super::{Behaviour, Config, NetError};

/// Connections with no open stream close after this long (unless the config says otherwise).
/// The relay connection stays up regardless, held by its reservation.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

fn idle_timeout(config: &Config) -> Duration {
    config.idle_timeout.unwrap_or(IDLE_CONNECTION_TIMEOUT)
}

fn setup_error(e: impl std::fmt::Display) -> NetError {
    NetError::Setup(e.to_string())
}

/// Addresses of one peer a browser dials at once. Every address of another browser goes
/// through the relay (a circuit, or WebRTC signalled over a circuit), and libp2p's relay client
/// opens at most 10 circuits at a time over one relay connection, silently failing the rest
/// ("Dropping in-flight connect request because we are at capacity"). With libp2p's default of
/// 8 addresses at once, a newcomer's first DHT walks (3 peers in flight per walk, 2 or 3
/// addresses each) overflowed that on a network of 9 tabs, every dial failed, and the tab stayed
/// alone. One at a time keeps a walk within the relay's limit.
#[cfg(target_arch = "wasm32")]
const BROWSER_DIAL_CONCURRENCY: std::num::NonZeroU8 = std::num::NonZeroU8::MIN;

/// Builds the swarm for a browser tab: WebSocket to the relay, circuits through it, and direct
/// WebRTC to other browsers. The WebRTC transport comes first in the chain: the relay client
/// would otherwise take `/p2p-circuit/webrtc` addresses for plain circuits.
#[cfg(target_arch = "wasm32")]
pub(crate) fn build(keypair: Keypair, config: &Config) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::{
        core::{muxing::StreamMuxerBox, upgrade::Version},
        relay, websocket_websys, Transport,
    };

    let (relay_transport, relay_client) = relay::client::new(keypair.public().to_peer_id());
    let (signaling, control, incoming) = crate::webrtc::signaling::new();
    let webrtc_config = crate::webrtc::Config {
        ice_servers: config.ice_servers.clone(),
    };
    Ok(SwarmBuilder::with_existing_identity(keypair)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            let boxed =
                |e: noise::Error| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) };
            let webrtc = crate::webrtc::Transport::new(webrtc_config, control, incoming);
            let relayed = relay_transport
                .upgrade(Version::V1)
                .authenticate(noise::Config::new(key).map_err(boxed)?)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            let websocket = websocket_websys::Transport::default()
                .upgrade(Version::V1)
                .authenticate(noise::Config::new(key).map_err(boxed)?)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            Ok(webrtc
                .or_transport(relayed)
                .or_transport(websocket)
                .map(|output, _| {
                    use futures::future::Either::{Left, Right};
                    match output {
                        Left(Left(o) | Right(o)) | Right(o) => o,
                    }
                }))
        })
        .map_err(setup_error)?
        .with_behaviour(|key| Behaviour::new(key, relay_client, signaling, config))
        .map_err(setup_error)?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(idle_timeout(config))
                .with_dial_concurrency_factor(BROWSER_DIAL_CONCURRENCY)
        })
        .build())
}

/// Builds the swarm for a native process (tests, simulations): TCP, in-process memory
/// connections (`/memory/<n>`, for simulations of many peers without sockets), plus circuits.
/// No WebRTC: the signalling behaviour is there (the behaviour is the same everywhere) but
/// nothing uses it.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn build(keypair: Keypair, config: &Config) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::{
        core::{transport::MemoryTransport, upgrade::Version},
        Transport,
    };

    Ok(SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(setup_error)?
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(MemoryTransport::default()
                .upgrade(Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
        })
        .map_err(setup_error)?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(setup_error)?
        .with_behaviour(|key, relay_client| {
            let (signaling, _, _) = crate::webrtc::signaling::new();
            Behaviour::new(key, relay_client, signaling, config)
        })
        .map_err(setup_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout(config)))
        .build())
}
