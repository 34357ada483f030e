//! The offer/answer/ICE exchange over a signalling stream, in the order js-libp2p expects:
//!
//! - initiator: create the peer connection and an `init` channel; create the offer, send it,
//!   then apply it locally; read the answer; trickle candidates both ways until connected; wait
//!   for `init` to open and close it; close the signalling stream.
//! - responder: read the offer and apply it; create the answer, send it, then apply it locally
//!   (so every candidate follows it); trickle candidates until connected; close the stream.
//!
//! Candidates travel as the JSON of `RTCIceCandidate.toJSON()`; an end-of-candidates (a null
//! candidate) is not sent, and an empty or `"null"` one received is skipped.

use std::time::Duration;

use futures::{
    channel::mpsc,
    future::{self, Either},
    AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt,
};
use futures_timer::Delay;
use wasm_bindgen::{prelude::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcConfiguration, RtcDataChannel, RtcDataChannelState, RtcIceCandidateInit, RtcIceServer,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState, RtcSdpType,
    RtcSessionDescriptionInit,
};

use super::{
    connection::{Connection, Watch, INIT_LABEL},
    Error,
};
use crate::webrtc::{
    proto::{read_signal, write_signal, Signal, SignalKind},
    signaling::SignalingStream as Stream,
};

/// How long the whole exchange may take: js-libp2p's own budget for an inbound upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn js(context: &str) -> impl Fn(JsValue) -> Error + '_ {
    move |e| Error::Browser(format!("{context}: {e:?}"))
}

/// A peer connection with `ice_servers` (STUN or TURN URLs; none on a LAN or in tests).
fn peer_connection(ice_servers: &[String]) -> Result<RtcPeerConnection, Error> {
    let servers = js_sys::Array::new();
    for url in ice_servers {
        let server = RtcIceServer::new();
        server.set_urls(&JsValue::from_str(url));
        servers.push(&server);
    }
    let config = RtcConfiguration::new();
    config.set_ice_servers(&servers);
    RtcPeerConnection::new_with_configuration(&config).map_err(js("RTCPeerConnection"))
}

/// This side's candidates, as they are gathered; `None` once gathering is complete.
struct Candidates {
    rx: mpsc::UnboundedReceiver<Option<String>>,
    pc: RtcPeerConnection,
    _on_candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)>,
}

impl Candidates {
    fn watch(pc: &RtcPeerConnection) -> Self {
        let (tx, rx) = mpsc::unbounded();
        let on_candidate = Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
            move |event: RtcPeerConnectionIceEvent| {
                let json = event
                    .candidate()
                    .and_then(|c| js_sys::JSON::stringify(&c.to_json()).ok())
                    .and_then(|s| s.as_string());
                let _ = tx.unbounded_send(json);
            },
        );
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        Self {
            rx,
            pc: pc.clone(),
            _on_candidate: on_candidate,
        }
    }
}

impl Drop for Candidates {
    fn drop(&mut self) {
        self.pc.set_onicecandidate(None);
    }
}

async fn describe(
    pc: &RtcPeerConnection,
    kind: RtcSdpType,
    sdp: &str,
    local: bool,
) -> Result<(), Error> {
    let description = RtcSessionDescriptionInit::new(kind);
    description.set_sdp(sdp);
    let promise = if local {
        pc.set_local_description(&description)
    } else {
        pc.set_remote_description(&description)
    };
    JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(js("applying a session description"))
}

fn sdp_of(description: &JsValue) -> Result<String, Error> {
    js_sys::Reflect::get(description, &"sdp".into())
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| Error::Browser("the browser made a session description without SDP".into()))
}

fn expect(signal: Signal, kind: SignalKind) -> Result<String, Error> {
    match (signal.kind == kind, signal.data) {
        (true, Some(sdp)) => Ok(sdp),
        _ => Err(Error::Signaling(format!(
            "expected an SDP {kind:?}, got {:?}",
            signal.kind
        ))),
    }
}

/// Trickles candidates both ways until the peer connection is connected.
async fn exchange_candidates(
    watch: &Watch,
    candidates: &mut Candidates,
    stream: &mut Stream,
) -> Result<(), Error> {
    let (mut reader, mut writer) = stream.split();
    let send = async {
        while let Some(candidate) = candidates.rx.next().await {
            let Some(json) = candidate else { break };
            let signal = Signal {
                kind: SignalKind::Candidate,
                data: Some(json),
            };
            if write_signal(&mut writer, &signal).await.is_err() {
                break; // the remote closed signalling: it is connected, or will say so
            }
        }
    };
    let receive = async {
        while let Ok(signal) = read_signal(&mut reader).await {
            if signal.kind != SignalKind::Candidate {
                return Err(Error::Signaling(format!(
                    "expected an ICE candidate, got {:?}",
                    signal.kind
                )));
            }
            let Some(json) = signal.data.filter(|d| !d.is_empty() && d != "null") else {
                continue;
            };
            let init: RtcIceCandidateInit = js_sys::JSON::parse(&json)
                .map_err(js("parsing an ICE candidate"))?
                .unchecked_into();
            JsFuture::from(
                watch
                    .pc
                    .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
            )
            .await
            .map_err(js("adding an ICE candidate"))?;
        }
        Ok(())
    };
    let connected = future::poll_fn(|cx| match watch.poll_state(cx) {
        RtcPeerConnectionState::Connected => std::task::Poll::Ready(Ok(())),
        RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed => {
            std::task::Poll::Ready(Err(Error::Ice))
        }
        _ => std::task::Poll::Pending,
    });
    let trickle = future::join(send, receive).map(|(_, received)| received);
    futures::pin_mut!(connected, trickle);
    match future::select(connected, trickle).await {
        Either::Left((result, _)) => result,
        Either::Right((Err(e), _)) => Err(e),
        Either::Right((Ok(()), connected)) => connected.await,
    }
}

