//! The file index: finding and opening it (the record, then the sealed root it carries or
//! points at), and committing a change to it (reload, apply, seal, place, sign a new record;
//! again on a conflict with another browser).
//!
//! A small index rides sealed in the account's record itself ([`IndexPointer`], up to
//! [`Settings::inline_index_bytes`], 5 KiB: 8 files of one block measured): the record is put
//! at every save anyway, so a save stores nothing else and a load fetches nothing else.
//! Larger, its root is a sealed blob placed on [`Settings::meta_replicas`] peers and the
//! record names it. An index of up to [`Settings::index_page_files`] files (256) is one root. A
//! larger one is a *root* (the donations, what others shared, and a list of pages) and *pages*: the
//! files whose ids (random) start with the same `depth` bits, about 256 to a page, each page a
//! sealed blob placed like the root. A save re-seals only the pages whose content changed (the root
//! keeps each page's plaintext digest), so adding or removing a file stores one page and the root
//! whatever the number of files, and a load fetches the root and only the pages this tab has not
//! seen ([`IndexCache`]). The depth grows by one when pages average twice the target and shrinks
//! when they average a quarter, so a file added and removed at the edge does not re-seal every
//! page. Measured (10,000 files, 5 holders a file): a root of 64 pages is 28 KB, a page 80 KB; as
//! one blob the index would be 5.2 MB, past a block. The root names a page in about 400 bytes; past
//! 1,024 pages, pages grow instead (up to a block), so an index holds about 4 million files, far
//! more than a tab keeps in memory (about 500 bytes a file; a file whose manifest rides in its
//! entry, [`Settings::inline_manifest_bytes`], about as much for one block and up to 1.2 KB for
//! five); a save past that is refused with [`FileError::IndexFull`].

use std::collections::BTreeMap;

use super::*;
use crate::crypto::rsa_keys::PublicKey;

/// One page of a large index: the files whose ids start with `bucket`'s `depth` bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PageRef {
    depth: u8,
    bucket: u32,
    /// SHA-256 of the page's plaintext: a save reuses a page whose content is unchanged.
    digest: [u8; 32],
    blob: BlockRef,
}

/// The body of the account's `FileIndex` record: the index's root, sealed, riding in the
/// record itself while it is small ([`Settings::inline_index_bytes`]), else where its blob is
/// placed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct IndexPointer {
    /// Where the sealed root is placed, when it does not ride in the record. A page from before
    /// inline roots requires this field: it refuses a record whose root rides inline as
    /// damaged (a reload gives it this code) rather than take it for no index, or save over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob: Option<BlockRef>,
    /// The sealed root itself: the very bytes a blob holder would keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<SealedRoot>,
}

/// A root's sealed bytes, as they ride in the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct SealedRoot(#[serde(with = "crate::crypto::aead::serde_bytes_vec")] Vec<u8>);

impl IndexPointer {
    pub(super) fn placed(blob: BlockRef) -> Self {
        Self {
            blob: Some(blob),
            sealed: None,
        }
    }

    pub(super) fn inline(sealed: Vec<u8>) -> Self {
        Self {
            blob: None,
            sealed: Some(SealedRoot(sealed)),
        }
    }
}

/// Decodes the index's record body, root or a page. One this code cannot read was either
/// damaged or written by a newer version in another browser of the user's (as a riding root
/// or an unplaced inline manifest are refused by pages from before them): the error says to
/// reload, which brings the newer code, rather than only "damaged".
/// What an index this code cannot read may mean, for the page to say.
const NEWER: &str = "(if another browser of yours runs a newer Jellyfish, reload this page)";

fn decode_newer<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FileError> {
    decode(bytes).map_err(|e| match e {
        FileError::Damaged(why) => FileError::Damaged(format!("{why} {NEWER}")),
        other => other,
    })
}

/// How long the peers a lookup of the index record heard stand in for a walk to its holders
/// when the next index is prepared: 60 s (an upload prepares its commit when every block was
/// walked for, and puts it once they are stored, as it did with a walk's peers). Every save follows
/// a load (a commit reloads the index, an upload's quota check loads it), so a save puts the record
/// where that load heard it and walks no more: a walk of 8 requests less per save in the 8-tab
/// cluster, about 45 requests and 1.3 s at 1,000 peers (the simulation), which a small upload
/// waited for after its block. Older, or too few peers heard, and the save walks.
const NEAR_FRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// Where the account's index record goes: the peers its last lookup heard nearest its key
/// ([`NEAR_FRESH`]), else those a walk finds.
async fn record_peers<N: Network>(drive: &Drive<N>) -> Result<Vec<PeerId>, NetError> {
    let account = drive.session.account();
    match drive.index_cache.near(&account) {
        Some(peers) => Ok(peers),
        None => {
            let key = dht_key(RecordKind::FileIndex, &account);
            drive.client.closest_peers(key).await
        }
    }
}

/// The root `pointer` names, and the address of its sealed bytes (the key [`IndexCache`] knows
/// it by): opened from the record when it rides there (with the user key or one from before
/// a password change), else fetched from its holders, unless this tab has it already.
async fn open_root<N: Network>(
    drive: &Drive<N>,
    keys: &[&SymmetricKey],
    pointer: &IndexPointer,
) -> Result<(BlockId, Vec<u8>), FileError> {
    let file = index_file_id(&drive.session);
    let damaged = |why: String| FileError::Damaged(format!("the index does not open: {why}"));
    if pointer.sealed.is_some() && pointer.blob.is_some() {
        // A page from before would read the blob, this one the root: never written so.
        return Err(damaged(
            "its record names a root and carries another".into(),
        ));
    }
    if let Some(SealedRoot(sealed)) = &pointer.sealed {
        let id = BlockId::of(sealed);
        if let Some(plain) = drive.index_cache.root(&id) {
            return Ok((id, plain));
        }
        let plain = open_with_keys(keys, &file, META_POSITION, &id, sealed).await;
        return plain
            .map(|plain| (id, plain))
            .map_err(|e| damaged(e.to_string()));
    }
    let Some(blob) = &pointer.blob else {
        return Err(damaged(format!("its record names no root {NEWER}")));
    };
    if let Some(plain) = drive.index_cache.root(&blob.id) {
        return Ok((blob.id, plain));
    }
    let plain = fetch_with(
        &drive.client,
        &drive.settings,
        keys,
        &file,
        META_POSITION,
        blob,
        &SlowPeers::default(),
    )
    .await
    .map_err(|attempts| {
        // Copies that all fail to open are damage (or a key this session lacks), not absence:
        // trying again later would not help.
        if attempts.all_bad_copies() {
            damaged(attempts.to_string())
        } else {
            FileError::IndexUnavailable(attempts)
        }
    })?;
    Ok((blob.id, plain))
}

/// What this tab has seen of the account's index, so a load fetches only what another browser
/// changed since. The pages it opened or sealed, by the SHA-256 of their plaintext (which the
/// root names): adding a file to an index of 10,000 files fetches one root, not 64 pages;
/// only the pages the newest root names are kept (about 200 KiB a 1,000 files). And the
/// newest root's plaintext, by the address of its sealed bytes (which the record names or
/// carries): the
/// reload before every commit, and every load after this tab's own save, fetch nothing while
/// no other browser saved (a request round trip and an open saved on each).
///
/// And the newest version (record sequence number) of each account's index it read or wrote,
/// with the key that signed it: a record heard later that is older comes from holders that
/// missed a save, and is not taken for the index ([`FileError::IndexBehind`]). A record of the
/// session's current key is not held against a number an earlier key signed (readers take the
/// current key's record over an earlier key's whatever its number: a browser still on the old
/// key may have saved past it), and once the current key's was seen an earlier key's record is
/// behind whatever its number ([`FileError::IndexBeforeChange`]). A riding root opens from any
/// copy of its record, stale or not, where a stale record's placed root had usually been freed.
#[derive(Default)]
pub struct IndexCache {
    pages: std::sync::Mutex<BTreeMap<[u8; 32], Vec<FileEntry>>>,
    root: std::sync::Mutex<Option<(BlockId, Vec<u8>)>>,
    seen: std::sync::Mutex<BTreeMap<[u8; 32], Seen>>,
    /// The peers the last lookup of an account's index record heard nearest its key, and when:
    /// the holders its next version goes to ([`record_peers`]).
    near: std::sync::Mutex<Option<HeardNear>>,
}

/// The newest version of an account's index a tab read or wrote, and the key that signed it.
#[derive(Clone)]
struct Seen {
    seq: u64,
    owner: PublicKey,
}

