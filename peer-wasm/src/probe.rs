//! Transport probes: the benchmarks' baseline. They move the same bytes between the same peers
//! over the same connections as an upload or a download, in the same pattern (blocks of
//! [`BLOCK_SIZE`], each to every holder, as many blocks in flight up as an upload's
//! [`Settings::pipeline`]; down, as many blocks at once from peers in turn), with none of
//! Jellyfish's work: no sealing, signing, DHT lookups or IndexedDB. The gap between a probe and the
//! real operation is what Jellyfish's logic costs.

use futures::{future::try_join_all, StreamExt, TryStreamExt};
use libp2p::PeerId;

use crate::{
    block::BLOCK_SIZE,
    files::Settings,
    net::{Client, NetError},
    protocol::{Request, Response},
};

fn unexpected(peer: PeerId, answer: Response) -> NetError {
    NetError::Request {
        peer,
        reason: format!("unexpected answer to a probe: {answer:?}"),
    }
}

/// Sends `size` bytes to every one of `peers`, as an upload with `peers.len()` copies would.
pub async fn push(client: &Client, peers: &[PeerId], size: u64) -> Result<(), NetError> {
    let chunks = size.div_ceil(BLOCK_SIZE as u64);
    futures::stream::iter(0..chunks)
        .map(|i| {
            let len = (size - i * BLOCK_SIZE as u64).min(BLOCK_SIZE as u64) as usize;
            let sends = peers.iter().map(move |peer| async move {
                let payload = vec![0; len];
                match client.request(*peer, Request::Discard { payload }).await? {
                    Response::Discarded => Ok(()),
                    other => Err(unexpected(*peer, other)),
                }
            });
            try_join_all(sends)
        })
        .buffered(Settings::default().pipeline)
        .try_collect::<Vec<_>>()
        .await
        .map(|_| ())
}

/// Fetches `size` bytes a block at a time from `peers` in turn (block `i` from peer `i` mod
/// their number), `in_flight` blocks at once and handed on in order, as a download fetches
/// (`Settings::pipeline` blocks at once, each from its own holders); `in_flight` 1 is one
/// request at a time, one stream's pattern.
pub async fn pull(
    client: &Client,
    peers: &[PeerId],
    size: u64,
    in_flight: usize,
) -> Result<(), NetError> {
    let Some(&first) = peers.first() else {
        return Ok(());
    };
    let chunks = size.div_ceil(BLOCK_SIZE as u64);
    futures::stream::iter(0..chunks)
        .map(|i| {
            let len = (size - i * BLOCK_SIZE as u64).min(BLOCK_SIZE as u64) as u32;
            let peer = peers.get((i % peers.len() as u64) as usize).copied();
            let peer = peer.unwrap_or(first);
            async move {
                match client.request(peer, Request::Fill { len }).await? {
                    Response::Block { bytes } if bytes.len() == len as usize => Ok(()),
                    other => Err(unexpected(peer, other)),
                }
            }
        })
        .buffered(in_flight.max(1))
        .try_collect::<Vec<_>>()
        .await
        .map(|_| ())
}
