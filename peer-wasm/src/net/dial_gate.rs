//! Refuses dials to a relay that is down, except the relay link's own timed retries.
//!
//! When a relay goes down, Kademlia and the relay client keep dialling it: other peers hand
//! out its address, and every tab's circuit address through it names it. In a browser each
//! such dial is a WebSocket to a dead port, and Chromium delays repeated failing WebSockets to
//! one endpoint, so they pile up: with two relays and one killed, DHT walks took 8 to 10 s
//! instead of 2 s, waiting on dials that could only fail. While [`super::relay_links`] waits
//! out a relay's backoff this gate refuses every other dial to it at once (a circuit through
//! it then fails at once too, and the dial goes through the other relay).

use std::{
    collections::HashSet,
    convert::Infallible,
    task::{Context, Poll},
};

use libp2p::{
    core::{transport::PortUse, Endpoint},
    swarm::{
        dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

/// Why a dial was refused.
#[derive(Debug, thiserror::Error)]
#[error("the relay {0} is down; the relay link retries it on its own schedule")]
pub(crate) struct RelayDown(PeerId);

/// The gate: relays that are down, and the dials let through anyway.
#[derive(Debug, Default)]
pub(crate) struct DialGate {
    down: HashSet<PeerId>,
    ours: HashSet<ConnectionId>,
}

impl DialGate {
    /// The relays that are down now (the others are let through).
    pub(crate) fn set_down(&mut self, down: impl IntoIterator<Item = PeerId>) {
        self.down = down.into_iter().collect();
    }

    /// Lets the dial with this id through whatever the state (the relay link's own retry).
    pub(crate) fn allow(&mut self, connection: ConnectionId) {
        self.ours.insert(connection);
    }

    fn check(&mut self, connection: ConnectionId, peer: Option<PeerId>) -> Result<(), RelayDown> {
        if self.ours.remove(&connection) {
            return Ok(());
        }
        match peer {
            Some(peer) if self.down.contains(&peer) => Err(RelayDown(peer)),
            _ => Ok(()),
        }
    }
}

impl NetworkBehaviour for DialGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.check(connection, peer)
            .map_err(ConnectionDenied::new)?;
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        // A let-through dial that another behaviour refused never reaches `check`.
        if let FromSwarm::DialFailure(failure) = event {
            self.ours.remove(&failure.connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

// Native only: the browser test runner runs #[wasm_bindgen_test]s.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn only_the_relay_links_own_dial_reaches_a_relay_that_is_down() {
        let (down, up) = (PeerId::random(), PeerId::random());
        let mut gate = DialGate::default();
        gate.set_down([down]);
        assert!(gate
            .check(ConnectionId::new_unchecked(1), Some(down))
            .is_err());
        assert!(gate.check(ConnectionId::new_unchecked(2), Some(up)).is_ok());
        assert!(gate.check(ConnectionId::new_unchecked(3), None).is_ok());
        gate.allow(ConnectionId::new_unchecked(4));
        assert!(gate
            .check(ConnectionId::new_unchecked(4), Some(down))
            .is_ok());
        assert!(
            gate.check(ConnectionId::new_unchecked(4), Some(down))
                .is_err(),
            "once"
        );
        gate.set_down([]);
        assert!(gate
            .check(ConnectionId::new_unchecked(5), Some(down))
            .is_ok());
    }
}
