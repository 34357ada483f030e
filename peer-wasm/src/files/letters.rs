//! Letters: the format of one user's word to another that files are shared with them.
//!
//! A letter is a [`RecordKind::Letter`] record stored under the *recipient's* account and
//! signed by the sharer's key. Its body is sealed to the recipient: a fresh AES-256 key
//! wrapped with RSA-OAEP to the recipient's public key, and under it (AES-256-GCM, bound to
//! the recipient's account) the sharer's username and, for each file shared with the
//! recipient, the same capability a share link carries ([`ShareLink`]: file id, key, manifest
//! address, name, size). Holders and everyone else see who wrote to whom (the sharer's key,
//! the recipient's account hash), never what.
//!
//! A sharer writes one letter per recipient, listing every file shared with them; a newer
//! letter replaces the older at every holder (`net::record_policy::merge_letter`),
//! so stopping a share is a letter without the file (and a re-keyed file).
//!
//! The recipient believes a letter only when its signer is the named sharer's current key
//! ([`genuine_key`]): a letter signed by someone else's key, or by a key the sharer has since
//! rotated away from, is refused.

use super::*;
use crate::{
    crypto::rsa_keys::PublicKey,
    record::{AccountId, SignedRecord},
};

/// What a letter's body holds, as it travels.
#[derive(Serialize, Deserialize)]
struct LetterBody {
    /// The letter's AES key, RSA-OAEP-wrapped to the recipient's public key.
    #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
    wrapped: Vec<u8>,
    /// [`Letter`], sealed under that key.
    sealed: Sealed,
}

/// A letter's content, once opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Letter {
    /// The sharer's normalised username; the recipient checks the signer is its key.
    pub(super) from: String,
    /// The files shared with the recipient, each a capability to read it.
    pub(super) files: Vec<ShareLink>,
}

/// Letters are numbered from here up: those sealed before were numbered by the sealing
/// device's clock (microseconds since the epoch, about 2^51 in 2026), and every letter
/// numbered by [`letter_seq`] replaces them.
const LETTER_SEQS: u64 = 1 << 62;
/// Bits of a letter's sequence number under the index version: the sealing second.
const SECOND_BITS: u32 = 32;
/// Index versions past this one (a billion commits) number their letters as this one.
const MAX_INDEX_VERSION: u64 = (1 << (62 - SECOND_BITS)) - 1;

/// The sequence number of a letter built from the sharer's index of version `index_version`
/// (its record's sequence number), sealed at `now_ms`: the index version first, so of two
/// letters to one user the one built from the newer index stands at the holders whatever the
/// sealing devices' clocks say. Numbered by the clock alone, a browser 30 s behind another of
/// the same user had its newer letter refused as stale for 30 s, and a holder refuses silently:
/// both browsers reported the share done and the user never saw it. Under the version, the
/// sealing second: of two letters from one index (the same files) the later stands.
pub(super) fn letter_seq(index_version: u64, now_ms: u64) -> u64 {
    let version = index_version.min(MAX_INDEX_VERSION) << SECOND_BITS;
    let second = (now_ms / 1000) & ((1 << SECOND_BITS) - 1);
    LETTER_SEQS | version | second
}

fn aad(recipient: &AccountId) -> Vec<u8> {
    let mut aad = b"jellyfish/letter/v1/".to_vec();
    aad.extend_from_slice(&recipient.0);
    aad
}

/// Seals `letter` to `recipient` (its account and current public key) and signs it with
/// sequence number `seq` ([`letter_seq`]). Refused with [`FileError::ShareLimit`] when it
/// would not fit in one record.
pub(super) async fn seal_letter(
    session: &Session,
    recipient: AccountId,
    recipient_name: &str,
    recipient_key: &PublicKey,
    letter: &Letter,
    seq: u64,
) -> Result<SignedRecord, FileError> {
    let key = SymmetricKey::random();
    let wrapped = recipient_key.wrap(key.as_bytes())?;
    let sealed = fast::seal(&key, &aad(&recipient), &encode(letter)?).await?;
    // Counted at its widest: whether a letter fits must not depend on the nonce drawn.
    let slack = sealed.widest_extra();
    let body = encode(&LetterBody { wrapped, sealed })?;
    let record = session
        .sign_letter(recipient, seq, body)
        .map_err(|e| FileError::Damaged(e.to_string()))?;
    if record.to_wire().len() + slack > crate::record::MAX_RECORD_BYTES {
        return Err(FileError::ShareLimit {
            user: recipient_name.to_string(),
            files: letter.files.len(),
        });
    }
    Ok(record)
}

/// Opens a letter to this session's account (the record was verified, signature and key).
pub(super) async fn open_letter(
    session: &Session,
    record: &VerifiedRecord,
) -> Result<Letter, FileError> {
    let body: LetterBody = decode(&record.record().body)?;
    let raw = session.unwrap_secret(&body.wrapped)?;
    let key = SymmetricKey::from_slice(&raw)?;
    let plain = fast::open(&key, &aad(&session.account()), &body.sealed).await?;
    decode(&plain)
}

/// The account's current key among the public-key records a lookup found: a record whose key
/// another found record's key took over from is an earlier key (rotated away from), and is
/// passed over; of the rest, the most widely held (a squatter's copy on a few peers loses to
/// the account's own). `None` when nothing was found.
pub(super) fn genuine_key(found: &[VerifiedRecord]) -> Option<&VerifiedRecord> {
    found.iter().find(|candidate| {
        !found
            .iter()
            .any(|later| later.descends_from(&candidate.record().owner))
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn a_letter_from_a_newer_index_outranks_any_clock_and_every_clock_numbered_letter() {
        let hour = 3_600_000;
        let now = 1_796_000_000_000; // December 2026
                                     // A device an hour ahead, from index 7, against one on time from index 8.
        assert!(letter_seq(8, now) > letter_seq(7, now + hour));
        assert!(letter_seq(8, 0) > letter_seq(7, u64::MAX));
        // Of two letters from one index, the later.
        assert!(letter_seq(7, now + 1000) > letter_seq(7, now));
        // Above what letters were numbered before: microseconds since the epoch, even in 3000.
        let year_3000_us = 32_503_680_000_000_000;
        assert!(letter_seq(0, 0) > year_3000_us);
        // Huge versions stay in the range rather than wrap below it.
        assert!(letter_seq(u64::MAX, now) >= letter_seq(MAX_INDEX_VERSION, 0));
        assert!(letter_seq(u64::MAX, now) > letter_seq(MAX_INDEX_VERSION - 1, u64::MAX));
    }
}

/// The decoder of what a letter's body holds, for the fuzz tests.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod fuzz_targets {
    use super::*;

    /// Valid encodings, by name.
    pub(crate) fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let body = LetterBody {
            wrapped: vec![7; 256],
            sealed: Sealed {
                nonce: [1; 12],
                ciphertext: vec![2; 40],
            },
        };
        let letter = Letter {
            from: "alice".into(),
            files: Vec::new(),
        };
        vec![
            ("letter body", encode(&body).unwrap_or_default()),
            ("letter", encode(&letter).unwrap_or_default()),
        ]
    }

    /// Decodes `bytes` as the type named `name`.
    pub(crate) fn decode_as(name: &str, bytes: &[u8]) {
        match name {
            "letter body" => drop(decode::<LetterBody>(bytes)),
            "letter" => drop(decode::<Letter>(bytes)),
            _ => {}
        }
    }
}
