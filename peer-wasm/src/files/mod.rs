//! Files: upload (file -> blocks -> seal -> place -> store), list, download and delete.
//!
//! Everything a user stores is reached from one signed DHT record of kind
//! [`RecordKind::FileIndex`]. Its body carries the sealed *index* while it is small, else points
//! at it, a blob stored like any block (`index.rs`); the index lists the files (name, size, time,
//! the file's key wrapped under the user key) and where each file's sealed *manifest* is; a
//! manifest lists the file's blocks and their holders. Holders see only sealed, content-addressed
//! blocks and who signed for them.
//!
//! An upload is committed only when every block has at least one holder: then the new index
//! is stored and the record's sequence goes up. If an upload fails half way or is cancelled,
//! the index never names the blocks already placed, and their holders are asked to free them.
//!
//! Every store request carries the user's pledges (what each of their browsers donates, signed
//! by that browser), kept in the sealed index: holders refuse owners whose pledges do not cover
//! what they would hold ([`crate::pledge`]).
//!
//! Sharing hands out the capability to read one file (its id, key and manifest address):
//! in a link's fragment (`link.rs`, `sharing.rs`), or to another user in a letter sealed to
//! their public key and stored under their account (`letters.rs`, `users.rs`). Stopping
//! either re-keys the file.

mod ahead;
mod attempts;
mod blocks;
mod drive;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod fake;
mod fetch;
mod head_start;
mod index;
mod journal;
mod letters;
mod link;
mod manifest;
mod rotation;
mod sharing;
mod slots;
mod users;

use std::{ops::ControlFlow, time::Duration};

use futures::{future::join_all, FutureExt, StreamExt};
use libp2p::{identity::Keypair, PeerId};
use serde::{Deserialize, Serialize};

use crate::{
    account::Session,
    audit,
    block::{open_block, seal_block, BlockError, BlockId, FileId, BLOCK_SIZE},
    crypto::{aead::Sealed, fast, sha256, CryptoError, SymmetricKey},
    net::{Client, NetError, Network},
    platform::Shared,
    pledge::{Pledge, PledgeError, MAX_PLEDGE_BYTES},
    protocol::{self, delete_statement, Request, Response},
    receipt::Placed,
    record::{dht_key, RecordError, RecordKind, VerifiedRecord},
    store::OwnerHash,
    warrant::Warrant,
};

pub use attempts::{Attempts, PeerFailure};
pub use index::IndexCache;
#[cfg(target_arch = "wasm32")]
pub(crate) use journal::UPLOADS;
pub use journal::{JournalError, LostIndexPuts, UploadJournal};
pub use link::{LinkError, LinkInfo, ShareLink, FRAGMENT_PREFIX, LINK_VERSION};
pub use sharing::download_link;
pub use users::{SharedFile, SharedWithMe};

// What the rooms share with each other and with the operations here.
use ahead::*;
use blocks::*;
use drive::*;
use fetch::*;
use head_start::*;
use index::*;
use link::LinkNote;
use manifest::*;
use users::{first_error, Received};

/// Copies of each block, by default.
pub const DEFAULT_REPLICAS: usize = 3;
/// Position used to seal a manifest or an index blob (data blocks count up from 0).
const META_POSITION: u64 = u64::MAX;

