//! A request on its way to another peer, and what happens when it fails. Pure: the event loop
//! sends, reports failures here, and does what [`Outbound::on_failure`] says.
//!
//! - A request cut by a closing connection ("connection closed", a failed negotiation, a
//!   stream ended before any answer) goes again over another connection to the same peer,
//!   after 150 ms, 300 ms, 600 ms, 1.2 s ([`RETRIES`] times): long enough for the closing
//!   connection to be gone, so it is not picked again, and for both sides of a new direct
//!   connection to have seen it. Jellyfish's requests are idempotent (storing a block twice
//!   holds it once), so this is safe.
//! - A request whose dial failed (this peer knew no address for the other, or only an old one:
//!   a holder named in an index, say, that is not in the routing table) looks the peer up in
//!   the DHT and goes once more, with no further retries.
//! - Anything else fails with the reason.

use std::time::Duration;

use futures::channel::oneshot;
use libp2p::{request_response::OutboundFailure, PeerId};
use web_time::Instant;

use super::NetError;
use crate::protocol::{Request, Response};

/// Who waits for the answer to a request to another peer.
pub(crate) type ResponseSender = oneshot::Sender<Result<Response, NetError>>;

/// How often a request cut by a closing connection is sent again.
pub(crate) const RETRIES: u8 = 4;
/// How long a cut request waits before it first goes again (doubling for each further try).
pub(crate) const RESEND_AFTER: Duration = Duration::from_millis(150);

/// A request to another peer, and who waits for its answer.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// The peer asked.
    pub(crate) peer: PeerId,
    /// The request; kept while it may be sent again (a block is 1 MiB: the last try keeps no
    /// copy).
    request: Option<Request>,
    /// Who waits for the answer.
    pub(crate) reply: ResponseSender,
    /// Sends left after a cut.
    retries_left: u8,
    /// Whether a failed dial may still look the peer up.
    may_look_up: bool,
    /// The first pause before a resend ([`RESEND_AFTER`] unless tuned).
    resend_after: Duration,
}

/// Why a request failed, as far as what happens next is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Its connection went away under it.
    Cut(String),
    /// The peer could not be dialled.
    Undialable(String),
    /// The peer answered badly or not in time.
    Other(String),
}

impl Failure {
    /// Classifies libp2p's failure.
    pub(crate) fn of(error: &OutboundFailure) -> Self {
        let reason = error.to_string();
        match error {
            OutboundFailure::ConnectionClosed | OutboundFailure::UnsupportedProtocols => {
                Self::Cut(reason)
            }
            OutboundFailure::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                Self::Cut(reason)
            }
            OutboundFailure::DialFailure => Self::Undialable(reason),
            OutboundFailure::Io(_) | OutboundFailure::Timeout => Self::Other(reason),
        }
    }
}

/// What to do with a failed request.
#[derive(Debug)]
pub(crate) enum Next {
    /// Send it again at this time, if the peer is still connected then.
    Resend(Instant, Outbound),
    /// Look the peer up in the DHT, then send it once more.
    LookUp(Outbound),
    /// Give up: answer the waiting caller with this error.
    Fail(ResponseSender, NetError),
}

impl Outbound {
    /// A request about to go out for the first time.
    pub(crate) fn new(peer: PeerId, request: Request, reply: ResponseSender) -> Self {
        Self {
            peer,
            request: Some(request),
            reply,
            retries_left: RETRIES,
            may_look_up: true,
            resend_after: RESEND_AFTER,
        }
    }

    /// This request, its first resend after a cut waiting `pause` (doubling per retry).
    pub(crate) fn resending_after(mut self, pause: Duration) -> Self {
        self.resend_after = pause;
        self
    }

    /// What to hand to libp2p: a copy while the request may go again, else the request itself
    /// (`None` if it was handed over already).
    pub(crate) fn take_to_send(&mut self) -> Option<Request> {
        if self.may_go_again() {
            self.request.clone()
        } else {
            self.request.take()
        }
    }

    /// The same request for its last try, after a lookup found the peer.
    pub(crate) fn last_try(self) -> Self {
        Self {
            retries_left: 0,
            may_look_up: false,
            ..self
        }
    }

    /// Whether a failure could still send it again (so it must keep a copy while in flight).
    pub(crate) fn may_go_again(&self) -> bool {
        self.retries_left > 0 || self.may_look_up
    }

    /// What to do after `failure`; `connected`: whether a connection to the peer is still open.
    pub(crate) fn on_failure(mut self, failure: Failure, connected: bool, now: Instant) -> Next {
        let kept = self.request.is_some();
        match failure {
            Failure::Cut(_) if kept && connected && self.retries_left > 0 => {
                let tries_so_far = u32::from(RETRIES - self.retries_left);
                let at = now + self.resend_after * 2u32.pow(tries_so_far);
                self.retries_left -= 1;
                Next::Resend(at, self)
            }
            Failure::Undialable(_) if kept && self.may_look_up => {
                self.may_look_up = false;
                Next::LookUp(self)
            }
            Failure::Cut(reason) | Failure::Undialable(reason) | Failure::Other(reason) => {
                let error = NetError::Request {
                    peer: self.peer,
                    reason,
                };
                Next::Fail(self.reply, error)
            }
        }
    }

