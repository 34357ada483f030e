//! The network's tuning in one place: every schedule and limit a deployment might change,
//! each defaulting to the constant beside the state machine it drives (where the reason for
//! its value is written).

use std::time::Duration;

use super::{direct, inbound, outbound, relay_links, rewalk};

/// Kademlia's replication interval, [`Tuning::record_replication`]'s default.
pub(super) const RECORD_REPLICATION: Duration = Duration::from_secs(10 * 60);

/// How the network paces and bounds itself; [`Tuning::default`] is what the app runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    /// Relays held connected at once, with a reservation on each: 2
    /// ([`relay_links::KEEP`]; at least 1 whatever is set).
    pub relays_kept: usize,
    /// How long a relay dial may take before the next relay is tried: 10 s
    /// ([`relay_links::DIAL_TIMEOUT`]).
    pub relay_dial_timeout: Duration,
    /// After a failed upgrade to a direct WebRTC connection, how long the relayed one is kept
    /// before another attempt: 5 min ([`direct::RETRY_AFTER`]).
    pub direct_retry_after: Duration,
    /// First pause before a request cut mid-way goes again on the same connection, doubling
    /// per retry: 150 ms ([`outbound::RESEND_AFTER`]).
    pub resend_after: Duration,
    /// Pauses between extra DHT walks while the routing table is thin: from 1 s, doubling up
    /// to 60 s ([`rewalk::FIRST_WAIT`], [`rewalk::MAX_WAIT`]; the first at least 100 ms, the
    /// longest at least the first, so a walk never repeats in a busy loop).
    pub rewalk_waits: (Duration, Duration),
    /// A peer cut off from every other walks the DHT again on reconnecting to a bootstrap
    /// peer at most this often: 5 min ([`rewalk::REBOOTSTRAP_AFTER`]).
    pub rebootstrap_after: Duration,
    /// Inbound requests one peer may have waiting for this peer's holder: 8
    /// ([`inbound::PER_PEER`]; at least 1, and all peers together at most 64).
    pub waiting_per_peer: usize,
    /// How often a peer hands the DHT records it holds to the peers now closest to their
    /// keys: 10 min (Kademlia's replication interval). This is what keeps account records
    /// and file indexes alive while the tabs that first held them close: a record survives
    /// as long as one holder stays that long after a newcomer joins near its key.
    pub record_replication: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            relays_kept: relay_links::KEEP,
            relay_dial_timeout: relay_links::DIAL_TIMEOUT,
            direct_retry_after: direct::RETRY_AFTER,
            resend_after: outbound::RESEND_AFTER,
            rewalk_waits: (rewalk::FIRST_WAIT, rewalk::MAX_WAIT),
            rebootstrap_after: rewalk::REBOOTSTRAP_AFTER,
            waiting_per_peer: inbound::PER_PEER,
            record_replication: RECORD_REPLICATION,
        }
    }
}