/// How files are stored and fetched: the tuning of this layer, in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Copies of each block an upload asks for: 3 ([`DEFAULT_REPLICAS`]), so a block
    /// survives two of its holders leaving at once. Quotas divide donations by it.
    pub replicas: usize,
    /// Copies of each placed manifest and index blob: 5 (never fewer than `replicas`). Every
    /// file needs its manifest and every file of the account needs the index, so losing one
    /// loses files whose data blocks all survive; they are small (a manifest under 256 bytes
    /// per MiB of file, the index under 512 bytes per file), so two more copies cost little
    /// (measured in `metadata_is_small_beside_what_it_describes`). With holders leaving
    /// independently, the chance that all copies are gone falls from p^3 to p^5: at half the peers
    /// gone, 1 in 8 becomes 1 in 32.
    pub meta_replicas: usize,
    /// Blocks being sent to holders at once during an upload (2 more are walked for
    /// meanwhile), and being fetched at once during a download: 4. Enough to keep three
    /// holders busy per block while the next is sealed; memory stays at about
    /// (`pipeline` + 2) x 1 MiB x 2 (plain and sealed) whatever the file's size.
    pub pipeline: usize,
    /// How long one holder may take to hand over one block before the next is asked: 10 s.
    /// A 1 MiB block over a relayed link at 1 MiB/s takes about 1 s; ten times that is a
    /// holder that is gone or overloaded.
    pub fetch_deadline: Duration,
    /// How long a fetch waits for the peer it asked before asking the next one as well: 2 s,
    /// twice what a 1 MiB block takes over a relayed link at 1 MiB/s (a fetch from a direct
    /// holder took 73 to 310 ms at p50 in the 8-tab cluster, session 44). A holder that is
    /// busy or stalls on purpose then costs a block 2 s, not [`Settings::fetch_deadline`],
    /// and at most one more copy of the block is fetched for it.
    pub hedge_after: Duration,
    /// How long a lookup of the file index that heard too few peers is tried again before
    /// the operation fails: 30 s, as log-in waits ([`crate::account::NETWORK_WAIT`]).
    pub network_wait: Duration,
    /// Blocks per file an audit challenges besides the manifest: 4, picked at random, so a
    /// holder that dropped a quarter of a file's blocks is caught with a 68 % chance per
    /// audit and over 99 % after four.
    pub audit_blocks_per_file: usize,
    /// Block references per manifest: 2,048 (a manifest of about 512 KiB with five holders
    /// per block, measured in `metadata_is_small_beside_what_it_describes`). A larger file's
    /// manifest is a tree: a root listing parts that list the blocks (`manifest.rs`), up to
    /// 2,048 x 2,048 blocks, 4 TiB.
    pub manifest_blocks: usize,
    /// Files an index page holds on average: 256 (a page of about 128 KiB), more once the
    /// root would list over 1,024 pages. An index of at most this many files is one blob; a
    /// larger one is a root listing pages, each holding the files whose ids start with the
    /// same bits (`index.rs`), so adding or removing a file re-seals one page and the root,
    /// whatever the number of files.
    pub index_page_files: usize,
    /// The largest sealed manifest kept inside its file's index entry rather than placed as a
    /// blob of its own: 1 KiB (237 bytes sealed for one block with three holders, 190 more for
    /// each further block: files of up to 4 or 5 MiB). A small upload so stores its
    /// blocks and the index, not 5 more copies of a few hundred bytes (13 stores and 4 walks
    /// become 8 and 3 for 1 MiB), and its download needs no manifest fetch; the index, kept on
    /// [`Settings::meta_replicas`] peers itself, keeps it as safe. A link or a letter places
    /// it when the file is first shared (the recipient has no user key to open the index);
    /// 0 places every manifest.
    pub inline_manifest_bytes: usize,
    /// The largest sealed index root that rides in the account's index record rather than
    /// being placed as a blob of its own: 5 KiB (an index of 8 one-block files), and never more
    /// than a password change can pin ([`crate::account::MAX_INDEX_PIN`], 5.5 KiB with the
    /// pointer's framing) or the record has room for ([`crate::account::Session::record_room`]:
    /// about 15 KiB, 8.5 KiB after the most password changes). The record is put on its
    /// holders at every save anyway, so a small account's upload stores its blocks and the
    /// record, not 5 more copies of a few KiB (a 1 MiB upload: 3 stores, not 8), and a log-in
    /// or a reload reads the index with the record, fetching nothing. Past it, or 0, the root
    /// is placed on [`Settings::meta_replicas`] peers and the record names it.
    pub inline_index_bytes: usize,
    /// How long an upload in the journal must have placed nothing before a log-in takes it
    /// for cut short and frees its blocks: 10 min. An upload notes a block every second or so;
    /// another tab of this profile may be uploading for the same account right now.
    pub abandoned_after: Duration,
}