impl Seen {
    /// Why `heard` (what a lookup found, if anything) cannot be taken for the index this tab
    /// has seen, for `session`; `None` when it can. Numbers are compared between records of
    /// one key (and, as ever, between two earlier keys'): readers take the current key's
    /// record over an earlier key's whatever its number (a browser still on the old key may
    /// have saved past it), and an earlier key's record, once this tab has seen the current
    /// key's, comes from holders that missed every save since the password changed.
    fn behind(&self, heard: Option<&VerifiedRecord>, session: &Session) -> Option<FileError> {
        let current = session.public_key();
        let seen = self.seq;
        let older = |heard: u64| (heard < seen).then_some(FileError::IndexBehind { seen, heard });
        match heard {
            None => older(0),
            Some(heard) if heard.owner() == &self.owner => older(heard.record().seq),
            Some(heard) if heard.owner() == &current => None,
            Some(_) if self.owner == current => Some(FileError::IndexBeforeChange { seen }),
            Some(heard) => older(heard.record().seq),
        }
    }

    /// Whether version `seq` of the index, signed by `owner` and read or written by `session`,
    /// replaces this: a higher number of the same key; the current key's over an earlier key's
    /// of the session's (never over a key it does not know: a later one, which a session from
    /// before a password change in this tab does not); an earlier key's never over the current
    /// key's; and between two earlier keys, a higher number.
    fn replaced_by(&self, seq: u64, owner: &PublicKey, session: &Session) -> bool {
        let current = session.public_key();
        if owner == &self.owner {
            seq > self.seq
        } else if owner == &current {
            session.is_own_key(&self.owner)
        } else {
            self.owner != current && seq > self.seq
        }
    }
}

/// Whose index record a lookup heard peers near, when, and the peers, nearest first.
type HeardNear = ([u8; 32], web_time::Instant, Vec<PeerId>);

impl IndexCache {
    fn page(&self, digest: &[u8; 32]) -> Option<Vec<FileEntry>> {
        self.pages.lock().ok()?.get(digest).cloned()
    }

    fn insert_page(&self, digest: [u8; 32], files: Vec<FileEntry>) {
        if let Ok(mut pages) = self.pages.lock() {
            pages.insert(digest, files);
        }
    }

    /// Forgets every page `root` does not name.
    fn keep_only(&self, root: &[PageRef]) {
        if let Ok(mut pages) = self.pages.lock() {
            pages.retain(|digest, _| root.iter().any(|p| &p.digest == digest));
        }
    }

    /// The root's plaintext, if `blob` is the root this tab saw last.
    fn root(&self, blob: &BlockId) -> Option<Vec<u8>> {
        let root = self.root.lock().ok()?;
        root.as_ref()
            .filter(|(id, _)| id == blob)
            .map(|(_, plain)| plain.clone())
    }

    /// The plaintext of the root this tab saw last, whichever it is.
    fn newest_root(&self) -> Option<Vec<u8>> {
        let root = self.root.lock().ok()?;
        root.as_ref().map(|(_, plain)| plain.clone())
    }

    /// The newest version of `account`'s index this tab read or wrote, if any.
    fn seen(&self, account: &crate::record::AccountId) -> Option<Seen> {
        self.seen.lock().ok()?.get(&account.0).cloned()
    }

    /// Notes that `session` read or wrote version `seq` of its account's index, signed by
    /// `owner`, where it is newer than what was seen ([`Seen::replaced_by`]).
    fn saw(&self, session: &Session, seq: u64, owner: &PublicKey) {
        if let Ok(mut seen) = self.seen.lock() {
            let account = session.account().0;
            let newer = seen
                .get(&account)
                .is_none_or(|had| had.replaced_by(seq, owner, session));
            if newer {
                let owner = owner.clone();
                seen.insert(account, Seen { seq, owner });
            }
        }
    }

    fn heard_near(&self, account: &crate::record::AccountId, peers: Vec<PeerId>) {
        if let Ok(mut near) = self.near.lock() {
            *near = Some((account.0, web_time::Instant::now(), peers));
        }
    }

    /// The peers heard nearest `account`'s index record within [`NEAR_FRESH`], if at least
    /// [`crate::net::SILENCE_QUORUM`] of them.
    fn near(&self, account: &crate::record::AccountId) -> Option<Vec<PeerId>> {
        let near = self.near.lock().ok()?;
        let (of, heard, peers) = near.as_ref()?;
        let fresh = *of == account.0 && heard.elapsed() < NEAR_FRESH;
        (fresh && peers.len() >= crate::net::SILENCE_QUORUM).then(|| peers.clone())
    }

    fn set_root(&self, blob: BlockId, plain: Vec<u8>) {
        if let Ok(mut root) = self.root.lock() {
            *root = Some((blob, plain));
        }
    }
}

/// What a page holds.
#[derive(Serialize, Deserialize)]
struct IndexPage {
    #[serde(alias = "entries")]
    files: Vec<FileEntry>,
}

/// Whether entries are written under `entries` rather than `files`: when one of them has a
/// manifest that rides inline and was never placed ([`Settings::inline_manifest_bytes`]). A
/// page from before inline manifests knows no `inline` field and would save such an entry
/// again without it, losing the file; it requires `files`, so it refuses such a page or root
/// as damaged instead, and a reload gives it the new code.
fn under_entries<'a>(mut files: impl Iterator<Item = &'a FileEntry>) -> bool {
    files.any(|f| !f.manifest_placed())
}

/// [`IndexPage`] as written, borrowing the entries.
#[derive(Serialize)]
struct PageOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<&'a FileEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<&'a FileEntry>>,
}

impl<'a> PageOut<'a> {
    fn of(files: Vec<&'a FileEntry>) -> Self {
        match under_entries(files.iter().copied()) {
            true => Self {
                files: None,
                entries: Some(files),
            },
            false => Self {
                files: Some(files),
                entries: None,
            },
        }
    }
}

/// Entries of a root as written: under `files` or `entries` ([`under_entries`]).
fn root_files(files: &[FileEntry]) -> (Option<&[FileEntry]>, Option<&[FileEntry]>) {
    match under_entries(files.iter()) {
        true => (None, Some(files)),
        false => (Some(files), None),
    }
}

/// The root as written: [`FileIndex`]'s fields, with no files when there are pages (entries
/// under `files` or `entries`, [`under_entries`]).
#[derive(Serialize)]
struct RootOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<&'a [FileEntry]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<&'a [FileEntry]>,
    donations: &'a BTreeMap<String, Pledge>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    received: &'a BTreeMap<String, Received>,
    #[serde(skip_serializing_if = "<[PageRef]>::is_empty")]
    pages: &'a [PageRef],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    owed: &'a BTreeMap<String, u64>,
}

/// The depth `files` files are paged at, given the depth the index had (`None`: one blob) and
/// `per_page`, the target: none up to `per_page` files (or half of it, once paged). A new
/// paging starts at the smallest depth at which pages average at most the target; after
/// that the depth moves one step at a time, only when pages average more than twice the
/// target or less than a quarter of it, so one file either way at an edge re-seals one page,
/// not every page.
fn paging_depth(files: usize, had: Option<u8>, per_page: usize) -> Option<u8> {
    let per_page = per_page.max(1);
    let limit = if had.is_some() {
        per_page / 2
    } else {
        per_page
    };
    if files <= limit {
        return None;
    }
    let average = |depth: u8| files >> depth;
    let mut depth = match had {
        Some(depth) => depth.min(32),
        None => (0..32).find(|&d| average(d) <= per_page).unwrap_or(32),
    };
    while depth < 32 && average(depth) > 2 * per_page {
        depth += 1;
    }
    while depth > 0 && average(depth) * 4 < per_page {
        depth -= 1;
    }
    Some(depth)
}

/// Pages a root lists at most while it keeps its target: 1,024 (the root about 400 KiB, under half
/// a block). Past that pages hold more files instead, up to a block each, about 2,000.
const ROOT_PAGES: usize = 1024;

/// Files a page of an index of `files` files holds on average: `per_page`, or more, so that
/// the root lists at most [`ROOT_PAGES`] pages. A root lists about 2,700 pages in one block
/// and a page holds about 2,000 files, so an index holds about 4 million files (paged at
/// depth 11), many more than a tab keeps in memory.
fn page_target(files: usize, per_page: usize) -> usize {
    per_page.max(files / ROOT_PAGES)
}

/// The page of depth `depth` a file belongs to: its id's first `depth` bits.
fn bucket_of(id: &FileId, depth: u8) -> u32 {
    let prefix = u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]);
    match depth {
        0 => 0,
        d => prefix >> (32 - u32::from(d.min(32))),
    }
}

