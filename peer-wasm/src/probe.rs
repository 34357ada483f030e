//! Transport probes: the benchmarks' baseline. They move the same bytes between the same peers
//! over the same connections as an upload or a download, in the same pattern (blocks of
//! [`BLOCK_SIZE`], each to every holder, as many blocks in flight up as an upload's
//! [`Settings::pipeline`]; one block at a time down), with none of Jellyfish's work: no sealing, signing, DHT lookups or IndexedDB.
//! The gap between a probe and the real operation is what Jellyfish's logic costs.

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

/// Fetches `size` bytes from `peer` one block at a time, as a download does.
pub async fn pull(client: &Client, peer: PeerId, size: u64) -> Result<(), NetError> {
    let mut done = 0;
    while done < size {
        let len = (size - done).min(BLOCK_SIZE as u64) as u32;
        match client.request(peer, Request::Fill { len }).await? {
            Response::Block { bytes } if bytes.len() == len as usize => done += len as u64,
            other => return Err(unexpected(peer, other)),
        }
    }
    Ok(())
}