impl Settings {
    /// Copies of a block sealed at `position`: [`Settings::meta_replicas`] for a manifest, a
    /// manifest's part or the index (sealed at positions far above every data block's), else
    /// [`Settings::replicas`].
    pub fn copies_at(&self, position: u64) -> usize {
        if position >= FIRST_META_POSITION {
            self.meta_replicas.max(self.replicas)
        } else {
            self.replicas
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            replicas: DEFAULT_REPLICAS,
            meta_replicas: 5,
            pipeline: 4,
            fetch_deadline: Duration::from_secs(10),
            hedge_after: Duration::from_secs(2),
            network_wait: crate::account::NETWORK_WAIT,
            audit_blocks_per_file: 4,
            manifest_blocks: 2048,
            index_page_files: 256,
            inline_manifest_bytes: 1024,
            inline_index_bytes: 5 * 1024,
            abandoned_after: Duration::from_secs(10 * 60),
        }
    }
}

/// A logged-in user's files: every file operation is a method here. It holds what each of
/// them needs (the network, the session, the [`Settings`] and this browser's donation), so
/// none takes more than what is particular to it. Cheap to make: one per operation is fine.
#[derive(Clone)]
pub struct Drive<N = Client> {
    /// The network: [`Client`], or an in-memory one in tests.
    client: N,
    session: Shared<Session>,
    settings: Settings,
    /// What this browser donates, pledged with uploads and re-sealed indexes; `None`: it
    /// pledges nothing new (the pledges already in the index still count).
    donation: Option<Donation>,
    /// Where uploads note their blocks until they are in the index; `None`: not noted.
    journal: Option<Shared<UploadJournal>>,
    /// The index root and pages this tab has opened or sealed (`index.rs`).
    index_cache: Shared<IndexCache>,
    /// Frees under way in the background ([`blocks::free_in_background`]).
    freeing: Shared<std::sync::atomic::AtomicUsize>,
}