/// The files of a large index's pages: from this tab's copies where it has them, the others
/// fetched (8 at once) and each checked against the digest its root names.
async fn load_pages<N: Network>(
    drive: &Drive<N>,
    keys: &[&SymmetricKey],
    pages: &[PageRef],
) -> Result<Vec<FileEntry>, FileError> {
    let (client, settings, known) = (&drive.client, &drive.settings, &drive.index_cache);
    let file = index_file_id(&drive.session);
    let fetches: Vec<_> = pages
        .iter()
        .map(|page| async {
            if let Some(files) = known.page(&page.digest) {
                return Ok(files);
            }
            let plain = fetch_with(
                client,
                settings,
                keys,
                &file,
                META_POSITION,
                &page.blob,
                &SlowPeers::default(),
            )
            .await
            .map_err(|attempts| match attempts.all_bad_copies() {
                true => FileError::Damaged(format!("an index page does not open: {attempts}")),
                false => FileError::IndexUnavailable(attempts),
            })?;
            if sha256(&plain) != page.digest {
                return Err(FileError::Damaged(
                    "an index page is not the one its root names".into(),
                ));
            }
            let files = decode_newer::<IndexPage>(&plain)?.files;
            known.insert_page(page.digest, files.clone());
            Ok(files)
        })
        .collect();
    let mut fetched = futures::stream::iter(fetches).buffered(8);
    let mut files = Vec::new();
    while let Some(page) = fetched.next().await {
        files.extend(page?);
    }
    Ok(files)
}

/// Times a change is applied to the newest index when another writer (another browser of the
/// user, or this tab's own upkeep) saved in between.
pub(super) const COMMIT_ATTEMPTS: usize = 3;

/// The account's index, and the record that points at it (if any). After a password change
/// not yet finished ([`Drive::finish_rotation`]) the record is an earlier key's and the index is
/// sealed under an earlier user key. Pledges for any other owner than the session's key are
/// dropped: holders would not count them.
pub(super) async fn load_index<N: Network>(drive: &Drive<N>) -> Result<LoadedIndex, FileError> {
    let (client, session) = (&drive.client, &*drive.session);
    let owner = session.public_key();
    // A lookup that heard too few peers to tell whether the index exists goes again, with
    // growing pauses, for up to `network_wait` (as log-in does): right after a holder tab closed,
    // the routing table still names it and a lookup can hear two live peers of the three it
    // needs, and an upload must not fail for that.
    // So does one that heard only holders of an older index than this tab saw.
    let account = session.account();
    let key = dht_key(RecordKind::FileIndex, &account);
    let deadline = web_time::Instant::now() + drive.settings.network_wait;
    let mut pause = crate::account::RETRY_PAUSE;
    let seen = drive.index_cache.seen(&account);
    let record = loop {
        let last_try = web_time::Instant::now() + pause >= deadline;
        match client.get_record_near(key.clone()).await {
            Err(NetError::TooFewPeers { .. }) if !last_try => {}
            other => {
                let (records, near) = other?;
                drive.index_cache.heard_near(&account, near);
                let record = account_record(session, &records).cloned();
                let behind = seen
                    .as_ref()
                    .and_then(|s| s.behind(record.as_ref(), session));
                let Some(behind) = behind else {
                    break record;
                };
                if last_try {
                    return Err(behind);
                }
                tracing::info!("the peers heard hold an older index ({behind:?}); asking again");
            }
        }
        futures_timer::Delay::new(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(4));
    };
    let Some(record) = record else {
        return Ok((FileIndex::default(), None));
    };
    // An earlier key's record, before the change is finished: whoever knew the old password
    // may have replaced it since, so the pointer read is the one the change pinned.
    let body = match session.index_at_change() {
        Some(pinned) if record.owner() != &owner => &pinned.body,
        _ => &record.record().body,
    };
    let pointer: IndexPointer = decode_newer(body)?;
    let keys: Vec<&SymmetricKey> = session.user_keys().collect();
    let (root, plain) = open_root(drive, &keys, &pointer).await?;
    drive.index_cache.set_root(root, plain.clone());
    let mut index: FileIndex = decode_newer(&plain)?;
    let seq = record.record().seq;
    drive.index_cache.saw(session, seq, record.owner());
    drive.index_cache.keep_only(&index.pages);
    if !index.pages.is_empty() {
        let paged = load_pages(drive, &keys, &index.pages).await?;
        index.files.extend(paged);
    }
    let owner = owner_hash(session)?;
    index.donations.retain(|_, pledge| pledge.owner == owner);
    Ok((index, Some(record)))
}

/// The entry of `file` as this tab last saw the index (its root and pages are cached), asking
/// no one: a download's head start, which the reloaded index must confirm.
pub(super) fn cached_entry<N: Network>(drive: &Drive<N>, file: &FileId) -> Option<FileEntry> {
    let cache = &drive.index_cache;
    let index: FileIndex = decode(&cache.newest_root()?).ok()?;
    let paged = || {
        index
            .pages
            .iter()
            .filter_map(|page| cache.page(&page.digest))
            .flatten()
            .find(|entry| entry.id == *file)
    };
    let listed = index.files.iter().find(|entry| entry.id == *file).cloned();
    listed.or_else(paged)
}

/// Opens a file's key with the user key, or one from before a password change.
pub(super) async fn open_file_key(
    session: &Session,
    entry: &FileEntry,
) -> Result<SymmetricKey, FileError> {
    let mut failure = CryptoError::Decrypt;
    for user_key in session.user_keys() {
        match fast::open(user_key, &file_key_aad(&entry.id), &entry.key).await {
            Ok(raw) => return Ok(SymmetricKey::from_slice(&raw)?),
            Err(e) => failure = e,
        }
    }
    Err(failure.into())
}

/// Applies `change` to the newest index and saves it; when another writer took the same
/// sequence number meanwhile, reloads and applies the change again.
pub(super) async fn commit_index<N: Network>(
    drive: &Drive<N>,
    change: impl FnMut(&mut FileIndex),
) -> Result<(), FileError> {
    commit_from(drive, None, change).await
}

/// [`commit_index`], whose first attempt applies the change to `reloaded`: the index as
/// [`load_index`] found it moments ago, while the operation's last step was under way (an
/// upload's manifest being placed). A reload that failed is done again here.
pub(super) async fn commit_loaded<N: Network>(
    drive: &Drive<N>,
    reloaded: Result<LoadedIndex, FileError>,
    change: impl FnMut(&mut FileIndex),
) -> Result<(), FileError> {
    commit_from(drive, reloaded.ok(), change).await
}

/// The index and the record pointing at it, as [`load_index`] returns them.
pub(super) type LoadedIndex = (FileIndex, Option<VerifiedRecord>);

async fn commit_from<N: Network>(
    drive: &Drive<N>,
    mut reloaded: Option<LoadedIndex>,
    mut change: impl FnMut(&mut FileIndex),
) -> Result<(), FileError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (mut index, previous) = match reloaded.take() {
            Some(loaded) => loaded,
            None => load_index(drive).await?,
        };
        change(&mut index);
        // Every write carries this browser's pledge: the index's blobs are placed under the
        // allowance it earns (a user who never uploaded has none in the index yet).
        if let Ok(Some((peer, pledge))) = drive.pledge() {
            index.donations.insert(peer, pledge);
        }
        match save_index(drive, &index, previous.as_ref()).await {
            Err(e) if is_conflict(&e) && attempt < COMMIT_ATTEMPTS => {
                tracing::info!("the file index changed meanwhile; applying the change again");
            }
            saved => return saved,
        }
    }
}

/// Whether saving failed because another writer saved the same sequence number first.
pub(super) fn is_conflict(error: &FileError) -> bool {
    matches!(
        error,
        FileError::Record(RecordError::Conflict(_))
            | FileError::Net(NetError::Record(RecordError::Conflict(_)))
    )
}

/// Seals and stores a new index (the pages whose content changed, then the root unless it rides
/// in the record), then points the account's record at it; frees what the new index no longer
/// names.
pub(super) async fn save_index<N: Network>(
    drive: &Drive<N>,
    index: &FileIndex,
    previous: Option<&VerifiedRecord>,
) -> Result<(), FileError> {
    let prepared = prepare_index(drive, index, previous).await?;
    publish_index(drive, prepared).await
}

/// An index sealed and placed (its changed pages, then its root unless it rides in the
/// record) with its record's holders walked for and the record pointing at it signed, but not
/// put yet: [`publish_index`] puts the record, [`PreparedIndex::discard`] frees the blobs. An
/// upload prepares its commit while its last blocks are still on their way
/// ([`super::ahead`]), so the record's signature is off its critical path too (a WebCrypto
/// RSA-3072 signature, a few ms at rest, tens on a busy tab).
pub(super) struct PreparedIndex {
    root: Vec<u8>,
    /// The address of the root's sealed bytes, which [`IndexCache`] knows it by.
    root_id: BlockId,
    /// The record's body: the sealed root, or where it was placed.
    pointer: IndexPointer,
    /// The pages placed for it (those whose content changed).
    pages: Vec<BlockRef>,
    record_peers: Result<Vec<PeerId>, NetError>,
    /// The record, its body the pointer encoded, signed; or why it could not be signed.
    record: Result<crate::record::SignedRecord, String>,
    /// What it no longer names (the previous root, and the pages it replaced): freed once it
    /// is published.
    garbage: Vec<BlockRef>,
}

