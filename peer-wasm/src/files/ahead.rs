//! Committing ahead: an upload's manifest, and the index that lists it, are sealed and placed
//! while its last blocks are still on their way, on the holders the blocks' walks named; the
//! index's record is put once every block landed where foreseen. Placed after the blocks,
//! they cost a 1 MiB upload two walks and two stores in sequence (manifest 157 ms and commit
//! 187 ms of its 870 ms in the 8-tab cluster, session 29); placed ahead, and the record
//! signed ahead too (session 52), only the record's put follows the last block.
//!
//! A block that lands elsewhere (a peer refused it, or did not answer) makes what was placed
//! ahead garbage: it is freed in the background, and the manifest and index are placed after
//! the blocks as before. That costs two small placements (none for a manifest riding in the
//! index and an index riding in its record), never a wrong listing: nothing points at them
//! until the record does.

use std::collections::BTreeMap;

use futures::channel::{mpsc, oneshot};

use super::*;

/// Each block's expected holders, as [`place_blocks`] hears them from the walks.
pub(super) struct Foreseen {
    heard: mpsc::UnboundedReceiver<(u64, BlockRef)>,
    /// The blocks the file has: its size in whole blocks (an empty file is one).
    count: u64,
}

impl Foreseen {
    /// What `heard` will tell of a file of `size` bytes.
    pub(super) fn new(heard: mpsc::UnboundedReceiver<(u64, BlockRef)>, size: u64) -> Self {
        Self {
            heard,
            count: size.div_ceil(BLOCK_SIZE as u64).max(1),
        }
    }

    /// Every block in order, once each one's walk is done; `None` if the placing ended first
    /// (a failure or a cancel) or named a block past the count (a file that changed size).
    async fn blocks(mut self) -> Option<Vec<BlockRef>> {
        let mut blocks = BTreeMap::new();
        while (blocks.len() as u64) < self.count {
            let (position, block) = self.heard.next().await?;
            if position >= self.count {
                return None;
            }
            blocks.insert(position, block);
        }
        Some(blocks.into_values().collect())
    }
}

/// What an upload placed ahead: the manifest of its blocks as foreseen, and an index listing
/// the file, not yet published.
pub(super) struct Ahead {
    /// The blocks as foreseen: what the manifest lists.
    blocks: Vec<BlockRef>,
    manifest: StoredManifest,
    copies: u32,
    index: PreparedIndex,
}

impl Ahead {
    /// Frees everything placed ahead, in the background.
    async fn discard<N: Network>(self, drive: &Drive<N>) {
        free_in_background(drive, placed_manifest(self.manifest)).await;
        self.index.discard(drive).await;
    }
}

/// The blobs of a stored manifest that are on holders: its parts, and its root unless kept
/// inline.
fn placed_manifest(manifest: StoredManifest) -> Vec<BlockRef> {
    let root = manifest.inline.is_none().then_some(manifest.root);
    manifest.parts.into_iter().chain(root).collect()
}

/// How an upload's index is committed once its blocks are placed.
pub(super) enum Commit {
    /// Publish the index prepared ahead.
    Ahead(PreparedIndex),
    /// Change the index as it was reloaded while the manifest was placed.
    Now(Result<LoadedIndex, FileError>),
}

/// How long the index an upload's quota check loaded stands in for the reload its commit
/// ahead would do: 2 s. The reload is there for another browser's save while a long upload
/// was on its way; a small file's blocks are all walked for within a few hundred ms of that
/// load (one block: 23 to 88 ms after it in the 8-tab cluster, session 45), and a second
/// lookup then costs a DHT walk (8 requests at 8 tabs, about 45 at 1,000 peers) to read the
/// same record. A save that lands in between is caught all the same: the record's holders
/// refuse a sequence that is not above theirs, and the commit reloads and goes again
/// ([`commit_index`]).
pub(super) const CHECKED_INDEX_FRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// The index as an upload's quota check loaded it (with this browser's pledge in), and when.
pub(super) type Checked = (LoadedIndex, web_time::Instant);