/// Why a file operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Not a single peer took a block.
    #[error("upload failed: block {index} could not be stored on any peer ({attempts}); nothing was saved")]
    NoHolder {
        /// Which block ([`u64::MAX`] for a manifest or the index).
        index: u64,
        /// What the peers asked did.
        #[source]
        attempts: Attempts,
    },
    /// No holder had a good copy of a block.
    #[error("block {index} of {name:?} could not be fetched from any holder ({attempts})")]
    Unavailable {
        /// The file.
        name: String,
        /// Which block ([`u64::MAX`] for the manifest).
        index: u64,
        /// What the holders, then the peers near the block's address, did.
        #[source]
        attempts: Attempts,
    },
    /// The file index (which lists every file) could not be fetched from any holder.
    #[error("the file index cannot be fetched ({0}); try again when more peers are online")]
    IndexUnavailable(#[source] Attempts),
    /// The peers heard hold only an older version of the index than this tab has seen (holders
    /// that missed the newest save): read, it would show an old file list, and a save on it
    /// would drop what came since. Tried again for as long as a lookup that heard too few.
    #[error("the peers reached hold an older file index (version {heard}) than this browser saw (version {seen}); try again when more peers are online")]
    IndexBehind {
        /// The newest version this tab read or wrote.
        seen: u64,
        /// The newest version the peers heard hold (0: none).
        heard: u64,
    },
    /// The peers heard hold only a record of an earlier key of the account's, where this tab
    /// has seen the current key's (holders that missed every save since the password
    /// changed): read, it would show the file list from before the change. Tried again as
    /// [`FileError::IndexBehind`] is.
    #[error("the peers reached hold only a file index saved before the password changed, where this browser saw a newer one (version {seen}); try again when more peers are online")]
    IndexBeforeChange {
        /// The version of the current key's record this tab read or wrote.
        seen: u64,
    },
    /// The upload would exceed what the user's donations earn.
    #[error("over quota: this upload needs {size} bytes but you use {used} of {quota}; donate more space or delete files")]
    OverQuota {
        /// The upload's size.
        size: u64,
        /// Bytes already used.
        used: u64,
        /// Bytes allowed.
        quota: u64,
    },
    /// The user cancelled; nothing was saved and placed blocks were freed.
    #[error("cancelled")]
    Cancelled,
    /// No file has this id.
    #[error("no such file")]
    NoSuchFile,
    /// The file name is empty or too long.
    #[error("file names are 1 to 255 characters")]
    BadName,
    /// The file is larger than a manifest tree holds (refused before anything is placed).
    #[error("this file is {size} bytes; the largest file Jellyfish stores is {max} bytes")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The largest size stored.
        max: u64,
    },
    /// Reading the source failed.
    #[error("reading the file failed: {0}")]
    Read(String),
    /// The index or a manifest is damaged.
    #[error("the file index is damaged: {0}")]
    Damaged(String),
    /// A block failed its checks.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// Crypto failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The network failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A record was refused.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// This browser's pledge could not be signed.
    #[error(transparent)]
    Pledge(#[from] PledgeError),
    /// A write that must pledge this browser's donation was asked of a drive without one.
    #[error("this browser's donation is needed to re-seal the file index; try again")]
    NoDonation,
    /// A share link that cannot be used (malformed, of another version, expired).
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Every peer asked for a share link's file said it does not hold it: the owner revoked
    /// the link or deleted the file (peers that were heard, not silence).
    #[error("this link no longer works: the peers that would hold the file say it is not there (its owner stopped sharing it or deleted it) ({0})")]
    LinkGone(#[source] Attempts),
    /// No account has the username a file was to be shared with (enough peers were heard to
    /// say so: a lookup that heard too few fails with `network_unreachable` instead).
    #[error("no account has the username {0:?}; check it")]
    UnknownUser(String),
    /// A user cannot share a file with themselves.
    #[error("this file is yours already; share it with someone else")]
    ShareWithSelf,
    /// The username is not one an account can have.
    #[error("{0:?} is not a username: usernames are 3 to 32 letters, digits, '.', '_' or '-'")]
    BadUsername(String),
    /// One user has shared as many files with another as one letter carries.
    #[error("you share {files} files with {user} already, as many as one user can be given; stop sharing some first")]
    ShareLimit {
        /// The recipient.
        user: String,
        /// Files shared with them.
        files: usize,
    },
    /// The index lists as many files as its root can name pages for (about 4 million).
    #[error("your drive lists {0} files, as many as its index holds; delete some first")]
    IndexFull(usize),
    /// A letter (what a user is given of the files shared with them) went out and no peer
    /// confirmed it: it may have landed (and this tab's DHT sends what it put again, hourly);
    /// or the network stopped as it was sent (the tab closing).
    /// What it says stands: a file being shared stays shared (stopping sharing takes it back),
    /// and the user gets their letter again at the next log-in.
    #[error(
        "no peer confirmed the letter to {user} ({source}); it goes again at your next log-in"
    )]
    LetterUnconfirmed {
        /// The recipient.
        user: String,
        /// How the put failed (boxed: a network error is large, and every `FileError` would
        /// be as large).
        #[source]
        source: Box<NetError>,
    },
}

impl FileError {
    /// Every code [`FileError::code`] gives (the page's TypeScript union is made from it).
    pub const CODES: &[&str] = &[
        "no_holder",
        "unavailable",
        "index_unavailable",
        "over_quota",
        "cancelled",
        "no_such_file",
        "bad_name",
        "too_large",
        "read_failed",
        "index_damaged",
        "block_invalid",
        "crypto_failed",
        "network_unreachable",
        "record_refused",
        "network",
        "pledge_failed",
        "no_donation",
        "bad_link",
        "link_expired",
        "link_gone",
        "unknown_user",
        "share_self",
        "bad_username",
        "share_limit",
        "index_full",
        "letter_unconfirmed",
    ];

