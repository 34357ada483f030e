//! Identify, without observed addresses that mean nothing to the remote.
//!
//! Identify tells each peer the address we see it at. Through a relay that is `/p2p/<peer>` or
//! the relay's own address, and over WebRTC `/webrtc/p2p/<peer>`: none is an address the peer
//! can be reached at, and js-libp2p refuses the whole identify message when the observed address
//! is not an IP or DNS one. So such connections report no observed address (an empty one, which
//! js-libp2p and rust-libp2p both ignore). Everything else is libp2p's identify as is.

use std::task::{Context, Poll};

use libp2p::{
    core::{transport::PortUse, Endpoint},
    identify,
    multiaddr::Protocol,
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

/// libp2p's identify behaviour, reporting only observed addresses that reach the remote.
pub(crate) struct Identify(pub(crate) identify::Behaviour);

/// The address to report as observed: `addr` if the remote can be reached there, else none.
fn observed(addr: &Multiaddr) -> Multiaddr {
    let direct_ip = matches!(
        addr.iter().next(),
        Some(
            Protocol::Ip4(_)
                | Protocol::Ip6(_)
                | Protocol::Dns(_)
                | Protocol::Dns4(_)
                | Protocol::Dns6(_)
                | Protocol::Dnsaddr(_)
        )
    );
    let through_something = addr
        .iter()
        .any(|p| matches!(p, Protocol::P2pCircuit | Protocol::WebRTC));
    if direct_ip && !through_something {
        addr.clone()
    } else {
        Multiaddr::empty()
    }
}

impl NetworkBehaviour for Identify {
    type ConnectionHandler = <identify::Behaviour as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = identify::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0
            .handle_pending_inbound_connection(connection, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_inbound_connection(connection, peer, local, &observed(remote))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.0
            .handle_pending_outbound_connection(connection, peer, addresses, role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.handle_established_outbound_connection(
            connection,
            peer,
            &observed(addr),
            role,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.0.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.0.on_connection_handler_event(peer, connection, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.0.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_reachable_addresses_are_reported() {
        let peer = PeerId::random();
        let tcp: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        assert_eq!(observed(&tcp), tcp);
        for unreachable in [
            format!("/webrtc/p2p/{peer}"),
            format!("/p2p/{peer}"),
            format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{peer}/p2p-circuit/p2p/{peer}"),
            format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{peer}/p2p-circuit/webrtc/p2p/{peer}"),
        ] {
            let addr: Multiaddr = unreachable.parse().unwrap();
            assert_eq!(observed(&addr), Multiaddr::empty(), "{addr}");
        }
    }
}