/// Places the manifest of the blocks as `foreseen` and prepares the index `change` makes
/// (given the manifest and the fewest copies of any block), as soon as every block's walk is
/// done and the quota check passed. The index changed is the quota check's (`checked`) if it
/// is at most [`CHECKED_INDEX_FRESH`] old, else reloaded. `None` (with anything placed freed)
/// if the blocks were never all foreseen, or the manifest or the index could not be placed.
pub(super) async fn commit_ahead<N: Network>(
    drive: &Drive<N>,
    foreseen: Foreseen,
    pledged: &Pledged,
    checked: oneshot::Receiver<Checked>,
    key: &SymmetricKey,
    file: &FileId,
    change: impl FnOnce(&mut FileIndex, &BlockRef, Option<&SealedManifest>, u32),
) -> Option<Ahead> {
    let blocks = foreseen.blocks().await?;
    // Known once the index loaded and the upload fits the quota: nothing is placed before.
    let pledges = pledged.get().await.ok()?;
    let reloaded = async {
        // Sent before the pledges: here by now if the check passed.
        match checked.await {
            Ok((loaded, at)) if at.elapsed() <= CHECKED_INDEX_FRESH => Ok(loaded),
            _ => load_index(drive).await,
        }
    };
    let (manifest, reloaded) = futures::join!(
        store_manifest(drive, &pledges, key, file, &blocks),
        reloaded
    );
    let manifest = manifest.ok()?;
    let copies = fewest_copies(&blocks, &manifest);
    let index = match reloaded {
        Ok((mut index, previous)) => {
            change(&mut index, &manifest.root, manifest.inline.as_ref(), copies);
            prepare_index(drive, &index, previous.as_ref()).await
        }
        Err(e) => Err(e),
    };
    match index {
        Ok(index) => Some(Ahead {
            blocks,
            manifest,
            copies,
            index,
        }),
        Err(e) => {
            tracing::debug!("the index was not prepared ahead: {e}");
            free_in_background(drive, placed_manifest(manifest)).await;
            None
        }
    }
}

/// An upload's step after its blocks: the manifest and index placed `ahead` if every block
/// landed where foreseen; otherwise what was placed ahead is freed, and the manifest is placed
/// now with the index reloaded alongside ([`Drive::finish_file`]). `started`: when the first
/// block was read.
pub(super) async fn finish_upload<N: Network>(
    drive: &Drive<N>,
    file: &FileId,
    key: &SymmetricKey,
    pledged: &Pledged,
    started: web_time::Instant,
    placed: PlacedBlocks,
    ahead: Option<Ahead>,
) -> Result<(Stored, Commit), FileError> {
    match (placed, ahead) {
        (Ok((blocks, mut receipts, size)), Some(ahead)) if blocks == ahead.blocks => {
            let StoredManifest {
                root,
                inline,
                parts,
                receipts: manifest_receipts,
            } = ahead.manifest;
            receipts.extend(manifest_receipts);
            let stored = Stored {
                manifest: root,
                manifest_inline: inline,
                copies: ahead.copies,
                size,
                receipts,
                blocks,
                parts,
                blocks_ms: started.elapsed().as_millis() as u64,
                manifest_ms: 0,
                ahead: true,
            };
            Ok((stored, Commit::Ahead(ahead.index)))
        }
        (placed, ahead) => {
            if let Some(ahead) = ahead {
                tracing::debug!("a block landed off its walk's peers: placed ahead, freed");
                ahead.discard(drive).await;
            }
            let (stored, reloaded) = drive
                .finish_file(file, key, placed, pledged, started, load_index(drive))
                .await?;
            Ok((stored, Commit::Now(reloaded)))
        }
    }
}

/// The fewest holders any of a file's blocks, manifest parts or manifest has (a manifest kept
/// inline counts as the index's copies, not here): the copies its index entry claims.
pub(super) fn fewest_copies(blocks: &[BlockRef], manifest: &StoredManifest) -> u32 {
    blocks
        .iter()
        .chain(&manifest.parts)
        .chain(manifest.placed_root())
        .map(|b| b.holders.len() as u32)
        .min()
        .unwrap_or(0)
}