impl PreparedIndex {
    /// Frees the blobs placed for an index that will not be published, in the background.
    pub(super) async fn discard<N: Network>(self, drive: &Drive<N>) {
        free_in_background(drive, self.placed().cloned().collect()).await;
    }

    /// The blobs placed for it: the pages that changed, and the root unless it rides inline.
    fn placed(&self) -> impl Iterator<Item = &BlockRef> {
        self.pages.iter().chain(&self.pointer.blob)
    }
}

/// The blobs the account's index names: its pages, and its root where it does not ride in
/// `record` or in the record a password change pinned (which [`load_index`] reads instead
/// while the change is unfinished). `index` is what [`load_index`] read with `record`.
pub(super) fn blobs_named(
    session: &Session,
    index: &FileIndex,
    record: Option<&VerifiedRecord>,
) -> Vec<BlockId> {
    let bodies = record
        .map(|r| &r.record().body)
        .into_iter()
        .chain(session.index_at_change().map(|pinned| &pinned.body));
    let roots = bodies.filter_map(|body| decode::<IndexPointer>(body).ok()?.blob);
    let pages = index.pages.iter().map(|page| page.blob.id);
    roots.map(|root| root.id).chain(pages).collect()
}

/// The first half of [`save_index`]: seals and places `index` as the successor of `previous`.
pub(super) async fn prepare_index<N: Network>(
    drive: &Drive<N>,
    index: &FileIndex,
    previous: Option<&VerifiedRecord>,
) -> Result<PreparedIndex, FileError> {
    let session = &*drive.session;
    let pledges = index.pledges();
    let (pages, placed) = place_pages(drive, index, &pledges).await?;
    let (files, entries) = root_files(if pages.is_empty() { &index.files } else { &[] });
    let root = RootOut {
        files,
        entries,
        donations: &index.donations,
        received: &index.received,
        pages: &pages,
        owed: &index.owed,
    };
    let stored = async {
        let root = encode(&root)?;
        if root.len() > BLOCK_SIZE {
            return Err(FileError::IndexFull(index.files.len()));
        }
        let (root_id, sealed) = seal_block(
            session.user_key(),
            &index_file_id(session),
            META_POSITION,
            &root,
        )
        .await?;
        let inline = IndexPointer::inline(sealed);
        // The body must fit the record beside its owner key, signature and key history, and
        // the private-key record a password change pins it in.
        let room = session.record_room(RecordKind::FileIndex);
        let rides = |sealed: &[u8]| sealed.len() <= drive.settings.inline_index_bytes;
        let fits = encode(&inline)?.len() <= room.min(crate::account::MAX_INDEX_PIN);
        let pointer = match inline.sealed {
            Some(SealedRoot(sealed)) if !rides(&sealed) || !fits => {
                // Not witnessed: an index blob is freed at the next save. The record's
                // holders are walked for meanwhile, so the put needs no walk of its own.
                let (placed, record_peers) = futures::join!(
                    place(drive, &pledges, sealed, META_POSITION),
                    record_peers(drive)
                );
                let (blob, _) = placed?;
                return Ok((root, root_id, IndexPointer::placed(blob), record_peers));
            }
            _ => inline,
        };
        Ok((root, root_id, pointer, record_peers(drive).await))
    }
    .await;
    let (root, root_id, pointer, record_peers) = match stored {
        Ok(stored) => stored,
        Err(e) => {
            free_all(drive, &placed).await;
            return Err(e);
        }
    };
    // The previous root, and its pages the new one does not name, are garbage once the new
    // one is published.
    let previous_root = previous
        .and_then(|r| decode::<IndexPointer>(&r.record().body).ok())
        .and_then(|pointer| pointer.blob);
    let old_pages = index
        .pages
        .iter()
        .filter(|old| !pages.iter().any(|p| p.blob.id == old.blob.id))
        .map(|old| old.blob.clone());
    let seq = previous.map_or(1, |r| r.record().seq + 1);
    let body = encode(&pointer)?;
    // A failed signature is [`publish_index`]'s to report (it frees what was placed).
    let record = session
        .sign_fast(RecordKind::FileIndex, seq, body)
        .await
        .map_err(|e| e.to_string());
    Ok(PreparedIndex {
        root,
        root_id,
        pointer,
        pages: placed,
        record_peers,
        record,
        garbage: previous_root.into_iter().chain(old_pages).collect(),
    })
}

/// The second half of [`save_index`]: points the account's record at `prepared`, then frees
/// what it no longer names (in the background: best effort, a stale copy is harmless). A
/// record refused before it was sent frees the prepared blobs; one whose put failed on the
/// network is looked up ([`landed`]): found, the change is done; not found, the blobs are
/// kept, as a copy of it may yet surface, and noted for a later log-in to free once a newer
/// index that does not name them is out ([`Drive::note_lost_index_put`]).
pub(super) async fn publish_index<N: Network>(
    drive: &Drive<N>,
    prepared: PreparedIndex,
) -> Result<(), FileError> {
    let (client, session) = (&drive.client, &*drive.session);
    let record = match &prepared.record {
        Ok(record) => record,
        Err(e) => {
            let e = FileError::Damaged(e.clone());
            free_all(drive, &prepared.placed().cloned().collect::<Vec<_>>()).await;
            return Err(e);
        }
    };
    let put = match &prepared.record_peers {
        Ok(peers) => client.put_record_to(record.clone(), peers.clone()).await,
        Err(_) => client.put_record(record.clone()).await,
    }
    .map_err(FileError::from);
    if let Err(e) = put {
        if !may_have_landed(&e) {
            // Refused before anything was sent (another browser saved this sequence number
            // first, as the local check found): nothing points at the new blobs.
            free_all(drive, &prepared.placed().cloned().collect::<Vec<_>>()).await;
            return Err(e);
        }
        if !landed(drive, record).await {
            // The new blobs are not freed now: the record may have reached peers whose answers
            // were lost and that the look-up did not hear, and freeing what it names would
            // lose the whole index. The journal keeps them (the root and the pages that
            // changed), and a later log-in that reads a newer index frees those it does not
            // name ([`Drive::finish_uploads`]).
            drive
                .note_lost_index_put(
                    &prepared.placed().map(|blob| blob.id).collect::<Vec<_>>(),
                    record.seq,
                )
                .await;
            return Err(e);
        }
        tracing::info!("the index's record landed, though its put reported: {e}");
    }
    drive.index_cache.set_root(prepared.root_id, prepared.root);
    drive
        .index_cache
        .saw(session, record.seq, &session.public_key());
    free_in_background(drive, prepared.garbage).await;
    Ok(())
}

/// Whether a record put that failed with `error` may still have reached holders: any network
/// error but a conflict, which the local check finds before anything is sent.
fn may_have_landed(error: &FileError) -> bool {
    matches!(error, FileError::Net(_)) && !is_conflict(error)
}

/// Whether the account's index record, looked up now, is `put` (its sequence number and
/// body), which this browser just put: a put that reported failure landed, its answers lost (or
/// fewer holders answered than it asked). `false` when the look-up fails.
async fn landed<N: Network>(drive: &Drive<N>, put: &crate::record::SignedRecord) -> bool {
    let key = dht_key(RecordKind::FileIndex, &drive.session.account());
    let Ok(records) = drive.client.get_record(key).await else {
        return false;
    };
    account_record(&drive.session, &records)
        .is_some_and(|r| r.record().seq == put.seq && r.record().body == put.body)
}

/// Of the records heard under the account's index key (per owner the newest), the one that is
/// the account's index: the session key's, else an earlier key's of this account (a password
/// change not yet finished). [`load_index`] reads it and [`landed`] checks against it, so a
/// put taken as landed is the record the next load reads.
fn account_record<'a>(
    session: &Session,
    records: &'a [VerifiedRecord],
) -> Option<&'a VerifiedRecord> {
    let owner = session.public_key();
    records
        .iter()
        .find(|r| r.owner() == &owner)
        .or_else(|| records.iter().find(|r| session.is_own_key(r.owner())))
}