/// Waits for `channel` to leave the "connecting" state (opened, or already closed by a remote
/// that closes `init` on arrival, as js-libp2p does), then closes it and waits for it to be
/// closed, so its id is not reused too early. Bounded: a late `init` is not worth failing a
/// connection over.
async fn open_then_close(channel: &RtcDataChannel) {
    let (tx, mut rx) = mpsc::unbounded::<()>();
    let on_event = Closure::<dyn FnMut()>::new(move || {
        let _ = tx.unbounded_send(());
    });
    channel.set_onopen(Some(on_event.as_ref().unchecked_ref()));
    channel.set_onclose(Some(on_event.as_ref().unchecked_ref()));
    let deadline = Delay::new(Duration::from_secs(1)).fuse();
    futures::pin_mut!(deadline);
    let mut closing = false;
    loop {
        match channel.ready_state() {
            RtcDataChannelState::Closed => break,
            RtcDataChannelState::Connecting => {}
            _ if !closing => {
                closing = true;
                channel.close();
            }
            _ => {}
        }
        futures::select! {
            _ = rx.next() => {}
            () = deadline => break,
        }
    }
    channel.set_onopen(None);
    channel.set_onclose(None);
}

pub(super) async fn with_timeout<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    futures::pin_mut!(work);
    match future::select(work, Delay::new(HANDSHAKE_TIMEOUT)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(Error::Timeout),
    }
}

/// Creates this side's offer or answer, sends it, then applies it locally: in that order, so
/// that every candidate it produces follows it on the stream (as js-libp2p expects).
async fn send_local_description(
    pc: &RtcPeerConnection,
    stream: &mut Stream,
    kind: SignalKind,
) -> Result<(), Error> {
    let (created, sdp_type) = match kind {
        SignalKind::Offer => (pc.create_offer(), RtcSdpType::Offer),
        _ => (pc.create_answer(), RtcSdpType::Answer),
    };
    let description = JsFuture::from(created)
        .await
        .map_err(js("creating a session description"))?;
    let sdp = sdp_of(&description)?;
    let signal = Signal {
        kind,
        data: Some(sdp.clone()),
    };
    write_signal(stream, &signal).await?;
    describe(pc, sdp_type, &sdp, true).await
}

/// The initiator's side, over a signalling stream it opened.
pub(super) async fn initiate(
    mut stream: Stream,
    ice_servers: &[String],
) -> Result<Connection, Error> {
    let watch = Watch::new(peer_connection(ice_servers)?);
    let mut candidates = Candidates::watch(&watch.pc);
    let init = watch.pc.create_data_channel(INIT_LABEL);
    with_timeout(async {
        send_local_description(&watch.pc, &mut stream, SignalKind::Offer).await?;
        let answer = expect(read_signal(&mut stream).await?, SignalKind::Answer)?;
        describe(&watch.pc, RtcSdpType::Answer, &answer, false).await?;
        exchange_candidates(&watch, &mut candidates, &mut stream).await
    })
    .await?;
    open_then_close(&init).await;
    let _ = stream.close().await;
    drop(candidates);
    Ok(Connection::new(watch))
}

/// The responder's first step: the offer on a signalling stream the remote opened. `None` when
/// the remote gives up before sending one (its dial was cancelled), which is no attempt at a
/// connection at all.
pub(super) async fn read_offer(mut stream: Stream) -> Option<(Stream, Result<String, Error>)> {
    let offer = with_timeout(async { Ok(read_signal(&mut stream).await?) }).await;
    match offer {
        Ok(signal) => Some((stream, expect(signal, SignalKind::Offer))),
        Err(e) => {
            tracing::debug!("a signalling stream ended before its offer: {e}");
            None
        }
    }
}

/// The rest of the responder's side, once the `offer` came on `stream`.
pub(super) async fn respond(
    mut stream: Stream,
    offer: String,
    ice_servers: &[String],
) -> Result<Connection, Error> {
    let watch = Watch::new(peer_connection(ice_servers)?);
    let mut candidates = Candidates::watch(&watch.pc);
    with_timeout(async {
        describe(&watch.pc, RtcSdpType::Offer, &offer, false).await?;
        send_local_description(&watch.pc, &mut stream, SignalKind::Answer).await?;
        exchange_candidates(&watch, &mut candidates, &mut stream).await
    })
    .await?;
    let _ = stream.close().await;
    drop(candidates);
    Ok(Connection::new(watch))
}
