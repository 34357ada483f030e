//! Requests between peers: outbound ones sent, cut ones sent again ([`crate::net::outbound`]),
//! inbound ones answered here (hello) or handed to the application ([`crate::net::inbound`]).

use futures::future::FutureExt;
use futures_timer::Delay;
use libp2p::{
    request_response::{self},
    PeerId,
};

use super::{Asker, EventLoop};
use crate::net::{
    inbound::Busy,
    outbound::{Failure, Next, Outbound},
    queries::Query,
    Event, InboundRequest,
};
use crate::protocol::{Request, Response};

impl EventLoop {
    /// Sends a request, over the direct connection when there is one: relayed connections it
    /// replaced close first. While it may go again ([`crate::net::outbound`]) a copy stays here.
    pub(super) fn send_request(&mut self, mut outbound: Outbound) {
        let peer = outbound.peer;
        // One still carrying a WebRTC handshake is closed by a later request.
        let signaling = &self.swarm.behaviour().signaling;
        for relayed in self.upgrades.replaced(&peer, |c| signaling.is_signaling(c)) {
            self.swarm.close_connection(relayed);
        }
        let Some(request) = outbound.take_to_send() else {
            tracing::warn!(%peer, "a request was sent twice; dropped");
            return;
        };
        let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
        self.requests.in_flight.insert(id, outbound);
    }

    /// Sets the resend timer for the earliest request waiting to go again.
    pub(super) fn arm_resend(&mut self, now: web_time::Instant) {
        if let Some(first) = self.requests.cut.next_at() {
            self.timers.resend = Delay::new(first.saturating_duration_since(now)).fuse();
        }
    }

    /// Sends the requests cut by closing connections again, over what is left.
    pub(super) fn on_resend(&mut self) {
        let now = web_time::Instant::now();
        let due = self.requests.cut.take_due(now);
        self.arm_resend(now);
        for outbound in due {
            if self.swarm.is_connected(&outbound.peer) {
                tracing::debug!(peer = %outbound.peer, "sending a cut request again");
                self.send_request(outbound);
            } else {
                let (reply, error) = outbound.gone();
                let _ = reply.send(Err(error));
            }
        }
    }

    pub(super) fn on_rpc(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                // What a tab is asked for, for `tests/bench/cluster.mjs --profile`.
                tracing::debug!(target: crate::TIMING, kind = request.kind(), "request received");
                let Request::Hello { agent } = request else {
                    self.hand_to_application(peer, request, Asker::Remote(channel));
                    return;
                };
                self.emit(Event::HelloReceived {
                    peer_id: peer.to_string(),
                    agent,
                });
                let response = Response::Hello {
                    agent: self.inbound.agent.clone(),
                    connected_peers: self.swarm.connected_peers().count() as u32,
                };
                self.answer(channel, response);
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(outbound) = self.requests.in_flight.remove(&request_id) {
                    let _ = outbound.reply.send(Ok(response));
                } else {
                    tracing::debug!(%peer, "an answer nobody waits for");
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(outbound) = self.requests.in_flight.remove(&request_id) else {
                    return;
                };
                let now = web_time::Instant::now();
                let connected = self.swarm.is_connected(&peer);
                match outbound.on_failure(Failure::of(&error), connected, now) {
                    Next::Resend(at, outbound) => {
                        tracing::debug!(%peer, "request cut ({error}); sending it again soon");
                        self.requests.cut.push(at, outbound);
                        self.arm_resend(now);
                    }
                    Next::LookUp(outbound) => {
                        // A dial that finds no address fails inside the swarm, with no event
                        // to tell it apart: ask the DHT where the peer is.
                        tracing::debug!(%peer, "dial failed; looking the peer up");
                        let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                        self.dht.queries.insert(id, Query::Find(outbound));
                    }
                    Next::Fail(reply, error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, "inbound request refused: {error}");
                self.emit(Event::InboundRefused {
                    peer_id: peer.to_string(),
                    reason: error.to_string(),
                });
            }
            request_response::Event::ResponseSent { .. } => {
                // When an answer was written out, for `tests/bench/cluster.mjs --profile`.
                tracing::debug!(target: crate::TIMING, "response sent");
            }
        }
    }

    pub(super) fn answer(
        &mut self,
        channel: request_response::ResponseChannel<Response>,
        response: Response,
    ) {
        // When the answer left the application for the stream, for `tests/bench/cluster.mjs
        // --profile` (beside "response sent", when it was written out).
        tracing::debug!(target: crate::TIMING, kind = response.kind(), "response queued");
        if self
            .swarm
            .behaviour_mut()
            .rpc
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!("could not answer: the stream closed");
        }
    }

    /// Block requests need storage, which is async: the application answers them.
    /// A request to this peer itself goes the same way, answered by its own holder.
    pub(super) fn hand_to_application(&mut self, peer: PeerId, request: Request, asker: Asker) {
        let id = match self.inbound.waiting.next_id(&peer) {
            Ok(id) => id,
            Err(Busy { waiting }) => {
                let reason =
                    format!("busy: {waiting} of your requests are waiting; send fewer at once");
                self.reply(asker, Response::Refused { reason });
                return;
            }
        };
        match self
            .inbound
            .queue
            .try_send(InboundRequest { id, peer, request })
        {
            Ok(()) => self.inbound.waiting.insert(id, peer, asker),
            Err(e) => {
                let reason = if e.is_full() {
                    "busy; try another peer"
                } else {
                    "not serving blocks"
                };
                self.reply(
                    asker,
                    Response::Refused {
                        reason: reason.into(),
                    },
                );
            }
        }
    }

    pub(super) fn reply(&mut self, asker: Asker, response: Response) {
        match asker {
            Asker::Remote(channel) => self.answer(channel, response),
            Asker::Local(reply) => {
                let _ = reply.send(Ok(response));
            }
        }
    }
}
