//! Share links: the format of a capability to read one file, with no account. Pure.
//!
//! A link carries everything needed to fetch and open one file and nothing else: the file's
//! id, its key, its manifest's address, and (to show before anything is fetched) its name and
//! size, with an optional expiry. It travels in the URL's fragment (`…/#share=<token>`), which
//! browsers never send to a server, so the relay that serves the page never sees it. Whoever
//! opens it fetches the sealed manifest and blocks from the peers nearest their addresses and
//! checks each against its address, as the owner does ([`super::sharing`]).
//!
//! The token is a format version byte, then the fields in CBOR, in unpadded URL-safe base64
//! (base64ct: constant-time, so the key's bytes do not leak through timing). The format has
//! its own version, not the wire's: a link pasted in a chat must outlive protocol upgrades.
//!
//! What a link cannot do: the name, size and expiry are not signed (an edited link shows
//! another name, or no expiry, but still opens only the one file its key opens; the page's
//! expiry check is a courtesy); the owner's revocation ([`Drive::revoke_links`]) is what
//! makes a link stop working for everyone.

use base64ct::{Base64UrlUnpadded, Encoding};

use super::*;

/// The link format's version, the token's first byte.
pub const LINK_VERSION: u8 = 1;
/// Longest token accepted, in characters: a link is about 200 (a 255-character name in
/// UTF-8 makes at most 1,020 bytes); anything longer is not a link.
const MAX_TOKEN_CHARS: usize = 2048;
/// What comes before the token in a link's fragment.
pub const FRAGMENT_PREFIX: &str = "share=";

/// A capability to read one file: see the module's documentation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLink {
    /// The file's id, part of every block's associated data.
    pub(super) file: FileId,
    /// The file's key.
    pub(super) key: [u8; 32],
    /// Its sealed manifest's address (holders omitted: the peers nearest the address have it).
    pub(super) manifest: BlockId,
    /// Its name, as the owner's index had it.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// When the link stops working, milliseconds since the Unix epoch; `None`: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

impl std::fmt::Debug for ShareLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareLink")
            .field("file", &self.file.to_hex())
            .field("key", &"<secret>")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("expires_ms", &self.expires_ms)
            .finish()
    }
}

/// What a link names, shown before anything is fetched.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LinkInfo {
    /// The file's name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// When the link stops working, milliseconds since the Unix epoch.
    pub expires_ms: Option<u64>,
}

/// What the owner's index keeps of each share link made (not the link: the key is in the
/// entry already), so the owner's page can say a file is shared and revoke what expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LinkNote {
    pub(super) created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) expires_ms: Option<u64>,
}

/// Why a link cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Not a token this page can read: mistyped, or cut short when it was copied.
    #[error("this is not a Jellyfish share link, or it was cut short when it was copied")]
    Malformed,
    /// A token of another format version.
    #[error("this link was made by a newer Jellyfish (link format {0}); reload the page")]
    Version(u8),
    /// Its expiry has passed.
    #[error("this link expired")]
    Expired {
        /// When, milliseconds since the Unix epoch.
        expires_ms: u64,
    },
}

impl ShareLink {
    /// The token that goes after [`FRAGMENT_PREFIX`] in a link's fragment.
    pub fn to_token(&self) -> String {
        let mut bytes = vec![LINK_VERSION];
        // Encoding plain data into a Vec cannot fail; an empty token would be refused.
        bytes = cbor4ii::serde::to_vec(bytes, self).unwrap_or_default();
        Base64UrlUnpadded::encode_string(&bytes)
    }

