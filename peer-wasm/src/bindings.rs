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

use crate::{
    account::{self, Session},
    net::{self, Client, Event},
};

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
export interface PasswordStrength {
  score: number; acceptable: boolean; warning: string | null;
  suggestions: string[]; crack_time: string;
}
export interface Account { username: string }
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
    /// The logged-in user's keys; `None` when logged out. Never leaves wasm memory.
    session: Rc<Mutex<Option<Session>>>,
}

/// How strong a password is, and what would make it stronger (for the sign-up form's meter).
#[wasm_bindgen(unchecked_return_type = "PasswordStrength")]
pub fn password_strength(password: &str, username: &str) -> Result<JsValue, JsValue> {
    to_js(&account::password_strength(password, username))
}

/// Milliseconds this tab takes to generate one RSA key of `bits` bits with the peer's own
/// RustCrypto code: the benchmark's baseline for what sign-up costs.
#[wasm_bindgen]
pub fn measure_rsa_keygen_ms(bits: usize) -> Result<f64, JsValue> {
    let now = || js_sys::Date::now();
    let start = now();
    crate::crypto::rsa_keys::PrivateKey::generate_bits(bits).map_err(js_error)?;
    Ok(now() - start)
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

/// What the page may know of an account: never a key.
#[derive(Serialize)]
struct AccountInfo {
    username: String,
}

impl AccountInfo {
    fn of(session: &Session) -> Self {
        Self {
            username: session.username().to_owned(),
        }
    }
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
        session: Rc::new(Mutex::new(None)),
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

    /// Creates an account and logs in to it. Rejects with a message saying why otherwise
    /// (weak password and how to improve it, name taken, network not reachable).
    #[wasm_bindgen(unchecked_return_type = "Promise<Account>")]
    pub fn sign_up(&self, username: String, password: String) -> js_sys::Promise {
        let (client, session) = (self.client.clone(), self.session.clone());
        future_to_promise(async move {
            let mut slot = session.lock().await;
            let new = account::sign_up(&client, &username, &password)
                .await
                .map_err(js_error)?;
            let info = AccountInfo::of(&new);
            *slot = Some(new);
            to_js(&info)
        })
    }

    /// Logs in from the records in the network. "wrong password" and "no account has this
    /// username" are distinct errors; nothing is kept after a failure.
    #[wasm_bindgen(unchecked_return_type = "Promise<Account>")]
    pub fn log_in(&self, username: String, password: String) -> js_sys::Promise {
        let (client, session) = (self.client.clone(), self.session.clone());
        future_to_promise(async move {
            let mut slot = session.lock().await;
            *slot = None;
            let opened = account::log_in(&client, &username, &password)
                .await
                .map_err(js_error)?;
            let info = AccountInfo::of(&opened);
            *slot = Some(opened);
            to_js(&info)
        })
    }

    /// Changes the password of the logged-in account (the current one confirms it).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn change_password(
        &self,
        current_password: String,
        new_password: String,
    ) -> js_sys::Promise {
        let (client, session) = (self.client.clone(), self.session.clone());
        future_to_promise(async move {
            let mut slot = session.lock().await;
            let open = slot.as_mut().ok_or_else(|| js_error("log in first"))?;
            account::change_password(&client, open, &current_password, &new_password)
                .await
                .map_err(js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Logs out: the account's keys are wiped from memory.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn log_out(&self) -> js_sys::Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            session.lock().await.take();
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The logged-in account, or `null`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Account | null>")]
    pub fn account(&self) -> js_sys::Promise {
        let session = self.session.clone();
        future_to_promise(async move {
            match session.lock().await.as_ref() {
                Some(open) => to_js(&AccountInfo::of(open)),
                None => Ok(JsValue::NULL),
            }
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