/// Seals and places the pages of `index` whose content changed since it was loaded (all of
/// them after a password change); returns every page, and the blobs placed now.
async fn place_pages<N: Network>(
    drive: &Drive<N>,
    index: &FileIndex,
    pledges: &[Pledge],
) -> Result<(Vec<PageRef>, Vec<BlockRef>), FileError> {
    let session = &*drive.session;
    let had = index.pages.first().map(|p| p.depth);
    let per_page = page_target(index.files.len(), drive.settings.index_page_files);
    let Some(mut depth) = paging_depth(index.files.len(), had, per_page) else {
        return Ok((Vec::new(), Vec::new()));
    };
    // A page over one block's size (files with long names, many holders) goes one deeper.
    let pages = loop {
        let mut buckets: BTreeMap<u32, Vec<&FileEntry>> = BTreeMap::new();
        for file in &index.files {
            buckets
                .entry(bucket_of(&file.id, depth))
                .or_default()
                .push(file);
        }
        let encoded = buckets
            .into_iter()
            .map(|(bucket, files)| {
                let plain = encode(&PageOut::of(files.clone()))?;
                Ok((bucket, files, plain))
            })
            .collect::<Result<Vec<_>, FileError>>()?;
        if encoded
            .iter()
            .all(|(_, _, plain)| plain.len() <= BLOCK_SIZE)
            || depth >= 32
        {
            break encoded;
        }
        depth += 1;
    };
    let mut refs = Vec::with_capacity(pages.len());
    let mut placed = Vec::new();
    for (bucket, files, plain) in pages {
        let digest = sha256(&plain);
        let same = |p: &&PageRef| p.depth == depth && p.bucket == bucket && p.digest == digest;
        if let Some(kept) = index.pages.iter().find(same).filter(|_| !index.reseal) {
            refs.push(kept.clone());
            continue;
        }
        let sealed = seal_block(
            session.user_key(),
            &index_file_id(session),
            META_POSITION,
            &plain,
        )
        .await;
        let blob = match sealed {
            Ok((_, sealed)) => place(drive, pledges, sealed, META_POSITION).await,
            Err(e) => Err(e.into()),
        };
        match blob {
            Ok((blob, _)) => {
                // The next commit finds it here rather than fetch it back.
                let files = files.into_iter().cloned().collect();
                drive.index_cache.insert_page(digest, files);
                placed.push(blob.clone());
                refs.push(PageRef {
                    depth,
                    bucket,
                    digest,
                    blob,
                });
            }
            Err(e) => {
                free_all(drive, &placed).await;
                return Err(e);
            }
        }
    }
    Ok((refs, placed))
}

/// Valid encodings of a paged root and of a page, for the fuzz tests (`files::fuzz_targets`).
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(super) fn fuzz_seeds(entry: &FileEntry) -> Vec<(&'static str, Vec<u8>)> {
    let page = PageRef {
        depth: 3,
        bucket: 5,
        digest: [4; 32],
        blob: entry.manifest.clone(),
    };
    let root = RootOut {
        files: Some(&[]),
        entries: None,
        donations: &BTreeMap::new(),
        received: &BTreeMap::new(),
        pages: &[page.clone(), page],
        owed: &BTreeMap::new(),
    };
    let page = PageOut::of(vec![entry, entry]);
    [("index", encode(&root)), ("index page", encode(&page))]
        .into_iter()
        .filter_map(|(name, bytes)| Some((name, bytes.ok()?)))
        .collect()
}