    /// Reads a token (or a whole fragment, or a whole link: whatever follows the last
    /// `share=`), refusing anything malformed or oversized; does not check the expiry.
    pub fn from_token(text: &str) -> Result<Self, LinkError> {
        let token = text
            .rsplit_once(FRAGMENT_PREFIX)
            .map_or(text, |(_, token)| token)
            .trim();
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(LinkError::Malformed);
        }
        let bytes = Base64UrlUnpadded::decode_vec(token).map_err(|_| LinkError::Malformed)?;
        let (&version, body) = bytes.split_first().ok_or(LinkError::Malformed)?;
        if version != LINK_VERSION {
            return Err(LinkError::Version(version));
        }
        let link: Self = cbor4ii::serde::from_slice(body).map_err(|_| LinkError::Malformed)?;
        if link.name.is_empty() || link.name.chars().count() > 255 {
            return Err(LinkError::Malformed);
        }
        Ok(link)
    }

    /// The link, if it has not expired at `now_ms`.
    pub fn check_expiry(&self, now_ms: u64) -> Result<&Self, LinkError> {
        match self.expires_ms {
            Some(expires_ms) if expires_ms <= now_ms => Err(LinkError::Expired { expires_ms }),
            _ => Ok(self),
        }
    }

    /// What it names, for the page.
    pub fn info(&self) -> LinkInfo {
        LinkInfo {
            name: self.name.clone(),
            size: self.size,
            expires_ms: self.expires_ms,
        }
    }

    /// The file's key.
    pub(super) fn key(&self) -> SymmetricKey {
        SymmetricKey::from_bytes(self.key)
    }
}

impl LinkNote {
    /// Whether the link has expired at `now_ms`.
    pub(super) fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|at| at <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn link() -> ShareLink {
        ShareLink {
            file: FileId([3; 16]),
            key: [9; 32],
            manifest: BlockId([7; 32]),
            name: "holiday photos.zip".into(),
            size: 5 * 1024 * 1024 + 3,
            expires_ms: Some(1_800_000_000_000),
        }
    }

    #[test]
    fn a_token_reads_back_from_itself_a_fragment_or_a_whole_link() {
        let link = link();
        let token = link.to_token();
        assert!(token.len() < 300, "{} characters", token.len());
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(ShareLink::from_token(&token), Ok(link.clone()));
        assert_eq!(
            ShareLink::from_token(&format!("share={token}")),
            Ok(link.clone())
        );
        let url = format!("http://127.0.0.1:8080/#share={token}\n");
        assert_eq!(ShareLink::from_token(&url), Ok(link));
    }

    #[test]
    fn cut_short_altered_oversized_or_other_version_tokens_are_refused() {
        let token = link().to_token();
        for cut in [1, 10, token.len() / 2, token.len() - 1] {
            assert_eq!(
                ShareLink::from_token(&token[..cut]),
                Err(LinkError::Malformed),
                "cut at {cut}"
            );
        }
        assert_eq!(ShareLink::from_token(""), Err(LinkError::Malformed));
        assert_eq!(
            ShareLink::from_token("not a link!"),
            Err(LinkError::Malformed)
        );
        assert_eq!(
            ShareLink::from_token(&"A".repeat(MAX_TOKEN_CHARS + 4)),
            Err(LinkError::Malformed)
        );
        let mut bytes = Base64UrlUnpadded::decode_vec(&token).unwrap();
        bytes[0] = 2;
        assert_eq!(
            ShareLink::from_token(&Base64UrlUnpadded::encode_string(&bytes)),
            Err(LinkError::Version(2))
        );
        let nameless = ShareLink {
            name: String::new(),
            ..link()
        };
        assert_eq!(
            ShareLink::from_token(&nameless.to_token()),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn a_link_works_until_its_expiry_and_not_from_then_on() {
        let link = link();
        assert!(link.check_expiry(1_799_999_999_999).is_ok());
        assert_eq!(
            link.check_expiry(1_800_000_000_000).err(),
            Some(LinkError::Expired {
                expires_ms: 1_800_000_000_000
            })
        );
        let forever = ShareLink {
            expires_ms: None,
            ..link
        };
        assert!(forever.check_expiry(u64::MAX).is_ok());
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let shown = format!("{:?}", link());
        assert!(shown.contains("<secret>") && !shown.contains("9, 9"));
    }
}
