//! A file's manifest: the list of its blocks, as a tree when the file is large, so no file is
//! too large for its manifest (one manifest block holds about 4,000 blocks' references, 4 GiB).
//!
//! A file of up to [`Settings::manifest_blocks`] blocks (2,048: 2 GiB) has one manifest that
//! lists them, sealed at [`META_POSITION`] and placed on [`Settings::meta_replicas`] peers, as
//! before trees. A larger file's blocks are listed [`Settings::manifest_blocks`] at a time in
//! *parts*, each a manifest of its own sealed at `PART_POSITION - i` and placed like the root;
//! the root then lists the parts instead of blocks. With 2,048 references per manifest a root
//! reaches 2,048 parts, 4 TiB; larger files are refused before anything is placed. A root with
//! parts has no `blocks` field at all, so a page from before trees refuses it as damaged
//! rather than read an empty file.

use super::*;

/// Position the first part is sealed at; part `i` at `PART_POSITION - i`. Data blocks count up
/// from 0 and never come near (2^63 blocks would be 8 ZiB).
pub(super) const PART_POSITION: u64 = u64::MAX - 1;

/// Where the position of a manifest part starts: every position from here up is a manifest,
/// a part or the index ([`Settings::copies_at`]).
pub(super) const FIRST_META_POSITION: u64 = u64::MAX / 2;

/// What a manifest lists: the file's blocks, or (a large file's root) its parts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// The blocks, in order; absent in a root with parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) blocks: Vec<BlockRef>,
    /// The parts, in order, each listing the next [`Settings::manifest_blocks`] blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) parts: Vec<BlockRef>,
}

/// A small file's sealed manifest, kept in its index entry ([`Settings::inline_manifest_bytes`]):
/// the very bytes a holder would keep, so its address is the entry's `manifest.id` and placing
/// it later (when the file is shared) puts it where a link's reader looks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct SealedManifest(#[serde(with = "crate::crypto::aead::serde_bytes_vec")] Vec<u8>);