/// Decodes `bytes` as an index page.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(super) fn fuzz_page(bytes: &[u8]) {
    if let Ok(page) = decode::<IndexPage>(bytes) {
        let _ = page.files.iter().map(|f| bucket_of(&f.id, 7)).max();
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::fake::{
        download, drive, journaled_drive, listed, pattern, same_user_elsewhere, Conduct, FailedPut,
        FakeNet, MIB, PASSWORD,
    };
    use super::*;

    /// Uploads `name`, 3,000 bytes of pattern `seed`: how it went, and the bytes.
    async fn upload_small(
        files: &Drive<FakeNet>,
        name: &str,
        seed: u8,
    ) -> (Result<UploadReport, FileError>, Vec<u8>) {
        let bytes = pattern(3_000, seed);
        let done = files.upload(name, bytes.as_slice(), |_| ControlFlow::Continue(()));
        (done.await, bytes)
    }

    /// The index's root, as the account's record carries it now.
    async fn pointer(files: &Drive<FakeNet>) -> IndexPointer {
        let (_, record) = load_index(files).await.unwrap();
        decode(&record.unwrap().record().body).unwrap()
    }

    /// A small index rides sealed in its record: an upload stores its block's copies and puts
    /// the record, nothing more, and another browser reads the index with the record, fetching
    /// only the file's block. Once the sealed root outgrows [`Settings::inline_index_bytes`]
    /// it is placed on 5 peers and the record names it; back under, it rides again and the
    /// blob is freed. A page from before inline roots requires `blob`: it refuses a record
    /// whose root rides (as damaged, not as no index) and reads one that names a blob.
    #[tokio::test]
    async fn a_small_index_rides_in_its_record_and_a_grown_one_is_placed() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Before {
            blob: BlockRef,
        }
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        files.frees_done().await;
        let held = || async { net.blocks_held().await.iter().sum::<u64>() };
        let (empty, stores) = (held().await, net.stores());
        let first = pattern(MIB as usize, 1);
        let report = files
            .upload("first.bin", first.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        files.frees_done().await;
        assert_eq!(
            net.stores() - stores,
            3,
            "the block's copies, none for the index"
        );
        assert_eq!(held().await, empty + 3);
        let rides = pointer(&files).await;
        assert!(rides.blob.is_none() && rides.sealed.is_some(), "{rides:?}");
        let (_, record) = load_index(&files).await.unwrap();
        let body = record.unwrap().record().body.clone();
        // Nor does this code take a body it cannot place for an empty index: a newer one may
        // have written it, and the error says to reload.
        let future: IndexPointer =
            decode(&encode(&BTreeMap::from([("root_v2", 1)])).unwrap()).unwrap();
        let keys: Vec<&SymmetricKey> = files.session.user_keys().collect();
        let refused = open_root(&files, &keys, &future).await;
        assert!(
            matches!(&refused, Err(FileError::Damaged(why)) if why.contains("reload this page")),
            "{refused:?}"
        );
        assert!(
            decode::<Before>(&body).is_err(),
            "a page from before refuses it"
        );
        let elsewhere = same_user_elsewhere(&files);
        let fetches = net.fetches();
        assert_eq!(download(&elsewhere, &report.file.id).await.unwrap(), first);
        assert_eq!(net.fetches() - fetches, 1, "the file's block, and no index");

        // One small file after another, until the root outgrows 5 KiB.
        let mut ids = vec![(report.file.id, first)];
        let placed = loop {
            let bytes = pattern(1000, ids.len() as u8);
            let stores = net.stores();
            let report = files
                .upload(&format!("note {}.txt", ids.len()), bytes.as_slice(), |_| {
                    ControlFlow::Continue(())
                })
                .await
                .unwrap();
            ids.push((report.file.id, bytes));
            let now = pointer(&files).await;
            if let Some(blob) = now.blob {
                assert_eq!(
                    net.stores() - stores,
                    3 + 5,
                    "the block's and the root's copies"
                );
                break blob;
            }
            assert_eq!(net.stores() - stores, 3);
            assert!(ids.len() < 100, "the root never outgrew its record");
        };
        println!("{} files' index rides in its record", ids.len() - 1);
        assert!(
            (8..40).contains(&(ids.len() - 1)),
            "{} files",
            ids.len() - 1
        );
        assert_eq!(placed.holders.len(), 5);
        let (_, record) = load_index(&files).await.unwrap();
        let body = record.unwrap().record().body.clone();
        assert!(
            decode::<Before>(&body).is_ok(),
            "a page from before reads it"
        );
        files.frees_done().await;
        assert_eq!(held().await, empty + 3 * ids.len() as u64 + 5);
        let elsewhere = same_user_elsewhere(&files);
        assert_eq!(listed(&elsewhere).await.len(), ids.len());
        let (id, bytes) = ids.last().unwrap();
        assert_eq!(&download(&elsewhere, id).await.unwrap(), bytes);

        // Deleted down to the first file: riding again, the blob freed.
        for (id, _) in ids.drain(1..) {
            files.delete(&id).await.unwrap();
        }
        files.frees_done().await;
        assert!(pointer(&files).await.blob.is_none());
        assert_eq!(held().await, empty + 3);
        let elsewhere = same_user_elsewhere(&files);
        assert_eq!(listed(&elsewhere).await, vec!["first.bin".to_string()]);
    }

    /// A save puts the index record on the peers the load before it heard nearest the
    /// record's key (the quota check's, or the commit's reload), not on peers found by a walk
    /// of its own: a small upload walks for its block alone, and a delete or a share walks
    /// for nothing of the index.
    #[tokio::test]
    async fn a_save_puts_the_index_record_where_its_load_heard_it_and_walks_no_more() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let upload = |name: &'static str| {
            let files = files.clone();
            async move {
                let bytes = pattern(1000, 2);
                let report = files
                    .upload(name, bytes.as_slice(), |_| ControlFlow::Continue(()))
                    .await
                    .unwrap();
                report.file.id
            }
        };
        upload("a.txt").await;
        let walks = net.walks();
        let id = upload("b.txt").await;
        assert_eq!(net.walks() - walks, 1, "the block's walk only");
        // The peers the lookup heard: the live peers nearest the record's key, nearest first.
        let key = dht_key(RecordKind::FileIndex, &files.session.account());
        assert_eq!(net.put_to(), Some(net.closest(&key)));
        let walks = net.walks();
        files.share_link(&id, None).await.unwrap();
        assert_eq!(net.walks() - walks, 1, "the manifest's placement only");
        let elsewhere = same_user_elsewhere(&files);
        assert_eq!(listed(&elsewhere).await, vec!["a.txt", "b.txt"]);

        // Two peers heard are too few to stand in for a walk.
        let gone: Vec<PeerId> = net.closest(&key).into_iter().skip(2).collect();
        gone.iter().for_each(|peer| net.set(*peer, Conduct::Gone));
        let walks = net.walks();
        files.share_link(&id, None).await.unwrap();
        assert_eq!(net.walks() - walks, 1, "a walk for the record's holders");
    }

    /// A lookup that hears only holders of an older index than this tab saw (holders that
    /// missed its newest save) is not taken for the index: a riding root would open from it
    /// and show an old list, and a save on it would drop what came since. It is asked again,
    /// and fails as `IndexBehind` past the wait, saving nothing; once the newest is heard
    /// again all is well.
    #[tokio::test]
    async fn an_older_index_record_heard_alone_is_not_taken_for_the_index() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let mut files = drive(&net).await;
        files.settings.network_wait = std::time::Duration::from_secs(1);
        let upload = |name: &'static str| {
            let files = files.clone();
            async move {
                let bytes = pattern(1000, 1);
                files
                    .upload(name, bytes.as_slice(), |_| ControlFlow::Continue(()))
                    .await
            }
        };
        upload("a.txt").await.unwrap();
        let (_, older) = load_index(&files).await.unwrap();
        upload("b.txt").await.unwrap();
        let (_, newest) = load_index(&files).await.unwrap();
        let (older, newest) = (older.unwrap(), newest.unwrap());
        let (seen, heard) = (newest.record().seq, older.record().seq);
        assert!(heard < seen);

        net.force_record(older.clone());
        let listing = files.list().await;
        assert!(
            matches!(listing, Err(FileError::IndexBehind { seen: s, heard: h }) if s == seen && h == heard),
            "{listing:?}"
        );
        let saved = upload("c.txt").await;
        assert!(
            matches!(saved, Err(FileError::IndexBehind { .. })),
            "{saved:?}"
        );
        let (_, held) = load_index(&same_user_elsewhere(&files)).await.unwrap();
        assert_eq!(held.unwrap().record().seq, heard, "nothing saved over it");

        net.force_record(newest);
        assert_eq!(listed(&files).await, vec!["a.txt", "b.txt"]);
    }

    /// A page from before inline manifests knows no `inline` field: reading an entry whose
    /// manifest rides there, it would save the index again without it and lose the file. So
    /// such a root or page puts its entries under `entries`, which that reader refuses (it
    /// requires `files`), until the manifest is placed (shared); this reader takes both.
    #[tokio::test]
    async fn a_page_from_before_inline_manifests_refuses_an_index_it_would_lose_them_from() {
        /// The index and a page as pages before inline manifests read them.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct EntryBefore {
            manifest: BlockRef,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Before {
            files: Vec<EntryBefore>,
        }
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let report = files
            .upload("a.txt", pattern(1000, 1).as_slice(), |_| {
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        let written = |index: &FileIndex| {
            let (files, entries) = root_files(&index.files);
            let root = RootOut {
                files,
                entries,
                donations: &index.donations,
                received: &index.received,
                pages: &[],
                owed: &index.owed,
            };
            let page = PageOut::of(index.files.iter().collect());
            (encode(&root).unwrap(), encode(&page).unwrap())
        };
        let (index, _) = load_index(&files).await.unwrap();
        let (root, page) = written(&index);
        assert!(decode::<Before>(&root).is_err());
        assert!(decode::<Before>(&page).is_err());
        assert_eq!(decode::<FileIndex>(&root).unwrap().files.len(), 1);
        assert_eq!(decode::<IndexPage>(&page).unwrap().files.len(), 1);

        // Shared, the manifest is placed: an old reader finds it where the entry says.
        files.share_link(&report.file.id, None).await.unwrap();
        let (index, _) = load_index(&files).await.unwrap();
        let (root, page) = written(&index);
        assert_eq!(decode::<Before>(&root).unwrap().files.len(), 1);
        assert_eq!(decode::<Before>(&page).unwrap().files.len(), 1);
    }

    #[tokio::test]
    async fn an_index_whose_record_landed_unheard_is_kept_and_one_lost_changes_nothing() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let mut files = drive(&net).await;
        // The root placed as a blob the record points at (an index too large to ride in it).
        files.settings.inline_index_bytes = 0;
        let upload = |name, seed| upload_small(&files, name, seed);
        let (first, one) = upload("one.txt", 1).await;
        let first = first.unwrap();

        // The record lands but every answer is lost: the upload is done, and the root it
        // points at is kept (before, it was freed as if nothing named it: the index was lost).
        net.fail_puts(&[FailedPut::LandsUnheard]);
        let (second, two) = upload("two.txt", 2).await;
        let second = second.unwrap();
        assert!(second.complete, "{second:?}");
        files.frees_done().await;
        // Read afresh, as another browser of the user would.
        let elsewhere = same_user_elsewhere(&files);
        assert_eq!(listed(&elsewhere).await, ["one.txt", "two.txt"]);
        assert_eq!(download(&elsewhere, &first.file.id).await.unwrap(), one);
        assert_eq!(download(&elsewhere, &second.file.id).await.unwrap(), two);

        // The record reaches no one: the upload fails, and the index is as it was.
        net.fail_puts(&[FailedPut::Lost]);
        let (lost, _) = upload("three.txt", 3).await;
        assert!(lost.is_err(), "{lost:?}");
        files.frees_done().await;
        assert_eq!(listed(&elsewhere).await, ["one.txt", "two.txt"]);
        assert_eq!(download(&elsewhere, &second.file.id).await.unwrap(), two);
        let (again, three) = upload("three.txt", 3).await;
        assert_eq!(
            download(&elsewhere, &again.unwrap().file.id).await.unwrap(),
            three
        );
    }

    /// Whether any live peer of `net` holds block `id`.
    async fn held_anywhere(net: &FakeNet, id: BlockId) -> bool {
        for peer in net.live() {
            if net.held_by(peer).await.contains(&id) {
                return true;
            }
        }
        false
    }

    /// A drive whose index root is placed as a blob the record points at (an index too large
    /// to ride in it), with `index_page_files` files a page, whose journal is read at once.
    async fn drive_with_index_blobs(
        net: &FakeNet,
        index_page_files: usize,
    ) -> (Drive<FakeNet>, Shared<UploadJournal>) {
        let settings = Settings {
            abandoned_after: Duration::ZERO,
            inline_index_bytes: 0,
            index_page_files,
            ..Settings::default()
        };
        journaled_drive(net, settings).await
    }

    #[tokio::test]
    async fn a_lost_index_puts_blobs_are_freed_once_a_newer_index_is_read_and_not_before() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let (files, journal) = drive_with_index_blobs(&net, 256).await;
        let upload = |name, seed| upload_small(&files, name, seed);
        let (first, one) = upload("one.txt", 1).await;
        let first = first.unwrap();

        // The record reaches no one: the upload fails, and the root placed for it is kept (its
        // record may yet surface), noted in the journal with the put's sequence number.
        net.fail_puts(&[FailedPut::Lost]);
        let (lost, _) = upload("two.txt", 2).await;
        assert!(lost.is_err(), "{lost:?}");
        files.frees_done().await;
        let owner = owner_hash(files.session()).unwrap();
        let noted = || journal.lost_index_puts(&owner, u64::MAX);
        let lost = noted().await.unwrap().unwrap();
        assert_eq!(lost.ids.len(), 1, "the lost put's root: {lost:?}");
        assert_eq!(lost.seq, 2, "the put after the first upload's");
        let lost_root = lost.ids[0];
        assert!(held_anywhere(&net, lost_root).await);

        // A log-in that reads no newer index than the lost put frees nothing of it.
        files.finish_uploads().await.unwrap();
        files.frees_done().await;
        assert!(held_anywhere(&net, lost_root).await, "kept: may surface");
        assert_eq!(noted().await.unwrap(), Some(lost.clone()));

        // The next upload saves the index under the lost put's sequence number again: were
        // the lost record to surface, a reader could take either of the two, so it is kept.
        let (third, three) = upload("three.txt", 3).await;
        let third = third.unwrap();
        let (_, record) = load_index(&files).await.unwrap();
        assert_eq!(record.unwrap().record().seq, 2);
        files.finish_uploads().await.unwrap();
        files.frees_done().await;
        assert!(held_anywhere(&net, lost_root).await, "kept: same seq");

        // The one after saves a newer index; the log-in after frees the lost root.
        let (fourth, four) = upload("four.txt", 4).await;
        let fourth = fourth.unwrap();
        assert_eq!(files.finish_uploads().await.unwrap(), 1);
        files.frees_done().await;
        assert!(!held_anywhere(&net, lost_root).await, "freed");
        assert_eq!(noted().await.unwrap(), None, "forgotten");
        let now = pointer(&files).await.blob.unwrap().id;
        assert!(held_anywhere(&net, now).await, "the index's own root stays");
        let elsewhere = same_user_elsewhere(&files);
        assert_eq!(
            listed(&elsewhere).await,
            ["four.txt", "one.txt", "three.txt"]
        );
        assert_eq!(download(&elsewhere, &first.file.id).await.unwrap(), one);
        assert_eq!(download(&elsewhere, &third.file.id).await.unwrap(), three);
        assert_eq!(download(&elsewhere, &fourth.file.id).await.unwrap(), four);
    }

    #[tokio::test]
    async fn a_lost_index_puts_blobs_that_a_newer_index_names_are_kept() {
        let net = FakeNet::new(6, 64 * MIB).await;
        // One file a page: the index is a root and pages.
        let (files, journal) = drive_with_index_blobs(&net, 1).await;
        let seeds = [("a.txt", 1), ("b.txt", 2), ("c.txt", 3), ("d.txt", 4)];
        for (name, seed) in &seeds[..3] {
            upload_small(&files, name, *seed).await.0.unwrap();
        }
        net.fail_puts(&[FailedPut::Lost]);
        assert!(upload_small(&files, "d.txt", 4).await.0.is_err());
        files.frees_done().await;
        let owner = owner_hash(files.session()).unwrap();
        let lost = journal.lost_index_puts(&owner, u64::MAX).await.unwrap();
        let lost = lost.unwrap();
        assert!(lost.ids.len() >= 2, "a root and a page at least: {lost:?}");

        // The lost record surfaces, and an index built on it names every blob it named (here
        // the same body, signed again under the next sequence number).
        let surfaced = net.lost_records().pop().unwrap();
        let seq = surfaced.record().seq + 1;
        let body = surfaced.record().body.clone();
        let newer = files.session().sign(RecordKind::FileIndex, seq, body);
        net.put_record(newer.unwrap()).await.unwrap();
        assert_eq!(files.finish_uploads().await.unwrap(), 0, "all named");
        files.frees_done().await;
        for id in &lost.ids {
            assert!(held_anywhere(&net, *id).await, "{id:?} kept");
        }
        let forgotten = journal.lost_index_puts(&owner, u64::MAX).await.unwrap();
        assert_eq!(forgotten, None);
        let elsewhere = same_user_elsewhere(&files);
        assert_eq!(
            listed(&elsewhere).await,
            ["a.txt", "b.txt", "c.txt", "d.txt"]
        );
        for file in elsewhere.list().await.unwrap() {
            let seed = seeds.iter().find(|(name, _)| *name == file.name).unwrap().1;
            let bytes = download(&elsewhere, &file.id).await.unwrap();
            assert!(bytes == pattern(3_000, seed), "{} reads back", file.name);
        }
    }

    #[tokio::test]
    async fn a_lost_index_puts_blobs_outlive_a_newer_index_under_an_earlier_key() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let (old, _) = drive_with_index_blobs(&net, 256).await;
        upload_small(&old, "a.txt", 1).await.0.unwrap();
        // The password changes in this browser; the change is not finished yet.
        let directory = crate::account::fake::MemoryDirectory::new(3);
        let new_password = "quiet harbour lanterns drift past midnight";
        let rotated =
            crate::account::change_password(&directory, old.session(), PASSWORD, new_password);
        let rotated = Shared::new(rotated.await.unwrap());
        let journal = Shared::new(UploadJournal::in_memory());
        let new = Drive::new(net.clone(), rotated.clone(), old.settings().clone())
            .donating(Donation {
                keypair: Keypair::generate_ed25519(),
                bytes: 1 << 30,
            })
            .journaling(journal.clone())
            // One tab: the app keeps its index cache from one log-in to the next.
            .with_index_cache(old.index_cache.clone());
        // Its first save under the new key is lost.
        net.fail_puts(&[FailedPut::Lost]);
        assert!(upload_small(&new, "b.txt", 2).await.0.is_err());
        new.frees_done().await;
        let owner = owner_hash(&rotated).unwrap();
        let lost = journal.lost_index_puts(&owner, u64::MAX).await.unwrap();
        let lost = lost.unwrap();
        // A browser still on the old key saves twice: a higher sequence number, but under a
        // key whose records readers set aside for the new key's.
        upload_small(&old, "c.txt", 3).await.0.unwrap();
        upload_small(&old, "d.txt", 4).await.0.unwrap();
        let (_, old_key_record) = load_index(&new).await.unwrap();
        let old_key_record = old_key_record.unwrap();
        assert!(old_key_record.record().seq > lost.seq);
        assert_ne!(old_key_record.owner(), &rotated.public_key());
        new.finish_uploads().await.unwrap();
        new.frees_done().await;
        for id in &lost.ids {
            assert!(held_anywhere(&net, *id).await, "{id:?} kept");
        }
        // The lost record surfaces: it is the new key's, read over the old key's, and every
        // blob it names is still there. Also in this tab, which saw the old key's higher
        // number: that number is not held against the new key's record.
        let surfaced = net.lost_records().pop().unwrap();
        net.force_record(surfaced.clone());
        let elsewhere = same_user_elsewhere(&new);
        for browser in [&new, &elsewhere] {
            let (_, record) = load_index(browser).await.unwrap();
            assert_eq!(record.unwrap().owner(), &rotated.public_key());
            assert_eq!(listed(browser).await, ["a.txt", "b.txt"]);
        }
        // Once this tab has seen a newer record of the new key, an older one of that key is
        // behind all the same; and so is the old key's, whatever its number (holders that
        // missed every save since the change).
        upload_small(&new, "e.txt", 5).await.0.unwrap();
        let (_, saved) = load_index(&new).await.unwrap();
        assert!(old_key_record.record().seq >= saved.unwrap().record().seq);
        net.force_record(surfaced);
        let behind = load_index(&new).await.map(|(index, _)| index.files.len());
        assert!(
            matches!(behind, Err(FileError::IndexBehind { .. })),
            "{behind:?}"
        );
        net.force_record(old_key_record);
        let behind = load_index(&new).await.map(|(index, _)| index.files.len());
        assert!(
            matches!(behind, Err(FileError::IndexBeforeChange { .. })),
            "{behind:?}"
        );
        // A session from before the change, in this tab, reads the old key's record as its
        // own; what the tab saw of the new key stays.
        let (_, read) = load_index(&old).await.unwrap();
        assert_ne!(read.unwrap().owner(), &rotated.public_key());
        let behind = load_index(&new).await.map(|(index, _)| index.files.len());
        assert!(
            matches!(behind, Err(FileError::IndexBeforeChange { .. })),
            "{behind:?}"
        );
    }

    #[tokio::test]
    async fn two_browsers_of_one_user_uploading_at_once_both_land_in_the_index() {
        use crate::files::fake::Conduct;
        let net = FakeNet::new(6, 64 * MIB).await;
        // Holders answer after a millisecond, so the two uploads interleave at every request.
        net.set_all(Conduct::Slow(std::time::Duration::from_millis(1)));
        let here = drive(&net).await;
        // The same user in another browser: a tab of its own, with its own view of the index.
        let there = same_user_elsewhere(&here);
        let (small, large) = (pattern(300_000, 1), pattern((2 * MIB + 5) as usize, 2));
        for round in 0..3 {
            let (a, b) = (format!("a{round}.bin"), format!("b{round}.bin"));
            let (one, other) = futures::join!(
                here.upload(&a, small.as_slice(), |_| ControlFlow::Continue(())),
                there.upload(&b, large.as_slice(), |_| ControlFlow::Continue(())),
            );
            let (one, other) = (one.unwrap(), other.unwrap());
            assert_eq!(download(&there, &one.file.id).await.unwrap(), small);
            assert_eq!(download(&here, &other.file.id).await.unwrap(), large);
        }
        for browser in [&here, &there] {
            assert_eq!(
                listed(browser).await,
                ["a0.bin", "a1.bin", "a2.bin", "b0.bin", "b1.bin", "b2.bin"]
            );
        }
    }

    #[test]
    fn an_index_pages_past_its_target_and_keeps_its_depth_within_bounds() {
        assert_eq!(paging_depth(0, None, 256), None);
        assert_eq!(paging_depth(256, None, 256), None);
        assert_eq!(paging_depth(257, None, 256), Some(1));
        assert_eq!(paging_depth(10_000, None, 256), Some(6));
        // Kept while pages average a quarter to twice the target: one file either way at an
        // edge re-seals one page, not all of them.
        assert_eq!(paging_depth(8_193, Some(5), 256), Some(5));
        assert_eq!(paging_depth(8_191, Some(6), 256), Some(6));
        assert_eq!(paging_depth(2 * 256 * 32 + 32, Some(5), 256), Some(6));
        assert_eq!(paging_depth(1_000, Some(6), 256), Some(3));
        // Back to one blob only at half the target.
        assert_eq!(paging_depth(200, Some(0), 256), Some(0));
        assert_eq!(paging_depth(128, Some(0), 256), None);
        // Buckets are the id's leading bits.
        let id = FileId([0b1010_0000, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bucket_of(&id, 0), 0);
        assert_eq!(bucket_of(&id, 3), 0b101);
        assert_eq!(bucket_of(&id, 12), 0b1010_0000_1111);
    }

    #[test]
    fn a_root_names_its_pages_in_one_block_up_to_millions_of_files() {
        let page = PageRef {
            depth: 11,
            bucket: 2047,
            digest: [9; 32],
            blob: entry(1).manifest,
        };
        let per_ref = encode(&page).unwrap().len();
        // Growing from 256 files to 3.5 million (in steps of 1/64) as `place_pages` does
        // (one deeper when a page would pass a block; entries of 520 bytes, as uploads make
        // them), the root stays within a block.
        let (mut files, mut depth) = (256usize, None);
        while files <= 3_500_000 {
            depth = paging_depth(files, depth, page_target(files, 256));
            if let Some(d) = depth.as_mut() {
                while (files >> *d) * 520 > BLOCK_SIZE {
                    *d += 1;
                }
            }
            let pages = 1usize << depth.unwrap_or(0);
            assert!(pages * per_ref < BLOCK_SIZE, "{files} files: {pages} pages");
            files += files / 64 + 1;
        }
        assert_eq!(depth, Some(11));
        eprintln!("a page named in the root: {per_ref} bytes");
    }

    /// An index entry as an upload makes one (five holders for the manifest).
    fn entry(n: u32) -> FileEntry {
        let holders = (0..5).map(|_| PeerId::random().to_string()).collect();
        FileEntry {
            id: FileId::random(),
            name: format!("holiday photo {n:05}.jpg"),
            size: 3 * MIB + u64::from(n),
            created_ms: 1_800_000_000_000 + u64::from(n),
            key: Sealed {
                nonce: [7; 12],
                ciphertext: vec![9; 48],
            },
            manifest: BlockRef {
                id: BlockId(sha256(&n.to_be_bytes())),
                holders,
            },
            manifest_inline: None,
            copies: 3,
            claims_behind: false,
            links: Vec::new(),
            shared_with: Vec::new(),
        }
    }

    #[tokio::test]
    async fn ten_thousand_files_and_adding_or_removing_one_re_seals_one_page_and_the_root() {
        let net = FakeNet::new(8, 256 * MIB).await;
        let files = drive(&net).await;
        let many: Vec<FileEntry> = (0..10_000).map(entry).collect();
        commit_index(&files, |index| index.files.extend(many.iter().cloned()))
            .await
            .unwrap();
        let (index, _) = load_index(&files).await.unwrap();
        assert_eq!(index.files.len(), 10_000);
        assert_eq!(
            index.pages.len(),
            64,
            "depth 6: 64 pages of about 156 files"
        );
        let root = encode(&RootOut {
            files: Some(&[]),
            entries: None,
            donations: &index.donations,
            received: &index.received,
            pages: &index.pages,
            owed: &index.owed,
        })
        .unwrap();
        let one_blob = encode(&index).unwrap();
        eprintln!(
            "10,000 files: root {} bytes, pages {} bytes on average, as one blob {} bytes",
            root.len(),
            (one_blob.len() - root.len()) / 64,
            one_blob.len()
        );
        assert!(
            one_blob.len() > BLOCK_SIZE,
            "one blob would not fit in a block"
        );

        // One file more: nothing is fetched (this tab has the pages, and the root it saved
        // last is still the newest), one page and the root are sealed and placed (5 copies
        // each).
        let (stores, fetches) = (net.stores(), net.fetches());
        let added = entry(10_000);
        commit_index(&files, |index| index.files.push(added.clone()))
            .await
            .unwrap();
        assert_eq!(net.stores() - stores, 2 * 5);
        assert_eq!(net.fetches() - fetches, 0, "no root, no page");
        let (index, _) = load_index(&files).await.unwrap();
        assert_eq!(index.files.len(), 10_001);
        assert!(index.files.iter().any(|f| f.id == added.id));
        // One file fewer: the same.
        let stores = net.stores();
        let gone = many[4321].id;
        commit_index(&files, |index| index.files.retain(|f| f.id != gone))
            .await
            .unwrap();
        assert_eq!(net.stores() - stores, 2 * 5);
        assert_eq!(files.list().await.unwrap().len(), 10_000);

        // Another browser of the user (no pages of its own) fetches every page, checked
        // against the root, and sees the same files.
        let fetches = net.fetches();
        let elsewhere = Drive::new(net.clone(), files.session.clone(), Settings::default());
        let listed = elsewhere.list().await.unwrap();
        assert_eq!(listed.len(), 10_000);
        assert_eq!(net.fetches() - fetches, 1 + 64);
        assert!(!listed.iter().any(|f| f.id == gone.to_hex()));
    }

    #[tokio::test]
    async fn a_password_change_re_seals_every_page_under_the_new_user_key() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let mut files = drive(&net).await;
        files.settings.index_page_files = 2;
        for n in 0..6u8 {
            let bytes = pattern(500, n);
            let name = format!("f{n}");
            let report = files.upload(&name, bytes.as_slice(), |_| ControlFlow::Continue(()));
            report.await.unwrap();
        }
        let (before, _) = load_index(&files).await.unwrap();
        assert!(!before.pages.is_empty());

        let directory = crate::account::fake::MemoryDirectory::new(3);
        let new_password = "quiet harbour lanterns drift past midnight";
        let rotated =
            crate::account::change_password(&directory, &files.session, PASSWORD, new_password);
        let rotated = Shared::new(rotated.await.unwrap());
        let donation = Donation {
            keypair: Keypair::generate_ed25519(),
            bytes: 1 << 30,
        };
        let settings = files.settings.clone();
        let after = Drive::new(net.clone(), rotated.clone(), settings).donating(donation);
        assert!(after.finish_rotation().await.unwrap());

        // Every page is new, and opens with the new user key alone.
        let (index, record) = load_index(&after).await.unwrap();
        assert_eq!(record.unwrap().owner(), &rotated.public_key());
        assert_eq!(index.files.len(), 6);
        for page in &index.pages {
            assert!(!before.pages.iter().any(|old| old.blob.id == page.blob.id));
            let key = [rotated.user_key()];
            let file = index_file_id(&rotated);
            let slow = SlowPeers::default();
            let opened = fetch_with(
                &net,
                &after.settings,
                &key,
                &file,
                META_POSITION,
                &page.blob,
                &slow,
            );
            assert!(opened.await.is_ok());
        }
    }

    #[tokio::test]
    async fn a_paged_index_serves_uploads_downloads_and_deletes_and_folds_back_into_one_blob() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let mut files = drive(&net).await;
        files.settings.index_page_files = 2;
        let mut ids = Vec::new();
        for n in 0..9u8 {
            let bytes = pattern(1000 + usize::from(n), n);
            let report = files
                .upload(&format!("f{n}"), bytes.as_slice(), |_| {
                    ControlFlow::Continue(())
                })
                .await
                .unwrap();
            ids.push((report.file.id, bytes));
        }
        // 9 files at 2 a page: depth 1 or 2 (files go by random ids).
        let (index, _) = load_index(&files).await.unwrap();
        assert!(!index.pages.is_empty());
        assert_eq!(index.files.len(), 9);
        for (id, bytes) in &ids {
            assert_eq!(&download(&files, id).await.unwrap(), bytes);
        }
        files.frees_done().await;
        let held_before = net.blocks_held().await.iter().sum::<u64>();
        for (id, _) in &ids[..8] {
            files.delete(id).await.unwrap();
        }
        files.frees_done().await;
        let (index, _) = load_index(&files).await.unwrap();
        assert_eq!(index.files.len(), 1);
        assert!(index.pages.is_empty(), "one file: one blob again");
        // Pages no longer named were freed with the files: what is held is the last file's
        // block (its manifest is in the root, the root in its record).
        let held = net.blocks_held().await.iter().sum::<u64>();
        assert!(held < held_before, "{held} >= {held_before}");
        assert_eq!(held, 3, "one block");
        assert_eq!(&download(&files, &ids[8].0).await.unwrap(), &ids[8].1);
    }
}
