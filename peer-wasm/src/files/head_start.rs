//! A download's head start: the index is reloaded (is the file still there?) while the entry
//! this tab saw last gives its manifest and first blocks, fetched meanwhile. A file's manifest
//! never changes under its id, and no block is handed on before the reloaded index lists the
//! file with that manifest: a file deleted in another browser is `no_such_file`, as without
//! the head start. The reload took 267 to 574 ms in the 8-tab cluster after an upload
//! (docs/PERFORMANCE.md, session 29).

use std::collections::VecDeque;

use futures::future::{select, Either};
use web_time::Instant;

use super::*;

/// A download's file as the reloaded index lists it, and where its blocks come from.
pub(super) struct Confirmed<'a> {
    pub(super) entry: FileEntry,
    /// Blocks fetched while the index reloaded, handed on before the rest of `fetched`.
    pub(super) ready: VecDeque<FetchedBlock>,
    pub(super) fetched: Fetched<'a>,
    /// When the index was in, and then the manifest (the same instant after a head start).
    pub(super) index_loaded: Instant,
    pub(super) manifest_loaded: Instant,
}

/// Reloads the index for `file` (`id` as the page gave it), starting the blocks of the entry
/// this tab saw last meanwhile; returns them only if the reloaded index lists that manifest.
pub(super) async fn confirmed<'a, N: Network>(
    drive: &'a Drive<N>,
    id: &str,
    file: FileId,
) -> Result<Confirmed<'a>, FileError> {
    let (client, settings) = (&drive.client, &drive.settings);
    let reloaded = async {
        let (mut index, _, at, key) = entry_and_key(drive, id).await?;
        Ok::<_, FileError>((index.files.swap_remove(at), key, Instant::now()))
    };
    let head_start = async {
        let cached = cached_entry(drive, &file)?;
        let key = open_file_key(&drive.session, &cached).await.ok()?;
        let blocks = manifest(drive, &cached, &key).await.ok()?;
        let fetched = fetch_stream(client, settings, key, file, blocks.blocks);
        Some((cached.manifest, fetched))
    };
    let mut reloaded = std::pin::pin!(reloaded);
    let (reload, head_start) = match select(reloaded.as_mut(), std::pin::pin!(head_start)).await {
        // The reload was first: what the head start has fetched is worth waiting for only if
        // the file is still there.
        Either::Left((reload, head_start)) => {
            let head_start = match &reload {
                Ok(_) => head_start.await,
                Err(_) => None,
            };
            (reload, head_start.map(|(m, f)| (m, f, VecDeque::new())))
        }
        Either::Right((None, _)) => (reloaded.await, None),
        // At most a pipeline's worth of blocks wait for the index.
        Either::Right((Some((manifest, mut fetched)), _)) => {
            let most = settings.pipeline.max(1);
            let (reload, ready) = fetch_until(reloaded.as_mut(), &mut fetched, most).await;
            (reload, Some((manifest, fetched, ready)))
        }
    };
    let (entry, key, index_loaded) = reload?;
    match head_start {
        // The same manifest (its holders may have been noted since, when it was shared).
        Some((manifest, fetched, ready)) if manifest.id == entry.manifest.id => Ok(Confirmed {
            entry,
            ready,
            fetched,
            index_loaded,
            manifest_loaded: index_loaded,
        }),
        _ => {
            let blocks = manifest(drive, &entry, &key).await?;
            let manifest_loaded = Instant::now();
            let fetched = fetch_stream(client, settings, key, file, blocks.blocks);
            Ok(Confirmed {
                entry,
                ready: VecDeque::new(),
                fetched,
                index_loaded,
                manifest_loaded,
            })
        }
    }
}

/// Fetches from `fetched` until `until` is done, keeping at most `most` blocks: what a
/// download fetches ahead while its index reloads. Returns `until`'s output and the blocks.
async fn fetch_until<T>(
    until: impl std::future::Future<Output = T>,
    fetched: &mut Fetched<'_>,
    most: usize,
) -> (T, VecDeque<FetchedBlock>) {
    let mut ready = VecDeque::new();
    let mut until = std::pin::pin!(until);
    while ready.len() < most {
        match select(until.as_mut(), fetched.next()).await {
            Either::Left((done, _)) => return (done, ready),
            Either::Right((Some(block), _)) => ready.push_back(block),
            Either::Right((None, _)) => break,
        }
    }
    (until.await, ready)
}