#[cfg(all(test, not(target_arch = "wasm32")))]
impl SealedManifest {
    pub(super) fn for_tests(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

/// A file's manifest once stored: the root's address (and holders, when placed), the root
/// itself when it is kept inline instead, the parts, and the holders' receipts.
pub(super) struct StoredManifest {
    pub(super) root: BlockRef,
    pub(super) inline: Option<SealedManifest>,
    pub(super) parts: Vec<BlockRef>,
    pub(super) receipts: Vec<Placed>,
}

impl StoredManifest {
    /// The root as placed, if it was (a manifest kept inline has no holders to count or free).
    pub(super) fn placed_root(&self) -> Option<&BlockRef> {
        self.inline.is_none().then_some(&self.root)
    }
}

impl FileEntry {
    /// Whether the manifest is on holders (so audits challenge it, and a delete, a re-key or
    /// a password change frees or moves it): always, unless kept inline and never shared.
    pub(super) fn manifest_placed(&self) -> bool {
        self.manifest_inline.is_none() || !self.manifest.holders.is_empty()
    }
}

/// A file's blocks and the manifest parts that list them (none for a file of up to
/// [`Settings::manifest_blocks`] blocks); the root is the index entry's `manifest`.
#[derive(Debug, Default)]
pub(super) struct FileBlocks {
    pub(super) blocks: Vec<BlockRef>,
    pub(super) parts: Vec<BlockRef>,
}

impl FileBlocks {
    /// Every block and part, with the position each is sealed at.
    pub(super) fn positioned(&self) -> impl Iterator<Item = (&BlockRef, u64)> {
        let parts = self.parts.iter().zip((0u64..).map(|i| PART_POSITION - i));
        self.blocks.iter().zip(0u64..).chain(parts)
    }
}

/// The largest file a manifest tree holds, in bytes.
pub(super) fn max_file_bytes(settings: &Settings) -> u64 {
    let per_manifest = settings.manifest_blocks.max(1) as u64;
    per_manifest
        .saturating_mul(per_manifest)
        .saturating_mul(BLOCK_SIZE as u64)
}

/// Seals and places the manifest of `blocks` (parts first when there are more than
/// [`Settings::manifest_blocks`]); a root whose sealed bytes fit
/// [`Settings::inline_manifest_bytes`] is returned to be kept in the index entry instead of
/// placed. On failure, the parts already placed are freed (the caller frees the blocks).
pub(super) async fn store_manifest<N: Network>(
    drive: &Drive<N>,
    pledges: &[Pledge],
    key: &SymmetricKey,
    file: &FileId,
    blocks: &[BlockRef],
) -> Result<StoredManifest, FileError> {
    let per_manifest = drive.settings.manifest_blocks.max(1);
    let mut receipts = Vec::new();
    let mut parts = Vec::new();
    let root = if blocks.len() <= per_manifest {
        let root = Manifest {
            blocks: blocks.to_vec(),
            parts: Vec::new(),
        };
        let (id, sealed) = seal_block(key, file, META_POSITION, &encode(&root)?).await?;
        if sealed.len() <= drive.settings.inline_manifest_bytes {
            return Ok(StoredManifest {
                root: BlockRef {
                    id,
                    holders: Vec::new(),
                },
                inline: Some(SealedManifest(sealed)),
                parts,
                receipts,
            });
        }
        root
    } else {
        for (i, chunk) in blocks.chunks(per_manifest).enumerate() {
            let position = PART_POSITION - i as u64;
            let part = Manifest {
                blocks: chunk.to_vec(),
                parts: Vec::new(),
            };
            match place_manifest(drive, pledges, key, file, position, &part).await {
                Ok((part, placed)) => {
                    parts.push(part);
                    receipts.push(placed);
                }
                Err(e) => {
                    free_all(drive, &parts).await;
                    return Err(e);
                }
            }
        }
        Manifest {
            blocks: Vec::new(),
            parts: parts.clone(),
        }
    };
    match place_manifest(drive, pledges, key, file, META_POSITION, &root).await {
        Ok((root, placed)) => {
            receipts.push(placed);
            Ok(StoredManifest {
                root,
                inline: None,
                parts,
                receipts,
            })
        }
        Err(e) => {
            free_all(drive, &parts).await;
            Err(e)
        }
    }
}

/// Places a manifest kept inline (the same sealed bytes, so at the same address) on
/// [`Settings::meta_replicas`] peers: a share link or a letter names it to someone who cannot
/// open the index. Returns its holders and their receipts (for [`witness`]); `None` if it is
/// placed already.
pub(super) async fn place_inline_manifest<N: Network>(
    drive: &Drive<N>,
    entry: &FileEntry,
    pledges: &[Pledge],
) -> Result<Option<(BlockRef, Placed)>, FileError> {
    let Some(SealedManifest(bytes)) = &entry.manifest_inline else {
        return Ok(None);
    };
    let sealed = Outgoing {
        id: entry.manifest.id,
        bytes: bytes.clone(),
        position: META_POSITION,
    };
    let pledged = Pledged::ready(pledges.to_vec());
    // Not noted in the upload journal: the file is in the index already, and a share whose
    // commit fails frees what it placed.
    place_sealed(drive, &pledged, sealed, async {}, None)
        .await
        .map(Some)
}

async fn place_manifest<N: Network>(
    drive: &Drive<N>,
    pledges: &[Pledge],
    key: &SymmetricKey,
    file: &FileId,
    position: u64,
    manifest: &Manifest,
) -> Result<(BlockRef, Placed), FileError> {
    let (id, bytes) = seal_block(key, file, position, &encode(manifest)?).await?;
    let sealed = Outgoing {
        id,
        bytes,
        position,
    };
    let pledged = Pledged::ready(pledges.to_vec());
    place_sealed(drive, &pledged, sealed, drive.note(file, id), None).await
}

/// Notes in `index` the holders of manifests [`Drive::place_inline_manifests`] placed, on the
/// entries still naming them; returns those no entry names any more (a file deleted or re-keyed
/// meanwhile), to be freed.
pub(super) fn note_placed(index: &mut FileIndex, placed: &[BlockRef]) -> Vec<BlockRef> {
    let mut unnoted = Vec::new();
    for root in placed {
        let mut noted = false;
        for entry in index.files.iter_mut().filter(|f| f.manifest.id == root.id) {
            entry.manifest.holders = root.holders.clone();
            noted = true;
        }
        if !noted {
            unnoted.push(root.clone());
        }
    }
    unnoted
}

/// Fetches the manifest at `root` (or opens it from `inline`) and, for a large file, its parts
/// ([`Settings::pipeline`] at once): every block of the file, in order. Needs no account (a share
/// link's guest reads with it too). `name` names the file in errors.
pub(super) async fn load_blocks<N: Network>(
    client: &N,
    settings: &Settings,
    key: &SymmetricKey,
    file: &FileId,
    name: &str,
    root: &BlockRef,
    inline: Option<&SealedManifest>,
) -> Result<FileBlocks, FileError> {
    let unavailable = |index: u64| {
        move |attempts| FileError::Unavailable {
            name: name.to_owned(),
            index,
            attempts,
        }
    };
    let plain = match inline {
        // Checked against the address the entry names, as a fetched copy would be.
        Some(SealedManifest(sealed)) => open_block(key, file, META_POSITION, &root.id, sealed)
            .await
            .map_err(|e| FileError::Damaged(format!("the manifest of {name:?}: {e}")))?,
        None => fetch(client, settings, key, file, META_POSITION, root)
            .await
            .map_err(unavailable(META_POSITION))?,
    };
    let root: Manifest = decode(&plain)?;
    if root.parts.is_empty() {
        if root.blocks.is_empty() {
            return Err(FileError::Damaged(format!(
                "the manifest of {name:?} is empty"
            )));
        }
        return Ok(FileBlocks {
            blocks: root.blocks,
            parts: Vec::new(),
        });
    }
    if !root.blocks.is_empty() {
        return Err(FileError::Damaged(format!(
            "the manifest of {name:?} lists both blocks and parts"
        )));
    }
    let mut blocks = Vec::new();
    {
        // Futures made up front, not in the stream's closure: a stream of closures that
        // borrow does not prove `Send` to rustc when a native task (the password-change
        // upkeep) spawns it.
        let fetches: Vec<_> = (root.parts.iter().zip(0u64..))
            .map(|(part, i)| fetch(client, settings, key, file, PART_POSITION - i, part))
            .collect();
        let mut fetched = futures::stream::iter(fetches)
            .buffered(settings.pipeline.max(1))
            .zip(futures::stream::iter((0u64..).map(|i| PART_POSITION - i)));
        while let Some((plain, position)) = fetched.next().await {
            let part: Manifest = decode(&plain.map_err(unavailable(position))?)?;
            if part.blocks.is_empty() || !part.parts.is_empty() {
                return Err(FileError::Damaged(format!(
                    "a part of the manifest of {name:?} is not a list of blocks"
                )));
            }
            blocks.extend(part.blocks);
        }
    }
    Ok(FileBlocks {
        blocks,
        parts: root.parts,
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::fake::{download, drive, guest_reads, pattern, FakeNet, MIB};
    use super::*;

    /// A drive whose manifests list at most `blocks` blocks (so with 3, a 6-block file is a
    /// tree of 2 parts, and the largest file 9 blocks).
    async fn small_manifests(net: &FakeNet, blocks: usize) -> Drive<FakeNet> {
        let mut files = drive(net).await;
        files.settings.manifest_blocks = blocks;
        files
    }

    #[tokio::test]
    async fn a_file_larger_than_one_manifest_is_a_tree_that_every_operation_reads() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = small_manifests(&net, 3).await;
        let index_only = net.blocks_held().await.iter().sum::<u64>();
        let bytes = pattern((5 * MIB + 3) as usize, 7);
        let report = files
            .upload("big.iso", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert_eq!((report.file.copies, report.complete), (3, true));
        let (index, _, at, key) = entry_and_key(&files, &report.file.id).await.unwrap();
        let tree = manifest(&files, &index.files[at], &key).await.unwrap();
        assert_eq!((tree.blocks.len(), tree.parts.len()), (6, 2));
        assert!(tree.parts.iter().all(|p| p.holders.len() == 5));
        assert_eq!(download(&files, &report.file.id).await.unwrap(), bytes);

        // The audit challenges the root, every part and 4 blocks.
        let audit = files.audit().await.unwrap();
        assert_eq!(audit.blocks, 1 + 2 + 4);
        assert_eq!((audit.files_degraded, audit.files_at_risk), (0, 0));

        // A link reads the tree with no account; stopping sharing makes a new one.
        let link = files.share_link(&report.file.id, None).await.unwrap();
        assert_eq!(guest_reads(&net, &link).await.unwrap(), bytes);
        let now = files
            .revoke_links(&report.file.id, |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert_eq!(download(&files, &now.id).await.unwrap(), bytes);

        // A delete frees every block, part and root: 6 x 3 + 2 x 5 + 5 copies.
        files.frees_done().await;
        let before = net.blocks_held().await.iter().sum::<u64>();
        assert_eq!(files.delete(&now.id).await.unwrap(), 6 * 3 + 2 * 5 + 5);
        files.frees_done().await;
        let after = net.blocks_held().await.iter().sum::<u64>();
        assert_eq!(before - after, 33);
        assert!(after <= index_only + 5, "only the index is left");
    }

    /// A one-block file's manifest rides in its index entry: its upload stores the block and
    /// the index, not 5 more blobs, and walks once less; its download fetches no manifest;
    /// an audit challenges its block alone. Shared by link, the manifest is placed (the guest
    /// cannot open the index) at the address the entry names, noted, once; a delete then
    /// frees it too. A file whose manifest outgrows [`Settings::inline_manifest_bytes`] (6
    /// blocks) has it placed at upload, as before.
    #[tokio::test]
    async fn a_small_files_manifest_rides_in_its_index_entry_until_the_file_is_shared() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        files.frees_done().await;
        let (held, stores, walks) = (
            net.blocks_held().await.iter().sum::<u64>(),
            net.stores(),
            net.walks(),
        );
        let bytes = pattern(MIB as usize, 3);
        let report = files
            .upload("notes.txt", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        let upload_walks = net.walks() - walks;
        assert_eq!((report.file.copies, report.complete), (3, true));
        files.frees_done().await;
        // The block's 3 copies, the index riding in its record: 3 stores (8 with the index
        // placed, 13 with the manifest too); a walk for the block, not the manifest (nor the
        // index's record: its load heard its holders).
        assert_eq!(net.stores() - stores, 3);
        let index_only = held;
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), index_only + 3);
        let (index, _, at, key) = entry_and_key(&files, &report.file.id).await.unwrap();
        let entry = index.files[at].clone();
        assert!(entry.manifest_inline.is_some() && entry.manifest.holders.is_empty());
        assert_eq!(
            manifest(&files, &entry, &key).await.unwrap().blocks.len(),
            1
        );

        // The download fetches the one block, and no manifest.
        let fetches = net.fetches();
        assert_eq!(download(&files, &report.file.id).await.unwrap(), bytes);
        assert_eq!(net.fetches() - fetches, 1);
        let audit = files.audit().await.unwrap();
        assert_eq!((audit.blocks, audit.files_degraded), (1, 0));

        // Shared by link: placed on 5 peers, noted, read by a guest; a second link places
        // nothing more.
        let link = files.share_link(&report.file.id, None).await.unwrap();
        assert_eq!(
            link.manifest, entry.manifest.id,
            "placed where the entry says"
        );
        let (index, _, at, _) = entry_and_key(&files, &report.file.id).await.unwrap();
        assert_eq!(index.files[at].manifest.holders.len(), 5);
        assert_eq!(guest_reads(&net, &link).await.unwrap(), bytes);
        files.frees_done().await;
        let shared = net.blocks_held().await.iter().sum::<u64>();
        assert_eq!(shared - index_only, 3 + 5);
        files.share_link(&report.file.id, None).await.unwrap();
        files.frees_done().await;
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), shared);
        // Audited now with its manifest; deleted, both go.
        assert_eq!(files.audit().await.unwrap().blocks, 2);
        assert_eq!(files.delete(&report.file.id).await.unwrap(), 3 + 5);
        files.frees_done().await;
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), index_only);

