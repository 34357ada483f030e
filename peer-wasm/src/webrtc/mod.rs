//! Browser-to-browser WebRTC, as the libp2p spec describes it (`webrtc/webrtc.md`,
//! "private-to-private"): two peers that reach each other through a circuit relay exchange an
//! SDP offer, an answer and ICE candidates over a `/webrtc-signaling/0.0.1` stream on that
//! relayed connection, then talk over an `RTCPeerConnection`, one data channel per libp2p
//! stream. There is no Noise handshake: the SDPs carry the DTLS certificate fingerprints over the
//! relayed connection, which Noise already authenticated, so the WebRTC connection's peer id is
//! the relayed connection's.
//!
//! Addresses: a peer listening through relay R is dialable at
//! `<R's address>/p2p/R/p2p-circuit/webrtc/p2p/<peer>`; the same address without `/webrtc` is
//! its relayed address, where signalling happens.
//!
//! The parts:
//! - [`proto`]: the signalling message and the data-channel frame, and their length-prefixed
//!   encodings. Pure.
//! - [`stream_state`]: the half-close state machine of one stream (FIN, FIN_ACK,
//!   STOP_SENDING, RESET). Pure.
//! - [`reuse`]: between Jellyfish peers, a data channel carries one stream after another
//!   instead of one and closing (the spec's way, kept toward everyone else). Pure.
//! - [`signaling`]: a `NetworkBehaviour` that opens and accepts signalling streams on relayed
//!   connections for the transport. Builds natively too.
//! - `browser` (wasm only): the data-channel stream, the connection (a `StreamMuxer`), the
//!   offer/answer/ICE exchange, and the libp2p `Transport`.

pub mod proto;
pub mod reuse;
pub mod signaling;
pub mod stream_state;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
pub use browser::{Config, Transport};

use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};

/// Bytes this process sent and received over WebRTC data channels, framing included: what a
/// tab put on the network directly, for the benchmarks' bytes-per-stored-byte figure.
static SENT: AtomicU64 = AtomicU64::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// Bytes sent and received over WebRTC data channels so far.
pub fn traffic() -> (u64, u64) {
    (
        SENT.load(Ordering::Relaxed),
        RECEIVED.load(Ordering::Relaxed),
    )
}

/// Data channels opened (by either side) and streams carried over them, so far.
static CHANNELS: AtomicU64 = AtomicU64::new(0);
static STREAMS: AtomicU64 = AtomicU64::new(0);
/// Messages sent on data channels so far: each is one `send` call, a fixed cost in the
/// browser whatever its size, so the benchmarks count them per stream.
static MESSAGES: AtomicU64 = AtomicU64::new(0);

/// Data channels opened and streams carried so far: the benchmarks' check that channels are
/// reused ([`reuse`]).
pub fn channel_counts() -> (u64, u64) {
    (
        CHANNELS.load(Ordering::Relaxed),
        STREAMS.load(Ordering::Relaxed),
    )
}

/// Messages sent on data channels so far (one per `send`, however many frames it holds).
pub fn messages_sent() -> u64 {
    MESSAGES.load(Ordering::Relaxed)
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn count_stream(new_channel: bool) {
    CHANNELS.fetch_add(u64::from(new_channel), Ordering::Relaxed);
    STREAMS.fetch_add(1, Ordering::Relaxed);
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn count(sent: usize, received: usize) {
    MESSAGES.fetch_add(u64::from(sent > 0), Ordering::Relaxed);
    SENT.fetch_add(sent as u64, Ordering::Relaxed);
    RECEIVED.fetch_add(received as u64, Ordering::Relaxed);
}

/// Whether `addr` is a WebRTC address (ends in `/webrtc` or `/webrtc/p2p/<peer>`).
pub fn is_webrtc(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::WebRTC))
}

/// Whether `addr` goes through a circuit relay (any circuit address, WebRTC ones included).
pub fn through_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// Whether `addr` is a plain relayed one: through a circuit, and not a WebRTC address.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    through_circuit(addr) && !is_webrtc(addr)
}

/// Splits `<relayed>/p2p-circuit/webrtc/p2p/<peer>` into the peer and its relayed address
/// `<relayed>/p2p-circuit/p2p/<peer>`; `None` for any other shape.
pub fn split_dial_addr(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut parts: Vec<Protocol> = addr.iter().collect();
    let Some(Protocol::P2p(peer)) = parts.pop() else {
        return None;
    };
    if parts.pop() != Some(Protocol::WebRTC) || parts.last() != Some(&Protocol::P2pCircuit) {
        return None;
    }
    let relayed = parts
        .into_iter()
        .chain([Protocol::P2p(peer)])
        .collect::<Multiaddr>();
    Some((peer, relayed))
}

/// The WebRTC address of a peer reached at the circuit address `relayed`
/// (`<relay>/p2p-circuit/p2p/<peer>` becomes `<relay>/p2p-circuit/webrtc/p2p/<peer>`).
pub fn dial_addr_for(relayed: &Multiaddr) -> Option<Multiaddr> {
    let mut parts: Vec<Protocol> = relayed.iter().collect();
    let Some(Protocol::P2p(peer)) = parts.pop() else {
        return None;
    };
    if parts.last() != Some(&Protocol::P2pCircuit) {
        return None;
    }
    Some(
        parts
            .into_iter()
            .chain([Protocol::WebRTC, Protocol::P2p(peer)])
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn addresses_split_and_join() {
        let (relay, peer) = (PeerId::random(), PeerId::random());
        let relayed: Multiaddr =
            format!("/ip4/127.0.0.1/tcp/8081/ws/p2p/{relay}/p2p-circuit/p2p/{peer}")
                .parse()
                .unwrap();
        let webrtc = dial_addr_for(&relayed).unwrap();
        assert_eq!(
            webrtc.to_string(),
            format!("/ip4/127.0.0.1/tcp/8081/ws/p2p/{relay}/p2p-circuit/webrtc/p2p/{peer}")
        );
        assert!(is_webrtc(&webrtc) && !is_webrtc(&relayed));
        assert_eq!(split_dial_addr(&webrtc), Some((peer, relayed.clone())));
        assert_eq!(split_dial_addr(&relayed), None);
        let no_circuit: Multiaddr = format!("/ip4/1.2.3.4/udp/1/webrtc/p2p/{peer}")
            .parse()
            .unwrap();
        assert_eq!(split_dial_addr(&no_circuit), None);
        let no_peer: Multiaddr = format!("/p2p/{relay}/p2p-circuit/webrtc").parse().unwrap();
        assert_eq!(split_dial_addr(&no_peer), None);
        assert_eq!(dial_addr_for(&webrtc), None);
    }
}
