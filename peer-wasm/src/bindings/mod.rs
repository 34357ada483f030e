//! The JavaScript API of the peer: a thin layer over [`App`] (who is logged in, their files)
//! and [`crate::net::Client`] (the network), translating to and from JavaScript.
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

mod blobs;
mod this_browser;

use blobs::*;
use this_browser::*;

use crate::{
    account::{AccountError, AccountInfo, Session},
    app::{App, AppError, Settings},
    files::{self, FileError, ShareLink, Source},
    net::{self, Event},
    store::StorageInfo,
};

/// The types of what the API resolves and rejects with, generated from the Rust types
/// (`src/ts_types.rs`).
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = include_str!("../bindings.d.ts");

#[wasm_bindgen(start)]
fn on_load() {
    use tracing_subscriber::layer::SubscriberExt;
    console_error_panic_hook::set_once();
    let console = tracing_wasm::WASMLayer::new(
        tracing_wasm::WASMLayerConfigBuilder::new()
            .set_max_level(tracing::Level::DEBUG)
            // Not in the performance timeline: each event would add a mark and a measure that
            // the browser keeps for the tab's whole life.
            .set_report_logs_in_timings(false)
            .build(),
    );
    // The peer's own events at the page's level, its timings when asked; every other
    // crate's at INFO.
    let levels = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("jellyfish_peer", log_level("debug"))
        .with_target(crate::TIMING, log_level("timing"))
        .with_target("libp2p_kad", log_level("kad"));
    let subscriber = tracing_subscriber::registry().with(levels).with(console);
    // Only fails if a subscriber was set already: the first one stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// INFO, or DEBUG when the page's address asks for it (`?log=debug`: all the peer's debug
/// events, for anyone curious; `?log=timing`: its timings alone, for
/// `tests/bench/cluster.mjs --profile`, which must not flood the console it reads; `?log=kad`:
/// Kademlia's own debug events, for a lookup that waits on a peer).
fn log_level(asked: &str) -> tracing::Level {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    if search
        .split(['?', '&'])
        .any(|p| p.strip_prefix("log=") == Some(asked))
    {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    }
}

/// A running peer.
#[wasm_bindgen]
pub struct Peer {
    /// The peer and who is logged in on it (their keys never leave wasm memory).
    app: Rc<App>,
    events: Rc<Mutex<mpsc::Receiver<Event>>>,
    /// Whether the browser granted persistent storage.
    persisted: bool,
    /// The browser's storage quota, when it says.
    browser_quota: Option<f64>,
    /// The donation the page proposes on first use.
    suggested_donation: u64,
    /// What this tab's repairer did for the blocks it holds.
    repairs: crate::Shared<std::sync::Mutex<crate::holder::RepairLog>>,
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

/// Milliseconds this tab takes per RSA-PSS-SHA256 signature with a key of `bits` bits, over
/// `count` signatures of 128 bytes with the peer's own RustCrypto code (the key itself is
/// made by WebCrypto, as sign-up makes it): the benchmark's measure of what each block's
/// warrant costs an upload.
#[wasm_bindgen]
pub async fn measure_rsa_sign_ms(bits: usize, count: u32) -> Result<f64, JsValue> {
    let key = crate::crypto::fast::generate_rsa(bits)
        .await
        .map_err(js_error)?;
    let now = || js_sys::Date::now();
    let start = now();
    for i in 0..count.max(1) {
        let _ = key.sign(&[i as u8; 128]);
    }
    Ok((now() - start) / f64::from(count.max(1)))
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// An account failure as a JavaScript `Error` whose `code` is stable (see
/// [`AccountError::code`]): the page switches on the code, never on the message text.
fn account_error(e: AccountError) -> JsValue {
    let error: JsValue = JsError::new(&e.to_string()).into();
    let _ = js_sys::Reflect::set(&error, &"code".into(), &e.code().into());
    if let AccountError::Unreachable { heard, needed } = e {
        let _ = js_sys::Reflect::set(&error, &"heard".into(), &(heard as f64).into());
        let _ = js_sys::Reflect::set(&error, &"needed".into(), &(needed as f64).into());
    }
    error
}

/// A file failure as a JavaScript `Error` with a stable `code` (see [`FileError::code`]);
/// `over_quota` carries `size`, `used` and `quota` in bytes, for the page to word in its units.
fn file_error(e: FileError) -> JsValue {
    let error: JsValue = JsError::new(&e.to_string()).into();
    let _ = js_sys::Reflect::set(&error, &"code".into(), &e.code().into());
    let numbers: &[(&str, u64)] = match e {
        FileError::OverQuota { size, used, quota } => {
            &[("size", size), ("used", used), ("quota", quota)]
        }
        FileError::TooLarge { size, max } => &[("size", size), ("max", max)],
        _ => &[],
    };
    for (name, value) in numbers {
        let _ = js_sys::Reflect::set(&error, &(*name).into(), &(*value as f64).into());
    }
    error
}

/// An app failure: an account one keeps its `code`; "log in first" and storage failures are
/// plain errors.
fn app_error(e: AppError) -> JsValue {
    match e {
        AppError::Account(e) => account_error(e),
        other => js_error(other),
    }
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_error)
}

/// Starts this tab's peer: loads (or creates) its identity from IndexedDB and connects to two
/// of the relays at `relay_addrs` (as `/api/relay` lists them: `addrs`, then `fellows`).
/// `ice_servers` (STUN or TURN URLs, also from `/api/relay`) help direct connections through NATs.
/// `probes` (also from `/api/relay`): whether this network answers transport probes (benchmark
/// networks only). `repair_every_secs` (also from `/api/relay`, test networks only): check each
/// held block this often, in place of the shipped hourly schedule
/// ([`crate::repair::Settings::every`]).
#[wasm_bindgen]
pub async fn start(
    relay_addrs: Vec<String>,
    ice_servers: Option<Vec<String>>,
    probes: Option<bool>,
    repair_every_secs: Option<f64>,
) -> Result<Peer, JsValue> {
    let relays = net::relay_links::browser_dialable(&relay_addrs);
    if relays.is_empty() {
        return Err(js_error(
            "the relay announced no WebSocket address ending in /p2p/<id>; check its --listen",
        ));
    }
    let db = crate::identity_store::open().await.map_err(js_error)?;
    let keypair = crate::identity_store::load_or_create(&db)
        .await
        .map_err(js_error)?;
    // The DHT records this tab held before a reload come back; changes are kept from now on.
    // Without IndexedDB (private browsing) records are kept in memory only, as before.
    let persisted_records = match crate::record_journal::load(&db).await {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!("DHT records held before are not available: {e}");
            Vec::new()
        }
    };
    let (record_journal, journal) = futures::channel::mpsc::unbounded();
    wasm_bindgen_futures::spawn_local(crate::record_journal::keep(db, journal));
    // 1 s to a day; anything else (or nothing) is the shipped schedule.
    let test_schedule = repair_every_secs
        .filter(|secs| (1.0..=86_400.0).contains(secs))
        .map(std::time::Duration::from_secs_f64);
    let repair = test_schedule.map_or_else(crate::repair::Settings::default, |every| {
        crate::repair::Settings::every(every)
    });
    let tuning = net::Tuning {
        record_replication: test_schedule.unwrap_or(net::Tuning::default().record_replication),
        ..Default::default()
    };
    let config = net::Config {
        relays,
        tuning,
        record_journal: Some(record_journal),
        persisted_records,
        agent: crate::AGENT.to_owned(),
        // Other browsers reach this one directly over WebRTC, signalled through the relay.
        listen: vec![Multiaddr::empty().with(libp2p::multiaddr::Protocol::WebRTC)],
        direct: true,
        ice_servers: ice_servers.unwrap_or_default(),
        answer_probes: probes.unwrap_or(false),
        ..Default::default()
    };
    let (browser_quota, persisted) = storage_facts().await;
    let settings = Settings::default();
    let suggested_donation = settings.suggested_donation(browser_quota);
    // A tab donates only once the person agreed to an amount (`set_donation`); until then it
    // holds nothing new for others and pledges nothing (a profile from before this rule keeps
    // what it holds, but takes no more).
    let agreed = donation_agreed();
    let node = crate::node::start_with(keypair, config, 0, repair)
        .await
        .map_err(js_error)?;
    if !agreed {
        node.store.set_capacity(0).await.map_err(js_error)?;
    }
    let app = App::new(node.keypair, node.client, node.store, settings);
    // Uploads cut short by a closed tab are freed at the next log-in, from this journal.
    let app = match crate::identity_store::open().await {
        Ok(db) => app.with_journal(Rc::new(crate::files::UploadJournal::in_profile(db))),
        Err(e) => {
            tracing::warn!("no journal of unfinished uploads: {e}");
            app
        }
    };
    Ok(Peer {
        app: Rc::new(app),
        events: Rc::new(Mutex::new(node.events)),
        persisted,
        browser_quota,
        suggested_donation,
        repairs: node.repairs,
    })
}

#[wasm_bindgen]
impl Peer {
    /// This peer's id.
    #[wasm_bindgen(getter)]
    pub fn peer_id(&self) -> String {
        self.app.client().peer_id().to_string()
    }

    /// Copies of each block an upload asks for unless told otherwise: the page shows a file's
    /// copies against this, and divides donations by it.
    #[wasm_bindgen(getter)]
    pub fn replicas(&self) -> u32 {
        self.app.settings().files.replicas as u32
    }

    /// A snapshot of the peer's state.
    #[wasm_bindgen(unchecked_return_type = "Promise<Status>")]
    pub fn status(&self) -> js_sys::Promise {
        let client = self.app.client().clone();
        future_to_promise(async move { to_js(&client.status().await.map_err(js_error)?) })
    }

    /// What this tab's repairer did since the page loaded: blocks checked, copies made for
    /// blocks short of copies and their bytes, copies refused, blocks handed on or expired
    /// (the cluster benchmark reads repair traffic here).
    #[wasm_bindgen(unchecked_return_type = "RepairLog")]
    pub fn repairs(&self) -> Result<JsValue, JsValue> {
        let log = *self
            .repairs
            .lock()
            .map_err(|_| js_error("the repair log is unreadable"))?;
        to_js(&log)
    }

    /// The peers in the DHT routing table.
    #[wasm_bindgen(unchecked_return_type = "Promise<KnownPeer[]>")]
    pub fn peers(&self) -> js_sys::Promise {
        let client = self.app.client().clone();
        future_to_promise(async move { to_js(&client.peers().await.map_err(js_error)?) })
    }

    /// Looks for peers through the DHT; resolves to their ids.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn discover(&self) -> js_sys::Promise {
        let client = self.app.client().clone();
        future_to_promise(async move {
            let peers = client.discover().await.map_err(js_error)?;
            to_js(&peers.iter().map(ToString::to_string).collect::<Vec<_>>())
        })
    }

    /// Says hello to another peer by id and resolves to its answer.
    #[wasm_bindgen(unchecked_return_type = "Promise<HelloReply>")]
    pub fn hello(&self, peer_id: String) -> js_sys::Promise {
        let client = self.app.client().clone();
        future_to_promise(async move {
            let peer: PeerId = peer_id
                .parse()
                .map_err(|_| js_error(format!("{peer_id:?} is not a peer id")))?;
            to_js(&client.hello(peer).await.map_err(js_error)?)
        })
    }

    /// Creates an account and logs in to it. Rejects with an `Error` whose `code` says why
    /// (`weak_password` with advice in the message, `name_taken`, `network_unreachable` when
    /// too few peers answered to tell whether the name is free, ...); done only once other
    /// peers hold the account's records.
    #[wasm_bindgen(unchecked_return_type = "Promise<Account>")]
    pub fn sign_up(&self, username: String, password: String) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let new = app
                .sign_up(&username, &password)
                .await
                .map_err(account_error)?;
            to_js(&AccountInfo::remembering_key(&new))
        })
    }

    /// Signs up the first person on a network with no other peer yet: the page offers it only
    /// after an ordinary sign-up could not reach enough peers and the relay, which sees every
    /// tab, says this is the only one. The account's records stay in this tab (and its
    /// IndexedDB) and go out as soon as another peer appears; until then `account()` says
    /// `alone`, and closing this tab for good loses the account. Rejects with `name_taken`
    /// if this tab, or a peer that answers, holds the name.
    #[wasm_bindgen(unchecked_return_type = "Promise<Account>")]
    pub fn sign_up_alone(&self, username: String, password: String) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let new = app
                .sign_up_alone(&username, &password)
                .await
                .map_err(account_error)?;
            to_js(&AccountInfo {
                alone: Some(true),
                ..AccountInfo::remembering_key(&new)
            })
        })
    }

    /// Logs in from the records in the network. Rejects with an `Error` whose `code` is
    /// `wrong_password`, `unknown_user` (only when enough peers answered) or
    /// `network_unreachable` (too few answered within 30 s); nothing is kept after a failure.
    #[wasm_bindgen(unchecked_return_type = "Promise<Account>")]
    pub fn log_in(&self, username: String, password: String) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let opened = app
                .log_in(&username, &password)
                .await
                .map_err(account_error)?;
            to_js(&AccountInfo::remembering_key(&opened))
        })
    }

    /// Changes the password of the logged-in account (the current one confirms it): the
    /// account's keys rotate, and the file index and file keys are re-sealed under the new ones,
    /// so nothing written from now on opens with the old password.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn change_password(
        &self,
        current_password: String,
        new_password: String,
    ) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let rotated = app
                .change_password(&current_password, &new_password)
                .await
                .map_err(app_error)?;
            AccountInfo::remembering_key(&rotated);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Logs out: the account's keys are wiped from memory.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn log_out(&self) -> js_sys::Promise {
        self.app.log_out();
        js_sys::Promise::resolve(&JsValue::UNDEFINED)
    }

    /// The logged-in account, or `null`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Account | null>")]
    pub fn account(&self) -> js_sys::Promise {
        let info = match self.app.session() {
            Some(open) => to_js(&AccountInfo {
                alone: self.app.alone().then_some(true),
                ..AccountInfo::of(&open)
            }),
            None => Ok(JsValue::NULL),
        };
        match info {
            Ok(info) => js_sys::Promise::resolve(&info),
            Err(e) => js_sys::Promise::reject(&e),
        }
    }

    /// What this browser donates and holds for others.
    #[wasm_bindgen(unchecked_return_type = "Promise<Storage>")]
    pub fn storage(&self) -> js_sys::Promise {
        let (app, persisted, browser_quota, suggested) = (
            self.app.clone(),
            self.persisted,
            self.browser_quota,
            self.suggested_donation,
        );
        future_to_promise(async move {
            let store = app.store();
            let usage = store.usage().await.map_err(js_error)?;
            to_js(&StorageInfo {
                usage,
                browser_quota,
                persisted,
                agreed: donation_agreed(),
                suggested,
                write_refused: store.write_refused(),
            })
        })
    }

    /// Sets how many bytes this browser donates, as the person agreed (the first call is the
    /// consent: until then the tab donates nothing). What it holds already stays.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn set_donation(&self, bytes: f64) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            if !(bytes.is_finite() && bytes >= 0.0) {
                return Err(js_error("the donation is a number of bytes, 0 or more"));
            }
            app.set_donation(bytes as u64).await.map_err(app_error)?;
            if let Some(storage) = local_storage() {
                storage
                    .set_item(DONATION_AGREED, "1")
                    .map_err(|_| js_error("this browser cannot remember the donation"))?;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Uploads a `File` or `Blob` under `name`, `replicas` copies of each block (default:
    /// [`Peer::replicas`]). `on_progress(bytesDone, bytesTotal)` is called after each block.
    /// Aborting `signal` cancels: the promise rejects with "cancelled" and the blocks already
    /// placed are freed.
    #[wasm_bindgen(unchecked_return_type = "Promise<UploadReport>")]
    pub fn upload(
        &self,
        blob: web_sys::Blob,
        name: String,
        replicas: Option<u32>,
        on_progress: Option<js_sys::Function>,
        signal: Option<web_sys::AbortSignal>,
    ) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let mut drive = app.pledging_drive().await.map_err(app_error)?;
            if let Some(replicas) = replicas {
                drive = drive.replicating(replicas.max(1) as usize);
            }
            let total = JsValue::from_f64(blob.size());
            let progress = |done: u64| {
                if let Some(f) = &on_progress {
                    let _ = f.call2(&JsValue::NULL, &JsValue::from_f64(done as f64), &total);
                }
                go_on(signal.as_ref())
            };
            let report = drive
                .upload(&name, BlobSource(blob), progress)
                .await
                .map_err(file_error)?;
            to_js(&report)
        })
    }

    /// Audits the holders of the user's files: each listed holder of each file's manifest (a
    /// small file's, kept in the index until shared, has none) and of up to `blocks_per_file`
    /// (default 4) random blocks is asked to prove it still holds it, checked against the block's
    /// address, and so are the peers now nearest each block (where repair puts new copies). Each
    /// file's copy count in the index becomes the live copies found; `files_at_risk` counts files
    /// with a block down to one copy.
    #[wasm_bindgen(unchecked_return_type = "Promise<AuditReport>")]
    pub fn audit(&self, blocks_per_file: Option<u32>) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let mut drive = app.drive().map_err(app_error)?;
            if let Some(n) = blocks_per_file {
                drive = drive.auditing(n as usize);
            }
            to_js(&drive.audit().await.map_err(file_error)?)
        })
    }

    /// The logged-in user's storage use and quota (donations / copies per block).
    #[wasm_bindgen(unchecked_return_type = "Promise<Quota>")]
    pub fn quota(&self) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            to_js(&drive.quota().await.map_err(file_error)?)
        })
    }

    /// The logged-in user's files.
    #[wasm_bindgen(unchecked_return_type = "Promise<FileInfo[]>")]
    pub fn list_files(&self) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.drive().map_err(app_error)?;
            to_js(&drive.list().await.map_err(file_error)?)
        })
    }

    /// Downloads a file by id; resolves to a `Blob` of its bytes, every block checked.
    /// `on_progress(bytesDone)` is called after each block. Aborting `signal` cancels: the
    /// promise rejects with "cancelled".
    #[wasm_bindgen(unchecked_return_type = "Promise<Blob>")]
    pub fn download(
        &self,
        id: String,
        on_progress: Option<js_sys::Function>,
        signal: Option<web_sys::AbortSignal>,
    ) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.drive().map_err(app_error)?;
            let mut file = BlobDownload::new(on_progress, signal);
            drive
                .download(&id, |block| file.take(block))
                .await
                .map_err(file_error)?;
            Ok(file.finish()?.into())
        })
    }

    /// Makes a share link for file `id`, working until `expires_ms` (milliseconds since the
    /// Unix epoch) or until revoked; resolves to the token that follows `#share=` in the link's
    /// fragment (the page makes the URL: the fragment never reaches the relay).
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn share_link(&self, id: String, expires_ms: Option<f64>) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            let expires_ms = expires_ms.map(|ms| ms.max(0.0) as u64);
            let link = drive
                .share_link(&id, expires_ms)
                .await
                .map_err(file_error)?;
            Ok(link.to_token().into())
        })
    }

    /// Revokes every share link of file `id` by re-keying it: its blocks are re-sealed under
    /// a new key and the old ones freed. Resolves to the file as listed now (a new id).
    /// `on_progress(bytesDone, bytesTotal)` and `signal` as for [`Peer::upload`].
    #[wasm_bindgen(unchecked_return_type = "Promise<FileInfo>")]
    pub fn revoke_links(
        &self,
        id: String,
        on_progress: Option<js_sys::Function>,
        signal: Option<web_sys::AbortSignal>,
    ) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            let progress = rekey_progress(on_progress, signal);
            to_js(
                &drive
                    .revoke_links(&id, progress)
                    .await
                    .map_err(file_error)?,
            )
        })
    }

    /// Revokes the share links of every file whose links have all expired (the page asks
    /// right after each log-in, in the background); resolves to how many files were re-keyed.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn revoke_expired_links(&self) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            let revoked = drive.revoke_expired_links().await.map_err(file_error)?;
            Ok(JsValue::from_f64(revoked as f64))
        })
    }

    /// Shares file `id` with the user `username` (a letter sealed to their public key, in the
    /// DHT under their account: they need not be online). Resolves to the file as listed now.
    /// Rejects with `code` "unknown_user", "share_self", "bad_username", "share_limit",
    /// "network_unreachable" (too few peers heard to tell whether the user exists) or
    /// "letter_unconfirmed" (the file is shared, but no peer confirmed the user's letter: it
    /// goes again at the next log-in).
    #[wasm_bindgen(unchecked_return_type = "Promise<FileInfo>")]
    pub fn share_with(&self, id: String, username: String) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            to_js(&drive.share_with(&id, &username).await.map_err(file_error)?)
        })
    }

    /// Stops sharing file `id` with `username`: re-keys the file (what they were given opens
    /// nothing more; its links stop working too), and the other users it is shared with get
    /// its new key. Resolves to the file as listed now (a new id). `on_progress` and `signal`
    /// as for [`Peer::revoke_links`].
    #[wasm_bindgen(unchecked_return_type = "Promise<FileInfo>")]
    pub fn unshare_with(
        &self,
        id: String,
        username: String,
        on_progress: Option<js_sys::Function>,
        signal: Option<web_sys::AbortSignal>,
    ) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            let progress = rekey_progress(on_progress, signal);
            to_js(
                &drive
                    .unshare_with(&id, &username, progress)
                    .await
                    .map_err(file_error)?,
            )
        })
    }

    /// What other users share with the logged-in one ("Shared with me"): each file with its
    /// sharer and a share-link token that reads it ([`Peer::download_link`]); letters refused
    /// (forged, replayed, by a rotated key) are counted, never shown.
    #[wasm_bindgen(unchecked_return_type = "Promise<SharedWithMe>")]
    pub fn shared_with_me(&self) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            to_js(&drive.shared_with_me().await.map_err(file_error)?)
        })
    }

    /// Hides file `id` shared by `from` from "Shared with me", in every browser.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn hide_shared(&self, from: String, id: String) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            drive.hide_shared(&from, &id).await.map_err(file_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Sends every user a file is shared with their letter again (the page asks right after
    /// each log-in, in the background: letters are kept 90 days after they were last sent);
    /// resolves to how many were sent.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn send_all_letters(&self) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.pledging_drive().await.map_err(app_error)?;
            let sent = drive.send_all_letters().await.map_err(file_error)?;
            Ok(JsValue::from_f64(sent as f64))
        })
    }

    /// What a share link (a token, a fragment or a whole URL) names, read without asking the
    /// network: `{ name, size, expires_ms }`. Throws an `Error` with `code` "bad_link" or
    /// "link_expired".
    #[wasm_bindgen(unchecked_return_type = "LinkInfo")]
    pub fn read_link(&self, link: String) -> Result<JsValue, JsValue> {
        let link = ShareLink::from_token(&link).map_err(|e| file_error(e.into()))?;
        let now = js_sys::Date::now() as u64;
        to_js(
            &link
                .check_expiry(now)
                .map_err(|e| file_error(e.into()))?
                .info(),
        )
    }

    /// Downloads the file a share link names, with no account; resolves to a `Blob`, every
    /// block checked against its address. `on_progress(bytesDone)` and `signal` as for
    /// [`Peer::download`]. Rejects with `code` "link_gone" when the peers asked said the file
    /// is not there (revoked or deleted).
    #[wasm_bindgen(unchecked_return_type = "Promise<Blob>")]
    pub fn download_link(
        &self,
        link: String,
        on_progress: Option<js_sys::Function>,
        signal: Option<web_sys::AbortSignal>,
    ) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let link = ShareLink::from_token(&link).map_err(|e| file_error(e.into()))?;
            let mut file = BlobDownload::new(on_progress, signal);
            let settings = &app.settings().files;
            files::download_link(app.client(), settings, &link, |block| file.take(block))
                .await
                .map_err(file_error)?;
            Ok(file.finish()?.into())
        })
    }

    /// Deletes a file everywhere; resolves to the number of block copies freed.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn delete_file(&self, id: String) -> js_sys::Promise {
        let app = self.app.clone();
        future_to_promise(async move {
            let drive = app.drive().map_err(app_error)?;
            let freed = drive.delete(&id).await.map_err(file_error)?;
            Ok(JsValue::from_f64(freed as f64))
        })
    }

    /// Opens a connection to a multiaddr ending in `/p2p/<peer id>` (for example another
    /// libp2p implementation's `<relay>/p2p-circuit/webrtc/p2p/<id>`); resolves to the peer id.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn connect(&self, addr: String) -> js_sys::Promise {
        let client = self.app.client().clone();
        future_to_promise(async move {
            let addr: Multiaddr = addr.parse().map_err(js_error)?;
            let peer = client.connect(addr).await.map_err(js_error)?;
            Ok(peer.to_string().into())
        })
    }

    /// What this peer knows of another: its agent and protocols (identify), last ping round
    /// trip, link (direct or relayed) and open connections.
    #[wasm_bindgen(unchecked_return_type = "Promise<PeerInfo>")]
    pub fn peer_info(&self, peer_id: String) -> js_sys::Promise {
        let client = self.app.client().clone();
        future_to_promise(async move {
            let peer: PeerId = peer_id.parse().map_err(js_error)?;
            to_js(&client.peer_info(peer).await.map_err(js_error)?)
        })
    }

    /// Benchmark baseline: sends `bytes` to every one of `peer_ids` the way an upload places
    /// blocks, with none of Jellyfish's work (see `probe.rs`).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn probe_push(&self, peer_ids: Vec<String>, bytes: f64) -> js_sys::Promise {
        let client = self.app.client().clone();
        future_to_promise(async move {
            let peers = peer_ids
                .iter()
                .map(|p| p.parse::<PeerId>().map_err(js_error))
                .collect::<Result<Vec<_>, _>>()?;
            crate::probe::push(&client, &peers, bytes as u64)
                .await
                .map_err(js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Benchmark baseline: fetches `bytes` from `peer_ids` in turn, `in_flight` blocks at once,
    /// the way a download fetches blocks (see `probe.rs`).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn probe_pull(&self, peer_ids: Vec<String>, bytes: f64, in_flight: u32) -> js_sys::Promise {
        let client = self.app.client().clone();
        future_to_promise(async move {
            let peers = peer_ids
                .iter()
                .map(|p| p.parse::<PeerId>().map_err(js_error))
                .collect::<Result<Vec<_>, _>>()?;
            crate::probe::pull(&client, &peers, bytes as u64, in_flight as usize)
                .await
                .map_err(js_error)?;
            Ok(JsValue::UNDEFINED)
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