    /// A stable code for each kind of failure, for the page to switch on (never the text).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoHolder { .. } => "no_holder",
            Self::Unavailable { .. } => "unavailable",
            Self::IndexUnavailable(_)
            | Self::IndexBehind { .. }
            | Self::IndexBeforeChange { .. } => "index_unavailable",
            Self::OverQuota { .. } => "over_quota",
            Self::Cancelled => "cancelled",
            Self::NoSuchFile => "no_such_file",
            Self::BadName => "bad_name",
            Self::TooLarge { .. } => "too_large",
            Self::Read(_) => "read_failed",
            Self::Damaged(_) => "index_damaged",
            Self::Block(_) => "block_invalid",
            Self::Crypto(_) => "crypto_failed",
            Self::Net(NetError::TooFewPeers { .. }) => "network_unreachable",
            Self::Net(NetError::Record(_)) | Self::Record(_) => "record_refused",
            Self::Net(_) => "network",
            Self::Pledge(_) => "pledge_failed",
            Self::NoDonation => "no_donation",
            Self::Link(LinkError::Expired { .. }) => "link_expired",
            Self::Link(_) => "bad_link",
            Self::LinkGone(_) => "link_gone",
            Self::UnknownUser(_) => "unknown_user",
            Self::ShareWithSelf => "share_self",
            Self::BadUsername(_) => "bad_username",
            Self::IndexFull(_) => "index_full",
            Self::ShareLimit { .. } => "share_limit",
            Self::LetterUnconfirmed { .. } => "letter_unconfirmed",
        }
    }
}

/// A stored block and the peers that confirmed holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Its address.
    pub id: BlockId,
    /// Peers that said "stored".
    pub holders: Vec<String>,
}

/// A file as the index lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    id: FileId,
    name: String,
    size: u64,
    created_ms: u64,
    /// The file's key, sealed under the user key.
    key: Sealed,
    /// Its manifest's address, and the peers holding it once placed (none while it is kept
    /// inline only).
    manifest: BlockRef,
    /// The sealed manifest itself, for a small file ([`Settings::inline_manifest_bytes`]):
    /// read from here, not fetched. Placed as well (holders in `manifest`) once the file is
    /// shared. A page from before this field fetches the manifest and finds it nowhere.
    #[serde(default, rename = "inline", skip_serializing_if = "Option::is_none")]
    manifest_inline: Option<SealedManifest>,
    /// Fewest copies any of its blocks has.
    copies: u32,
    /// Its blocks are still claimed by a key from before a password change
    /// ([`Drive::move_claims`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    claims_behind: bool,
    /// The share links made for its current key, until they are revoked ([`link`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<LinkNote>,
    /// The users it is shared with (normalised usernames), each sent a letter ([`users`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    shared_with: Vec<String>,
}

/// A file stored (blocks and manifest sealed under its key and placed): what an index entry
/// needs but its name, and where the time went.
pub(super) struct Stored {
    manifest: BlockRef,
    /// The sealed manifest when it is kept in the index entry ([`FileEntry::manifest_inline`]).
    manifest_inline: Option<SealedManifest>,
    /// Fewest holders any block or the manifest has (a manifest kept inline not counted).
    copies: u32,
    size: u64,
    receipts: Vec<Placed>,
    blocks: Vec<BlockRef>,
    /// The manifest's parts (none for a file of up to [`Settings::manifest_blocks`] blocks).
    parts: Vec<BlockRef>,
    blocks_ms: u64,
    manifest_ms: u64,
    /// Whether the manifest was placed ahead, while the blocks were on their way ([`ahead`]).
    ahead: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct FileIndex {
    /// Written under `entries` when one has an unplaced inline manifest (`index.rs`,
    /// `under_entries`).
    #[serde(alias = "entries")]
    files: Vec<FileEntry>,
    /// What each of the user's browsers donates (peer id -> its signed pledge), as each last
    /// reported. Sent with every store request.
    #[serde(default)]
    donations: std::collections::BTreeMap<String, Pledge>,
    /// What other users shared with this one, per sharer (normalised username) as their
    /// newest letter said ([`users`]): kept here so a share outlives its letter, and so an
    /// older letter (a replay) is known for one.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    received: std::collections::BTreeMap<String, Received>,
    /// A large index's pages (`index.rs`); when there are any, `files` is empty in the root
    /// as stored, and holds every page's files once loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pages: Vec<PageRef>,
    /// Users owed a letter: a change left them with less than their last letter lists (a
    /// file deleted, or no longer shared with them) and its letter may not have gone (the
    /// tab closed, no peer took it). Each is sent one with every log-in's letters
    /// ([`Drive::send_all_letters`]) and dropped once told; the tag (random, per change) keeps
    /// a user owed again meanwhile. Without it a user a deleted file was shared with, and
    /// nothing else, kept the file in their list for good.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    owed: Owed,
    /// Re-seal every page at the next save, none reused: they were sealed under an earlier
    /// user key (a password change).
    #[serde(skip)]
    reseal: bool,
}

impl FileIndex {
    fn quota(&self, replicas: usize) -> Quota {
        let donated: u64 = self
            .donations
            .values()
            .map(|p| p.bytes.min(MAX_PLEDGE_BYTES))
            .sum();
        Quota {
            used: self.files.iter().map(|f| f.size).sum(),
            quota: donated / replicas.max(1) as u64,
        }
    }

