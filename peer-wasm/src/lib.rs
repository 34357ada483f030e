//! # The Jellyfish peer
//!
//! One crate, two homes: compiled to WebAssembly it is the peer that runs in a browser tab;
//! compiled natively it is the same protocol logic, run by `cargo test` as a cluster of peers
//! in one process.
//!
//! The parts, from the wire up (every module of the crate is here; "pure" means no I/O, and
//! such a module is tested natively on its own):
//!
//! **Wire and crypto**
//! - [`protocol`]: Jellyfish's request-response messages, their version and size limits, and
//!   the codec that refuses anything else; protocol names come from `jellyfish_protocols`,
//!   shared with the relay. Pure.
//! - [`crypto`]: AES-256-GCM, PBKDF2, RSA (PSS, OAEP), with a WebCrypto engine in the browser.
//! - [`record`]: signed DHT records and the checks every peer runs before storing one. Pure.
//! - [`key_history`]: how an account hands over from one key to the next when its password
//!   changes. Pure.
//! - [`backoff`]: when to try the relay again. Pure.
//! - `error_chain`: an error's message with its causes (libp2p and IndexedDB keep what
//!   happened there). Pure.
//!
//! **Storage protocol**
//! - [`block`]: how a file becomes sealed, content-addressed blocks, and back. Pure.
//! - [`proof`]: block addresses as Merkle roots, and proofs that a holder still holds a block,
//!   checked against the address alone. Pure.
//! - [`pledge`]: what a browser donates for a user, signed, and the allowance holders derive.
//! - [`receipt`]: holders' signed receipts for what they store, and what a co-holder learns
//!   from them about what other holders were given. Pure.
//! - [`donor_audit`]: how a holder counts a pledge by the audits of its peer. Pure.
//! - [`store`]: the blocks this peer holds for others (IndexedDB in the browser, memory
//!   natively), within the donated space and each owner's allowance.
//! - [`warrant`]: an owner's signed word that a block may be stored, and at how many copies;
//!   kept beside the block so holders can forward it. Pure.
//! - [`repair`]: self-healing storage, decided: what a holder does with a block from what the
//!   peers nearest it prove they hold (copy it on, wait, hand it on). Pure.
//! - [`holder`]: answers other peers' block requests from the store, audits donors, and
//!   repairs what it holds ([`holder::Repairer`]).
//! - [`audit`]: challenging holders to prove they still hold what they were given.
//!
//! **What a user does**
//! - [`account`]: sign up, log in, change password, over a [`account::Directory`] (the DHT,
//!   through [`net::Client`]); passwords are scored by the `jellyfish-password` crate, linked
//!   natively and a wasm module of its own in the browser (`js/password.js` asks it).
//! - [`files`]: a user's [`files::Drive`]: upload, list, download, delete, audit, share (by
//!   link, or with another user by a letter in the DHT: "Shared with me"); typed
//!   failures down to each peer asked ([`files::Attempts`]); its tuning in [`files::Settings`].
//!   It reaches the network through [`net::Network`] ([`net::Client`], or in its tests an
//!   in-memory network of real holders).
//! - [`app`]: the peer as the page drives it: who is logged in, their drive, this browser's
//!   donation ([`app::App`], tuned by [`app::Settings`]); `cargo test` drives it as the page
//!   does.
//!
//! **The network and the peer**
//! - [`net`]: the libp2p side: swarm construction, behaviour, the event loop and its state
//!   machines, and the [`net::Client`] handle the rest of the code (and the page) drives.
//!   Nothing else names the swarm.
//! - [`webrtc`]: the browser-to-browser `/webrtc` transport (signalling over circuits, data
//!   channels as streams).
//! - [`node`]: a whole peer: the network plus the holder serving its donated storage.
//! - [`probe`]: transport probes, the benchmarks' baseline for uploads and downloads.
//! - `platform`: spawning and sharing tasks (and `MaybeSend`: `Send` natively only), the one
//!   thing besides transports that differs between browser and native. Depends on nothing else
//!   here.
//!
//! **Browser only**
//! - `identity_store`: this profile's peer key in IndexedDB.
//! - `record_journal`: the DHT records this tab holds, kept in IndexedDB across reloads
//!   ([`net::journaled_store`] journals each change).
//! - `bindings`: the JavaScript API, a thin layer over [`node`] and [`app`]; account and file
//!   failures reject with an `Error` carrying a stable `code`.
//!
//! **Tests only**: `fuzz`, every decoder of network bytes fed mutated input; `ts_types`, the
//! page's TypeScript types (`src/bindings.d.ts`) generated from the Rust types.
//!
//! Dependencies point one way (no import circles): bindings -> app -> files -> account ->
//! net -> {record, protocol, webrtc, backoff, platform}; files -> {block, proof, pledge,
//! receipt, audit}; app -> store; node -> {net, holder -> store}.

pub mod account;
pub mod app;
pub mod audit;
pub mod backoff;
pub mod block;
pub mod crypto;
pub mod donor_audit;
mod error_chain;
pub mod files;
pub mod holder;
pub mod key_history;
pub mod net;
pub mod node;
mod platform;
pub mod pledge;
pub mod probe;
pub mod proof;
pub mod protocol;
pub mod receipt;
pub mod record;
pub mod repair;
pub mod store;
pub mod warrant;
pub mod webrtc;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod fuzz;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod ts_types;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
#[cfg(target_arch = "wasm32")]
mod identity_store;
#[cfg(target_arch = "wasm32")]
mod record_journal;

pub use platform::Shared;

/// The tracing target of the peer's timing events (each block's read, seal, signature, walk
/// and store; each stored block's checks and write; each upload's phases), at DEBUG: a page
/// opened with `?log=timing` logs them, `tests/bench/cluster.mjs --profile` reads them.
pub const TIMING: &str = "jellyfish_timing";

/// The agent string this build announces to other peers.
pub const AGENT: &str = concat!("jellyfish/", env!("CARGO_PKG_VERSION"));