        // Six blocks: too many references for 1 KiB (about 190 bytes a block), placed at upload.
        let (stores, walks) = (net.stores(), net.walks());
        let report = files
            .upload(
                "photos.zip",
                pattern((6 * MIB) as usize, 4).as_slice(),
                |_| ControlFlow::Continue(()),
            )
            .await
            .unwrap();
        let big_walks = net.walks() - walks;
        assert!(report.complete);
        assert_eq!(net.stores() - stores, 6 * 3 + 5);
        let (index, _, at, _) = entry_and_key(&files, &report.file.id).await.unwrap();
        assert!(index.files[at].manifest_inline.is_none());
        assert_eq!(index.files[at].manifest.holders.len(), 5);
        // The one-block file's walks, one for each further block and one for the manifest.
        assert_eq!(big_walks, upload_walks + 5 + 1);
    }

    #[tokio::test]
    async fn a_file_too_large_for_a_manifest_tree_is_refused_before_anything_is_placed() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let files = small_manifests(&net, 2).await;
        assert_eq!(max_file_bytes(&files.settings), 4 * MIB);
        let held = net.blocks_held().await.iter().sum::<u64>();
        let bytes = pattern((4 * MIB + 1) as usize, 1);
        let refused = files
            .upload("huge.bin", bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await;
        assert!(
            matches!(refused, Err(FileError::TooLarge { size, max }) if size == 4 * MIB + 1 && max == 4 * MIB),
            "{refused:?}"
        );
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), held);
        // The default tree holds 4 TiB.
        assert_eq!(max_file_bytes(&Settings::default()), 4 << 40);
    }

    #[test]
    fn a_root_with_parts_is_refused_by_a_reader_from_before_trees() {
        /// The manifest as pages before trees read it.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Before {
            blocks: Vec<BlockRef>,
        }
        let part = BlockRef {
            id: BlockId([1; 32]),
            holders: Vec::new(),
        };
        let root = Manifest {
            blocks: Vec::new(),
            parts: vec![part.clone()],
        };
        assert!(decode::<Before>(&encode(&root).unwrap()).is_err());
        let flat = Manifest {
            blocks: vec![part],
            parts: Vec::new(),
        };
        assert_eq!(
            decode::<Before>(&encode(&flat).unwrap())
                .unwrap()
                .blocks
                .len(),
            1
        );
    }
}
