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
//! - [`net`]: the libp2p side: behaviour, event loop, and the [`net::Client`] handle the rest
//!   of the code (and the page) drives. Nothing else names the swarm.
//! - `platform`: what differs between browser and native (transports, spawning).
//! - `identity_store` (browser only): this profile's peer key in IndexedDB.
//! - `bindings` (browser only): the JavaScript API, a thin layer over [`net::Client`].
//!
//! Dependencies point one way: bindings -> net -> {protocol, backoff, platform}.

pub mod backoff;
pub mod net;
mod platform;
pub mod protocol;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
#[cfg(target_arch = "wasm32")]
mod identity_store;

/// The agent string this build announces to other peers.
pub const AGENT: &str = concat!("jellyfish/", env!("CARGO_PKG_VERSION"));