    /// When a resend comes due but the peer is no longer connected.
    pub(crate) fn gone(self) -> (ResponseSender, NetError) {
        let error = NetError::Request {
            peer: self.peer,
            reason: "the connection closed during the request".into(),
        };
        (self.reply, error)
    }
}

/// Requests cut by a closing connection, each waiting for the moment it goes again
/// ([`Next::Resend`]). Generic so it is tested with plain values.
#[derive(Debug)]
pub(crate) struct Resends<T> {
    waiting: Vec<(Instant, T)>,
}

impl<T> Default for Resends<T> {
    fn default() -> Self {
        Self {
            waiting: Vec::new(),
        }
    }
}

impl<T> Resends<T> {
    /// `item` goes again at `at`.
    pub(crate) fn push(&mut self, at: Instant, item: T) {
        self.waiting.push((at, item));
    }

    /// What is due at `now`, in the order it was cut; the rest keep waiting.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<T> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.waiting = later;
        due.into_iter().map(|(_, item)| item).collect()
    }

    /// When the next one comes due.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.waiting.iter().map(|(at, _)| *at).min()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::channel::oneshot;

    use super::*;

    fn request() -> Outbound {
        let (reply, _) = oneshot::channel();
        Outbound::new(PeerId::random(), Request::Fill { len: 1 }, reply)
    }

    fn cut() -> Failure {
        Failure::Cut("connection closed".into())
    }

    #[test]
    fn resends_come_due_in_order_and_the_rest_wait() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut resends = Resends::default();
        assert_eq!(resends.next_at(), None);
        resends.push(now + ms(300), "late");
        resends.push(now + ms(150), "early");
        resends.push(now + ms(150), "early too");
        assert_eq!(resends.next_at(), Some(now + ms(150)));
        assert!(resends.take_due(now).is_empty());
        assert_eq!(resends.take_due(now + ms(200)), vec!["early", "early too"]);
        assert_eq!(resends.next_at(), Some(now + ms(300)));
        assert_eq!(resends.take_due(now + ms(300)), vec!["late"]);
        assert_eq!(resends.next_at(), None);
    }

    #[test]
    fn a_cut_request_goes_again_four_times_with_doubling_pauses() {
        let now = Instant::now();
        let mut outbound = request();
        for wait_ms in [150, 300, 600, 1200] {
            outbound = match outbound.on_failure(cut(), true, now) {
                Next::Resend(at, again) => {
                    assert_eq!(at - now, Duration::from_millis(wait_ms));
                    again
                }
                other => panic!("{other:?}"),
            };
        }
        assert!(matches!(
            outbound.on_failure(cut(), true, now),
            Next::Fail(_, NetError::Request { .. })
        ));
    }

    #[test]
    fn a_cut_with_no_connection_left_fails() {
        let next = request().on_failure(cut(), false, Instant::now());
        assert!(matches!(next, Next::Fail(..)), "{next:?}");
    }

    #[test]
    fn a_failed_dial_looks_the_peer_up_once_then_fails() {
        let dial = || Failure::Undialable("Failed to dial".into());
        let next = request().on_failure(dial(), false, Instant::now());
        let Next::LookUp(found) = next else {
            panic!("{next:?}");
        };
        let mut last = found.last_try();
        assert!(!last.may_go_again());
        assert!(last.take_to_send().is_some());
        assert!(last.take_to_send().is_none(), "the last try keeps no copy");
        let next = last.on_failure(dial(), false, Instant::now());
        let Next::Fail(_, NetError::Request { reason, .. }) = next else {
            panic!("{next:?}");
        };
        assert_eq!(reason, "Failed to dial");
        // A cut on the last try is not retried either.
        let (reply, _) = oneshot::channel();
        let mut last = Outbound::new(PeerId::random(), Request::Fill { len: 1 }, reply).last_try();
        let _sent = last.take_to_send();
        assert!(matches!(
            last.on_failure(cut(), true, Instant::now()),
            Next::Fail(..)
        ));
    }

    #[test]
    fn timeouts_and_bad_answers_fail_at_once() {
        let next = request().on_failure(Failure::Other("timeout".into()), true, Instant::now());
        assert!(matches!(next, Next::Fail(..)), "{next:?}");
        assert_eq!(
            Failure::of(&OutboundFailure::Timeout),
            Failure::Other(OutboundFailure::Timeout.to_string())
        );
        assert!(matches!(
            Failure::of(&OutboundFailure::ConnectionClosed),
            Failure::Cut(_)
        ));
        assert!(matches!(
            Failure::of(&OutboundFailure::DialFailure),
            Failure::Undialable(_)
        ));
    }
}