    fn pledges(&self) -> Vec<Pledge> {
        self.donations.values().cloned().collect()
    }

    /// Notes that `users` are owed a letter ([`FileIndex::owed`]), each with a new tag; returns
    /// the tags set. At most [`MAX_OWED`] users are kept (past that a debt is logged and
    /// dropped; every successful letter pays one, so only letters that keep failing fill it).
    fn owe<'a>(&mut self, users: impl IntoIterator<Item = &'a String>) -> Owed {
        let mut set = Owed::new();
        for user in users {
            if self.owed.len() >= MAX_OWED && !self.owed.contains_key(user) {
                tracing::warn!(%user, "too many users owed a letter; this one is not noted");
                continue;
            }
            let tag = u64::from_le_bytes(crate::crypto::random_bytes());
            self.owed.insert(user.clone(), tag);
            set.insert(user.clone(), tag);
        }
        set
    }
}

/// Users owed a letter, each with the tag of the change that owes it ([`FileIndex::owed`]).
type Owed = std::collections::BTreeMap<String, u64>;

/// Users the index keeps owed a letter at most ([`FileIndex::owe`]).
const MAX_OWED: usize = 256;

/// What a user may store: what their browsers donate, divided by the copies each block takes.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Quota {
    /// Bytes of files stored.
    pub used: u64,
    /// Bytes the user may store.
    pub quota: u64,
}

/// A browser's donation, pledged with each upload and each re-sealed index, and counted by
/// [`Drive::quota`].
#[derive(Debug, Clone)]
pub struct Donation {
    /// The donating peer's key, which signs the pledge.
    pub keypair: Keypair,
    /// Bytes it donates.
    pub bytes: u64,
}

impl Donation {
    fn pledge(&self, session: &Session) -> Result<(String, Pledge), FileError> {
        let peer = self.keypair.public().to_peer_id().to_string();
        let pledge = Pledge::sign(&self.keypair, owner_hash(session)?, self.bytes)?;
        Ok((peer, pledge))
    }
}

fn owner_hash(session: &Session) -> Result<[u8; 32], FileError> {
    Ok(sha256(&session.public_key().to_der()?))
}

/// What the page shows of a file.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileInfo {
    /// Id for download and delete (hex).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Upload time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Fewest copies any of its blocks had at upload, or live at the last audit
    /// ([`Drive::audit`]).
    pub copies: u32,
    /// Share links made for it that have not expired ([`Drive::share_link`]); they work
    /// until [`Drive::revoke_links`].
    pub links: u32,
    /// Share links made for it that have expired but still open it, until one of the
    /// owner's browsers revokes them ([`Drive::revoke_expired_links`]).
    pub expired_links: u32,
    /// The users it is shared with ([`Drive::share_with`]).
    pub shared_with: Vec<String>,
}

/// What an upload achieved.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UploadReport {
    /// The new file.
    pub file: FileInfo,
    /// Copies asked for.
    pub replicas: u32,
    /// Whether every block reached the asked number of copies.
    pub complete: bool,
}

