//! The JavaScript API of the peer: a thin layer over [`crate::net::Client`].
//!
//! ```js
//! import init, { start } from "./pkg/jellyfish_peer.js";
//! await init();
//! const peer = await start((await (await fetch("/api/relay")).json()).addrs);
//! peer.peer_id; await peer.status(); await peer.peers(); await peer.discover();
//! await peer.hello(otherPeerId); await peer.next_event();
//! ```
//! Every method returns plain JSON-like objects; failures reject with an `Error` whose
//! message says what went wrong.

use futures::{channel::mpsc, lock::Mutex, StreamExt};
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::net::{self, Client, Event};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
export type RelayState =
  | { state: "none" } | { state: "connecting" } | { state: "connected" }
  | { state: "reconnecting"; retry_in_ms: number; attempts: number };
export interface Status {
  peer_id: string; relay: RelayState; reservation: boolean;
  listen_addrs: string[]; connected_peers: string[]; known_peers: number;
}
export interface KnownPeer { peer_id: string; addrs: string[]; connected: boolean }
export interface HelloReply { peer_id: string; agent: string; connected_peers: number }
export type PeerEvent = { type: string; [field: string]: unknown };
"#;

#[wasm_bindgen(start)]
fn on_load() {
    console_error_panic_hook::set_once();
    tracing_wasm::set_as_global_default_with_config(
        tracing_wasm::WASMLayerConfigBuilder::new()
            .set_max_level(tracing::Level::INFO)
            .build(),
    );
}

/// A running peer.
#[wasm_bindgen]
pub struct Peer {
    client: Client,
    events: Rc<Mutex<mpsc::Receiver<Event>>>,
}

/// Picks the relay address a browser can dial: a WebSocket one ending in `/p2p/<id>`.
pub(crate) fn pick_relay_addr(addrs: &[String]) -> Option<Multiaddr> {
    addrs
        .iter()
        .filter_map(|a| a.parse::<Multiaddr>().ok())
        .find(|a| {
            let is_ws = a.iter().any(|p| {
                matches!(
                    p,
                    libp2p::multiaddr::Protocol::Ws(_) | libp2p::multiaddr::Protocol::Wss(_)
                )
            });
            is_ws && net::peer_id_of(a).is_ok()
        })
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_error)
}

/// Starts this tab's peer: loads (or creates) its identity from IndexedDB and connects to the
/// relay at one of `relay_addrs` (as `/api/relay` lists them).
#[wasm_bindgen]
pub async fn start(relay_addrs: Vec<String>) -> Result<Peer, JsValue> {
    let relay = pick_relay_addr(&relay_addrs).ok_or_else(|| {
        js_error("the relay announced no WebSocket address ending in /p2p/<id>; check its --listen")
    })?;
    let db = crate::identity_store::open().await.map_err(js_error)?;
    let keypair = crate::identity_store::load_or_create(&db)
        .await
        .map_err(js_error)?;
    let config = net::Config {
        relay: Some(relay),
        agent: crate::AGENT.to_owned(),
        ..Default::default()
    };
    let (client, events) = net::start(keypair, config).map_err(js_error)?;
    Ok(Peer {
        client,
        events: Rc::new(Mutex::new(events)),
    })
}

#[wasm_bindgen]
impl Peer {
    /// This peer's id.
    #[wasm_bindgen(getter)]
    pub fn peer_id(&self) -> String {
        self.client.peer_id().to_string()
    }

    /// A snapshot of the peer's state.
    #[wasm_bindgen(unchecked_return_type = "Promise<Status>")]
    pub fn status(&self) -> js_sys::Promise {
        let client = self.client.clone();
        future_to_promise(async move { to_js(&client.status().await.map_err(js_error)?) })
    }

    /// The peers in the DHT routing table.
    #[wasm_bindgen(unchecked_return_type = "Promise<KnownPeer[]>")]
    pub fn peers(&self) -> js_sys::Promise {
        let client = self.client.clone();
        future_to_promise(async move { to_js(&client.peers().await.map_err(js_error)?) })
    }

    /// Looks for peers through the DHT; resolves to their ids.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn discover(&self) -> js_sys::Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let peers = client.discover().await.map_err(js_error)?;
            to_js(&peers.iter().map(ToString::to_string).collect::<Vec<_>>())
        })
    }

    /// Says hello to another peer by id and resolves to its answer.
    #[wasm_bindgen(unchecked_return_type = "Promise<HelloReply>")]
    pub fn hello(&self, peer_id: String) -> js_sys::Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let peer: PeerId = peer_id
                .parse()
                .map_err(|_| js_error(format!("{peer_id:?} is not a peer id")))?;
            to_js(&client.hello(peer).await.map_err(js_error)?)
        })
    }

    /// Resolves to the next thing that happens, or `null` once the peer has stopped.
    #[wasm_bindgen(unchecked_return_type = "Promise<PeerEvent | null>")]
    pub fn next_event(&self) -> js_sys::Promise {
        let events = self.events.clone();
        future_to_promise(async move {
            match events.lock().await.next().await {
                Some(event) => to_js(&event),
                None => Ok(JsValue::NULL),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    #[wasm_bindgen_test]
    fn picks_the_websocket_address_with_a_peer_id() {
        let id = PeerId::random();
        let addrs = vec![
            "not an address".to_owned(),
            format!("/ip4/127.0.0.1/tcp/1/p2p/{id}"),
            "/ip4/127.0.0.1/tcp/2/ws".to_owned(),
            format!("/ip4/127.0.0.1/tcp/3/ws/p2p/{id}"),
        ];
        assert_eq!(
            pick_relay_addr(&addrs).map(|a| a.to_string()),
            Some(format!("/ip4/127.0.0.1/tcp/3/ws/p2p/{id}"))
        );
        assert!(pick_relay_addr(&addrs[..3]).is_none());
    }
}
