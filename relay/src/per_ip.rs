//! A cap on the connections one IP address may hold at once. Each tab holds one connection to
//! the relay (and its one circuit reservation on it), so this caps the reservations and relay
//! slots one address can take: without it, one machine could hold all of them
//! (`--max-reservations`) and leave none for anyone else. libp2p's rate limits count
//! reservations and circuits per minute, not what an address holds.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::IpAddr,
    task::{Context, Poll},
};

use libp2p::{
    core::{transport::PortUse, ConnectedPoint, Endpoint},
    multiaddr::Protocol,
    swarm::{
        behaviour::ConnectionEstablished, dummy, ConnectionClosed, ConnectionDenied, ConnectionId,
        FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

/// The IP address a multiaddr starts with, if any.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// How many connections each address holds. Pure: the behaviour below feeds it.
#[derive(Debug, Default)]
struct Counts {
    per_ip: HashMap<IpAddr, u32>,
    by_connection: HashMap<ConnectionId, IpAddr>,
}

impl Counts {
    fn held(&self, ip: &IpAddr) -> u32 {
        self.per_ip.get(ip).copied().unwrap_or(0)
    }

    fn opened(&mut self, connection: ConnectionId, ip: IpAddr) {
        if self.by_connection.insert(connection, ip).is_none() {
            *self.per_ip.entry(ip).or_default() += 1;
        }
    }

    fn closed(&mut self, connection: ConnectionId) {
        let Some(ip) = self.by_connection.remove(&connection) else {
            return;
        };
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Refuses an inbound connection from an address that already holds `max` of them.
pub(crate) struct Behaviour {
    max: u32,
    counts: Counts,
}

impl Behaviour {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max,
            counts: Counts::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{ip} already holds {held} connections to this relay (the limit per address)")]
struct TooManyFromAddress {
    ip: IpAddr,
    held: u32,
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if let Some(ip) = ip_of(remote_addr) {
            let held = self.counts.held(&ip);
            if held >= self.max {
                return Err(ConnectionDenied::new(TooManyFromAddress { ip, held }));
            }
        }
        Ok(dummy::ConnectionHandler)
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
        match event {
            // Counted once established (a connection another behaviour denies never is).
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                connection_id,
                endpoint: ConnectedPoint::Listener { send_back_addr, .. },
                ..
            }) => {
                if let Some(ip) = ip_of(send_back_addr) {
                    self.counts.opened(connection_id, ip);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.counts.closed(connection_id);
            }
            _ => {}
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

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn an_address_is_counted_per_connection_and_freed_on_close() {
        let mut counts = Counts::default();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let ids: Vec<ConnectionId> = (1..=4).map(ConnectionId::new_unchecked).collect();
        counts.opened(ids[0], a);
        counts.opened(ids[1], a);
        counts.opened(ids[1], a); // the same connection twice counts once
        counts.opened(ids[2], b);
        assert_eq!((counts.held(&a), counts.held(&b)), (2, 1));
        counts.closed(ids[0]);
        counts.closed(ids[0]);
        counts.closed(ids[3]); // never counted
        assert_eq!((counts.held(&a), counts.held(&b)), (1, 1));
        counts.closed(ids[1]);
        assert_eq!(counts.held(&a), 0);
        assert!(!counts.per_ip.contains_key(&a));
    }

    #[test]
    fn addresses_are_read_from_ip4_and_ip6_multiaddrs() {
        let v4: Multiaddr = "/ip4/192.0.2.7/tcp/4001/ws".parse().expect("a multiaddr");
        let v6: Multiaddr = "/ip6/::1/tcp/4001/ws".parse().expect("a multiaddr");
        let dns: Multiaddr = "/dns4/example.org/tcp/443/wss"
            .parse()
            .expect("a multiaddr");
        assert_eq!(ip_of(&v4), Some([192, 0, 2, 7].into()));
        assert_eq!(ip_of(&v6), Some(std::net::Ipv6Addr::LOCALHOST.into()));
        assert_eq!(ip_of(&dns), None);
    }
}