/// Where an upload reads from, block by block, so memory stays flat whatever the size.
#[allow(async_fn_in_trait)]
pub trait Source {
    /// Total bytes.
    fn size(&self) -> u64;
    /// Reads `len` bytes at `offset`.
    async fn read(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, FileError>;
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    async fn read(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, FileError> {
        let start = usize::try_from(offset).map_err(|e| FileError::Read(e.to_string()))?;
        let end = start.saturating_add(len).min(self.len());
        Ok(self.get(start..end).unwrap_or_default().to_vec())
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FileError> {
    protocol::encode(value).map_err(|e| FileError::Damaged(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FileError> {
    protocol::decode(bytes, crate::block::MAX_SEALED_BLOCK)
        .map_err(|e| FileError::Damaged(e.to_string()))
}

fn index_file_id(session: &Session) -> FileId {
    let hash = sha256(&[b"jellyfish/index/v1/".as_slice(), &session.account().0].concat());
    let mut id = [0u8; 16];
    id.copy_from_slice(&hash[..16]);
    FileId(id)
}

fn file_key_aad(file: &FileId) -> Vec<u8> {
    [b"jellyfish/file-key/v1/".as_slice(), &file.0].concat()
}

fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn info(entry: &FileEntry) -> FileInfo {
    let now = now_ms();
    FileInfo {
        id: entry.id.to_hex(),
        name: entry.name.clone(),
        size: entry.size,
        created_ms: entry.created_ms,
        copies: entry.copies,
        links: entry.links.iter().filter(|l| !l.expired(now)).count() as u32,
        expired_links: entry.links.iter().filter(|l| l.expired(now)).count() as u32,
        shared_with: entry.shared_with.clone(),
    }
}

/// The decoders of what a holder hands back (manifests, the index and its pointer, after
/// decryption), for the fuzz tests: valid encodings to mutate, and one decoder per name.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod fuzz_targets {
    use base64ct::Encoding;

    use super::*;

    /// Valid encodings of each type, by name.
    pub(crate) fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let block = BlockRef {
            id: BlockId([7; 32]),
            holders: vec!["12D3KooWExample".into(), String::new()],
        };
        let entry = FileEntry {
            id: FileId([1; 16]),
            name: "photo.jpg".into(),
            size: 5 << 20,
            created_ms: 1_700_000_000_000,
            key: Sealed {
                nonce: [2; 12],
                ciphertext: vec![3; 48],
            },
            manifest: block.clone(),
            manifest_inline: Some(SealedManifest::for_tests(vec![4; 300])),
            copies: 3,
            claims_behind: true,
            links: vec![
                LinkNote {
                    created_ms: 1_700_000_000_000,
                    expires_ms: Some(1_800_000_000_000),
                },
                LinkNote {
                    created_ms: 1_700_000_000_001,
                    expires_ms: None,
                },
            ],
            shared_with: vec!["bob".into()],
        };
        let keypair = Keypair::generate_ed25519();
        let entry_for_pages = entry.clone();
        let mut index = FileIndex {
            files: vec![entry.clone(), entry],
            ..Default::default()
        };
        if let Ok(pledge) = Pledge::sign(&keypair, [4; 32], 1 << 30) {
            index.donations.insert("peer".into(), pledge);
        }
        let manifest = Manifest {
            blocks: vec![block.clone(); 3],
            parts: Vec::new(),
        };
        let root = Manifest {
            blocks: Vec::new(),
            parts: vec![block.clone(); 2],
        };
        let link = ShareLink {
            file: FileId([1; 16]),
            key: [5; 32],
            manifest: block.id,
            name: "photo.jpg".into(),
            size: 5 << 20,
            expires_ms: Some(1_800_000_000_000),
        };
        // A link's bytes before base64, so mutations reach the CBOR decoder.
        let link = base64ct::Base64UrlUnpadded::decode_vec(&link.to_token())
            .map_err(|e| FileError::Read(e.to_string()));
        [
            ("share link", link),
            ("manifest", encode(&manifest)),
            ("manifest", encode(&root)),
            ("index", encode(&index)),
            ("index pointer", encode(&IndexPointer::placed(block))),
            ("index pointer", encode(&IndexPointer::inline(vec![6; 900]))),
        ]
        .into_iter()
        .filter_map(|(name, bytes)| Some((name, bytes.ok()?)))
        .chain(letters::fuzz_targets::seeds())
        .chain(index::fuzz_seeds(&entry_for_pages))
        .collect()
    }

    /// Decodes `bytes` as the type `name` names, and uses what decodes as the peer would.
    pub(crate) fn decode_as(name: &str, bytes: &[u8]) {
        match name {
            "manifest" => {
                let _ = decode::<Manifest>(bytes).map(|m| m.blocks.len() + m.parts.len());
            }
            "share link" => {
                let token = base64ct::Base64UrlUnpadded::encode_string(bytes);
                let _ = ShareLink::from_token(&token).map(|l| l.check_expiry(0).is_ok());
                let _ = ShareLink::from_token(&String::from_utf8_lossy(bytes));
            }
            "index" => {
                if let Ok(index) = decode::<FileIndex>(bytes) {
                    let _ = index.quota(3);
                    let _ = crate::pledge::allowance(&index.pledges(), &[4; 32]);
                }
            }
            "letter body" | "letter" => letters::fuzz_targets::decode_as(name, bytes),
            "index page" => index::fuzz_page(bytes),
            _ => {
                let _ = decode::<IndexPointer>(bytes);
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn metadata_is_small_beside_what_it_describes() {
        let peer = || libp2p::PeerId::random().to_string();
        let block = |n: u8| BlockRef {
            id: BlockId([n; 32]),
            holders: vec![peer(), peer(), peer()],
        };
        let manifest = Manifest {
            blocks: (0..100).map(block).collect(),
            parts: Vec::new(),
        };
        let per_block = encode(&manifest).unwrap().len() / 100;
        assert!(
            per_block < 256,
            "{per_block} bytes of manifest per 1 MiB block"
        );
        // A full manifest (or a root full of parts), five holders to each reference, fits in
        // a block with room to spare.
        let full = Manifest {
            blocks: (0..Settings::default().manifest_blocks)
                .map(|n| BlockRef {
                    id: BlockId([n as u8; 32]),
                    holders: (0..5).map(|_| peer()).collect(),
                })
                .collect(),
            parts: Vec::new(),
        };
        let full = encode(&full).unwrap().len();
        assert!(full < 3 * BLOCK_SIZE / 4, "a full manifest is {full} bytes");
        let entry = |n: u8| FileEntry {
            id: FileId([n; 16]),
            name: format!("holiday photo {n:03}.jpg"),
            size: 3 << 20,
            created_ms: 1_700_000_000_000,
            key: Sealed {
                nonce: [2; 12],
                ciphertext: vec![3; 48],
            },
            manifest: BlockRef {
                id: BlockId([n; 32]),
                holders: (0..5).map(|_| peer()).collect(),
            },
            manifest_inline: None,
            copies: 3,
            claims_behind: false,
            links: Vec::new(),
            shared_with: Vec::new(),
        };
        let index = FileIndex {
            files: (0..100).map(entry).collect(),
            ..Default::default()
        };
        let per_file = encode(&index).unwrap().len() / 100;
        assert!(per_file < 512, "{per_file} bytes of index per file");
    }

    #[test]
    fn manifests_and_the_index_get_more_copies_than_data_blocks() {
        let settings = Settings::default();
        assert_eq!(settings.copies_at(0), 3);
        assert_eq!(settings.copies_at(7), 3);
        assert_eq!(settings.copies_at(META_POSITION), 5);
        let many = Settings {
            replicas: 7,
            ..Settings::default()
        };
        assert_eq!(
            many.copies_at(META_POSITION),
            7,
            "never fewer than data blocks"
        );
    }

    #[tokio::test]
    async fn a_holder_that_never_answers_costs_only_the_deadline() {
        let started = std::time::Instant::now();
        let silent = futures::future::pending::<Result<Response, NetError>>();
        let answer = with_deadline(std::time::Duration::from_millis(50), silent).await;
        assert!(matches!(answer, Err(NetError::Timeout(_))), "{answer:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let prompt = async { Ok(Response::Deleted) };
        assert!(matches!(
            with_deadline(std::time::Duration::from_secs(5), prompt).await,
            Ok(Response::Deleted)
        ));
    }
}
