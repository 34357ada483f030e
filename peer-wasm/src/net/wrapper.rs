//! What a behaviour wrapper that leaves connection setup alone says to the swarm: the four
//! `handle_*_connection` calls of [`libp2p::swarm::NetworkBehaviour`], passed to the wrapped
//! behaviour in the field `inner` unchanged ([`super::prefer_direct`], [`super::direct_first`]);
//! and how the swarm loop reaches the wrapped behaviour through the wrapper (`Deref`).

/// Implements the four connection-setup calls by passing them to `self.inner`. Used inside an
/// `impl NetworkBehaviour` block, with its types in scope (`ConnectionId`, `PeerId`,
/// `Multiaddr`, `Endpoint`, `PortUse`, `THandler`, `ConnectionDenied`).
macro_rules! forward_connection_setup {
    () => {
        fn handle_pending_inbound_connection(
            &mut self,
            connection: ConnectionId,
            local: &Multiaddr,
            remote: &Multiaddr,
        ) -> Result<(), ConnectionDenied> {
            self.inner
                .handle_pending_inbound_connection(connection, local, remote)
        }

        fn handle_established_inbound_connection(
            &mut self,
            connection: ConnectionId,
            peer: PeerId,
            local: &Multiaddr,
            remote: &Multiaddr,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            self.inner
                .handle_established_inbound_connection(connection, peer, local, remote)
        }

        fn handle_pending_outbound_connection(
            &mut self,
            connection: ConnectionId,
            peer: Option<PeerId>,
            addresses: &[Multiaddr],
            role: Endpoint,
        ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
            self.inner
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
            self.inner
                .handle_established_outbound_connection(connection, peer, addr, role, port_use)
        }
    };
}

pub(super) use forward_connection_setup;

/// Implements `Deref` and `DerefMut` from the wrapper `$wrapper<B>` to the behaviour it wraps
/// (its field `inner`), so the swarm loop calls Kademlia's or request-response's own methods
/// through the wrapper.
macro_rules! deref_to_inner {
    ($wrapper:ident) => {
        impl<B> std::ops::Deref for $wrapper<B> {
            type Target = B;
            fn deref(&self) -> &B {
                &self.inner
            }
        }

        impl<B> std::ops::DerefMut for $wrapper<B> {
            fn deref_mut(&mut self) -> &mut B {
                &mut self.inner
            }
        }
    };
}

pub(super) use deref_to_inner;
