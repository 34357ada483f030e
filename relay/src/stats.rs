//! Counters the network side updates and the HTTP side reports.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    RwLock,
};

use serde::Serialize;

/// What the relay has been doing, shared between libp2p and HTTP.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) connections: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) reservations: AtomicU64,
    pub(crate) reservations_total: AtomicU64,
    pub(crate) circuits: AtomicU64,
    pub(crate) circuits_total: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) records_refused: AtomicU64,
    /// Where browsers can reach the relay over libp2p, each ending in `/p2p/<relay id>`.
    pub(crate) addrs: RwLock<Vec<String>>,
    /// Where browsers can reach the fellow relays, each ending in `/p2p/<fellow id>` (learnt on
    /// the first connection when the configuration named no id).
    pub(crate) fellows: RwLock<Vec<String>>,
}

/// A point-in-time copy of [`Stats`], as `/health` serves it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Open libp2p connections.
    pub connections: u64,
    /// Connections ever accepted or made.
    pub connections_total: u64,
    /// Circuit reservations held now.
    pub reservations: u64,
    /// Reservations ever accepted (renewals included).
    pub reservations_total: u64,
    /// Relayed circuits open now.
    pub circuits: u64,
    /// Circuits ever accepted.
    pub circuits_total: u64,
    /// Bytes read from all sockets (relayed traffic included).
    pub bytes_in: u64,
    /// Bytes written to all sockets (relayed traffic included).
    pub bytes_out: u64,
    /// DHT records and provider records refused (the relay stores none).
    pub records_refused: u64,
}

impl Stats {
    /// Reads every counter.
    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            connections: get(&self.connections),
            connections_total: get(&self.connections_total),
            reservations: get(&self.reservations),
            reservations_total: get(&self.reservations_total),
            circuits: get(&self.circuits),
            circuits_total: get(&self.circuits_total),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            records_refused: get(&self.records_refused),
        }
    }

    /// The relay's announced libp2p addresses.
    pub fn addrs(&self) -> Vec<String> {
        self.addrs.read().map(|a| a.clone()).unwrap_or_default()
    }

    /// The fellow relays' addresses whose peer id is known.
    pub fn fellows(&self) -> Vec<String> {
        self.fellows.read().map(|a| a.clone()).unwrap_or_default()
    }

    pub(crate) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }

    pub(crate) fn decr(counter: &AtomicU64) {
        // Saturating: a close we never saw open must not wrap the gauge around.
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }
}
