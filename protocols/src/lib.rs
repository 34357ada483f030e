//! The names of the libp2p protocols Jellyfish speaks, in one place: the peer (browser tabs and
//! native peers) and the relay both build their behaviours from these, so the two can never
//! drift apart into two DHTs. Plain strings, no dependencies: each side wraps them in its own
//! `StreamProtocol` constants.
//!
//! Changing a name splits the network: old and new peers no longer hear each other. Bump the
//! version part only with a plan for the peers already out there.

#![no_std]

/// Kademlia: Jellyfish's own DHT, apart from any public one. Tabs and relays alike.
pub const KAD: &str = "/jellyfish/kad/1.0.0";

/// Jellyfish's request-response protocol between peers (blocks, audits, receipts, hello).
/// Relays do not speak it: that is how a tab tells a relay from a peer that can hold blocks.
pub const RPC: &str = "/jellyfish/rpc/1";

/// The identify protocol version Jellyfish peers and relays announce.
pub const IDENTIFY: &str = "/jellyfish/id/1";

/// libp2p WebRTC's signalling protocol (private-to-private), spoken over relayed circuits.
pub const WEBRTC_SIGNALING: &str = "/webrtc-signaling/0.0.1";
