//! # The Jellyfish peer
//!
//! One crate, two homes: compiled to WebAssembly it is the peer that runs in a browser tab;
//! compiled natively it is the same protocol logic, run by `cargo test` as a cluster of peers
//! in one process.
//!
//! The parts, from the wire up:
//! - [`protocol`]: Jellyfish's request-response messages, their version and size limits, and
//!   the codec that refuses anything else. Pure.
//! - [`backoff`]: when to try the relay again. Pure.
//! - `error_chain`: an error's message with its causes (libp2p and IndexedDB keep what
//!   happened there). Pure.
//! - [`crypto`]: AES-256-GCM, PBKDF2, RSA (PSS, OAEP), with a WebCrypto engine in the browser.
//! - [`record`]: signed DHT records and the checks every peer runs before storing one. Pure.
//! - [`key_history`]: how an account hands over from one key to the next when its password
//!   changes. Pure.
//! - [`proof`]: block addresses as Merkle roots, and proofs that a holder still holds a block,
//!   checked against the address alone. Pure.
//! - [`donor_audit`]: how a holder counts a pledge by the audits of its peer. Pure.
//! - [`receipt`]: holders' signed receipts for what they store, and what a co-holder learns
//!   from them about what other holders were given. Pure.
//! - [`pledge`]: what a browser donates for a user, signed, and the allowance holders derive.
//! - [`audit`]: challenging holders to prove they still hold what they were given.
//! - [`account`]: sign up, log in, change password, over a [`account::Directory`].
//! - [`net`]: the libp2p side: behaviour, event loop, and the [`net::Client`] handle the rest
//!   of the code (and the page) drives. Nothing else names the swarm.
//! - `platform`: what differs between browser and native (transports, spawning).
//! - `identity_store` (browser only): this profile's peer key in IndexedDB.
//! - `record_journal` (browser only): the DHT records this tab holds, kept in IndexedDB across
//!   reloads ([`net::journaled_store`] journals each change).
//! - `bindings` (browser only): the JavaScript API, a thin layer over [`net::Client`].
//!
//! Dependencies point one way: bindings -> account -> {net, record, crypto};
//! net -> {record, protocol, backoff, platform}.

pub mod account;
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
pub mod store;
pub mod webrtc;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod fuzz;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
#[cfg(target_arch = "wasm32")]
mod identity_store;
#[cfg(target_arch = "wasm32")]
mod record_journal;

/// The agent string this build announces to other peers.
pub const AGENT: &str = concat!("jellyfish/", env!("CARGO_PKG_VERSION"));
