//! Signed records: the only thing Jellyfish keeps in the DHT.
//!
//! A [`SignedRecord`] names its type, the account it belongs to, a sequence number, its owner's
//! RSA public key and a body, and carries the owner's RSA-PSS signature over all of that. Every
//! peer checks a record with [`VerifiedRecord::from_wire`] before storing or serving it, and
//! [`VerifiedRecord::may_replace`] before it replaces one it holds: a record is refused if it is
//! oversized, malformed, of an unknown type, stored under the wrong key, badly signed, signed by
//! another owner than the record it would replace, or older than it. After a password change the
//! account's records are signed by a new key and carry the chain of hand-overs from the earlier
//! ones ([`crate::key_history`]): a record by a later key replaces one by an earlier key, never
//! the other way round.

use serde::{Deserialize, Serialize};

use crate::{
    crypto::{aead::serde_bytes_vec, rsa_keys::PublicKey, sha256, CryptoError},
    key_history::{self, HistoryError, KeyLink},
    protocol,
};

/// Largest record accepted, encoded.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

/// What a record holds. Unknown types fail to decode and are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordKind {
    /// The account's public key; the body is empty (the owner field is the content).
    PublicKey,
    /// The account's private key, sealed under a key derived from the password.
    PrivateKey,
    /// The account's AES user key, encrypted to its public key.
    UserKey,
    /// Where the account's sealed file index is stored.
    FileIndex,
    /// The owner's word that its blocks are still wanted: the sequence number is the Unix
    /// time it was signed, the body empty. Stored under the hash of the key it speaks for (the
    /// account's current key, or an earlier one it handed over from), not under an account:
    /// holders know a block's owner key from its warrant, not its account
    /// ([`crate::repair::unrenewed`]).
    Lease,
    /// A user's word to another user that files are shared with them: stored under the
    /// *recipient's* account, signed by the sharer, the body sealed to the recipient
    /// ([`crate::files`]'s letters). Many sharers write under one recipient's key, so unlike
    /// every other kind the DHT value there is a [`LetterBundle`]: per sharer its newest
    /// letter.
    Letter,
}

impl RecordKind {
    fn tag(self) -> u8 {
        match self {
            Self::PublicKey => 1,
            Self::PrivateKey => 2,
            Self::UserKey => 3,
            Self::FileIndex => 4,
            Self::Lease => 5,
            Self::Letter => 6,
        }
    }
}

/// Identifies an account without naming it: SHA-256 of the normalised username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountId(pub [u8; 32]);

/// The DHT key of the record of `kind` for `account`.
pub fn dht_key(kind: RecordKind, account: &AccountId) -> Vec<u8> {
    let mut input = b"jellyfish/record/v1/".to_vec();
    input.push(kind.tag());
    input.extend_from_slice(&account.0);
    sha256(&input).to_vec()
}

/// The [`AccountId`] a [`RecordKind::Lease`] for owner key `der` (SPKI DER) is stored under:
/// the key's hash.
pub fn lease_account(der: &[u8]) -> AccountId {
    AccountId(sha256(der))
}

/// A record as it travels and is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// What it holds.
    pub kind: RecordKind,
    /// The account it belongs to.
    pub account: AccountId,
    /// Higher replaces lower.
    pub seq: u64,
    /// The owner's RSA public key, SPKI DER.
    #[serde(with = "serde_bytes_vec")]
    pub owner: Vec<u8>,
    /// The content, by kind.
    #[serde(with = "serde_bytes_vec")]
    pub body: Vec<u8>,
    /// The hand-overs from the account's earlier keys to `owner`, oldest first; empty until
    /// the account's first password change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<KeyLink>,
    /// RSA-PSS-SHA256 by the owner over [`SignedRecord::signed_bytes`].
    #[serde(with = "serde_bytes_vec")]
    pub signature: Vec<u8>,
}

/// Why a record was refused. Each names the check that failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Over [`MAX_RECORD_BYTES`].
    #[error("record refused: {0} bytes is over the limit of {MAX_RECORD_BYTES}")]
    TooLarge(usize),
    /// Not a record, or of an unknown type or version.
    #[error("record refused: {0}")]
    Malformed(String),
    /// Stored under a key that does not match its type and account.
    #[error("record refused: it does not belong under this key")]
    WrongKey,
    /// The owner key is unusable or the signature does not verify.
    #[error("record refused: bad owner key or signature ({0})")]
    BadSignature(CryptoError),
    /// Signed by another key than the record it would replace, and not one it handed over to.
    #[error("record refused: signed by another owner than the record held")]
    NotOwner,
    /// Its chain of key hand-overs does not verify.
    #[error(transparent)]
    BadHistory(#[from] HistoryError),
    /// Older than the record held.
    #[error("record refused: sequence {new} is older than the {held} held")]
    Stale {
        /// The refused record's sequence number.
        new: u64,
        /// The held record's.
        held: u64,
    },
    /// Same sequence number as the record held, different content.
    #[error("record refused: sequence {0} is already held with other content")]
    Conflict(u64),
    /// Sent by another peer to one that is not among the closest to its key.
    #[error("record refused: this peer is not among the closest to its key")]
    NotClosest,
    /// Its owner has as many records held here as one owner may.
    #[error("record refused: its owner already has {0} records held here")]
    OwnerCap(usize),
    /// Its sender sent as many new records lately as one sender may.
    #[error("record refused: its sender sent {0} new records lately")]
    SenderCap(u32),
    /// The recipient's letter key holds as many letters as it may.
    #[error("record refused: this user's inbox is full ({MAX_LETTERS} sharers, {MAX_BUNDLE_BYTES} bytes)")]
    InboxFull,
    /// The store is full of records closer to this peer.
    #[error("record refused: this peer's record store is full of closer records")]
    StoreFull,
}

impl SignedRecord {
    /// The bytes the signature covers: everything but the signature, with a domain tag.
    pub fn signed_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Signed<'a> {
            domain: &'static str,
            kind: RecordKind,
            account: &'a AccountId,
            seq: u64,
            #[serde(with = "serde_bytes_vec")]
            owner: &'a Vec<u8>,
            #[serde(with = "serde_bytes_vec")]
            body: &'a Vec<u8>,
            // Left out when empty, so records of accounts that never rotated sign as before.
            #[serde(skip_serializing_if = "<[KeyLink]>::is_empty")]
            history: &'a [KeyLink],
        }
        protocol::encode(&Signed {
            domain: "jellyfish-record-v1",
            kind: self.kind,
            account: &self.account,
            seq: self.seq,
            owner: &self.owner,
            body: &self.body,
            history: &self.history,
        })
        .unwrap_or_default()
    }

    /// Builds and signs a record of an account that never rotated its key.
    pub fn sign(
        kind: RecordKind,
        account: AccountId,
        seq: u64,
        owner: &crate::crypto::rsa_keys::PrivateKey,
        body: Vec<u8>,
    ) -> Result<Self, CryptoError> {
        Self::sign_with_history(kind, account, seq, owner, Vec::new(), body)
    }

    /// Builds and signs a record carrying the owner's chain of hand-overs.
    pub fn sign_with_history(
        kind: RecordKind,
        account: AccountId,
        seq: u64,
        owner: &crate::crypto::rsa_keys::PrivateKey,
        history: Vec<KeyLink>,
        body: Vec<u8>,
    ) -> Result<Self, CryptoError> {
        let mut record = Self::unsigned(kind, account, seq, owner, history, body)?;
        record.signature = owner.sign(&record.signed_bytes());
        Ok(record)
    }

    /// This record signed by `owner` on the platform's fastest engine: in the browser
    /// WebCrypto signs in about 3 ms without blocking the tab, where RustCrypto's RSA-3072
    /// blocks it for about 34 ms (`tests/bench/accounts.mjs`). For records signed on a user's
    /// critical path, such as the index pointer every upload ends with.
    pub async fn signed_fast(
        mut self,
        owner: &crate::crypto::rsa_keys::PrivateKey,
    ) -> Result<Self, CryptoError> {
        self.signature = crate::crypto::fast::sign(owner, &self.signed_bytes()).await?;
        Ok(self)
    }

    /// A record of `owner`'s, not signed yet ([`SignedRecord::signed_fast`]).
    pub fn unsigned(
        kind: RecordKind,
        account: AccountId,
        seq: u64,
        owner: &crate::crypto::rsa_keys::PrivateKey,
        history: Vec<KeyLink>,
        body: Vec<u8>,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            kind,
            account,
            seq,
            owner: owner.public().to_der()?,
            body,
            history,
            signature: Vec::new(),
        })
    }

    /// The DHT key this record belongs under.
    pub fn key(&self) -> Vec<u8> {
        dht_key(self.kind, &self.account)
    }

    /// The bytes stored in the DHT.
    pub fn to_wire(&self) -> Vec<u8> {
        protocol::encode(self).unwrap_or_default()
    }
}

/// A record that passed every check; the rest of the code trusts only these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRecord {
    record: SignedRecord,
    owner: PublicKey,
    wire: Vec<u8>,
}

impl VerifiedRecord {
    /// Checks a record read from the wire under DHT key `key`.
    pub fn from_wire(key: &[u8], wire: &[u8]) -> Result<Self, RecordError> {
        if wire.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge(wire.len()));
        }
        let record: SignedRecord = protocol::decode(wire, MAX_RECORD_BYTES)
            .map_err(|e| RecordError::Malformed(e.to_string()))?;
        if record.key() != key {
            return Err(RecordError::WrongKey);
        }
        if record.kind == RecordKind::PublicKey && !record.body.is_empty() {
            return Err(RecordError::Malformed(
                "a public-key record has an empty body".into(),
            ));
        }
        // A lease speaks for its signer's key or one the signer took over from, nobody else's.
        if record.kind == RecordKind::Lease
            && !(record.body.is_empty()
                && (lease_account(&record.owner) == record.account
                    || record
                        .history
                        .iter()
                        .any(|link| lease_account(&link.previous) == record.account)))
        {
            return Err(RecordError::Malformed(
                "a lease is stored under its signer's key or an earlier one, with an empty body"
                    .into(),
            ));
        }
        if record.kind == RecordKind::Letter && record.body.is_empty() {
            return Err(RecordError::Malformed("a letter has a body".into()));
        }
        let owner = PublicKey::from_der(&record.owner).map_err(RecordError::BadSignature)?;
        owner
            .verify(&record.signed_bytes(), &record.signature)
            .map_err(RecordError::BadSignature)?;
        key_history::verify(&record.history, &record.owner)?;
        Ok(Self {
            record,
            owner,
            wire: wire.to_vec(),
        })
    }

    /// Whether this record may replace `held` (the one stored under the same key).
    /// `Ok(false)` means it is the same record: nothing to do. A record by a key that `held`'s
    /// owner handed over to replaces it whatever the sequence numbers.
    pub fn may_replace(&self, held: &VerifiedRecord) -> Result<bool, RecordError> {
        if self.record.owner != held.record.owner {
            return match self.descends_from(&held.record.owner) {
                true => Ok(true),
                false => Err(RecordError::NotOwner),
            };
        }
        match self.record.seq.cmp(&held.record.seq) {
            std::cmp::Ordering::Less => Err(RecordError::Stale {
                new: self.record.seq,
                held: held.record.seq,
            }),
            std::cmp::Ordering::Equal if self.wire == held.wire => Ok(false),
            std::cmp::Ordering::Equal => Err(RecordError::Conflict(self.record.seq)),
            std::cmp::Ordering::Greater => Ok(true),
        }
    }

    /// The record.
    pub fn record(&self) -> &SignedRecord {
        &self.record
    }

    /// The owner's verified public key.
    pub fn owner(&self) -> &PublicKey {
        &self.owner
    }

    /// Whether this record's owner took over from `earlier` (SPKI DER) by a verified chain of
    /// hand-overs.
    pub fn descends_from(&self, earlier: &[u8]) -> bool {
        key_history::descends_from(&self.record.history, earlier)
    }

    /// The bytes as stored.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }
}

/// Most letters one recipient's key holds at once (one per sharer, the newest).
pub const MAX_LETTERS: usize = 32;
/// Largest [`LetterBundle`], encoded: it travels in one Kademlia message (at most four
/// records' worth, `net::behaviour`), with room for the message's other fields.
pub const MAX_BUNDLE_BYTES: usize = 3 * MAX_RECORD_BYTES;

/// What the DHT holds under a recipient's [`RecordKind::Letter`] key: the letters of many
/// sharers, each a [`SignedRecord`] in its wire form, each checked on its own. A CBOR array
/// of byte strings, where every other record is a CBOR map: the two never read as each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LetterBundle(pub Vec<LetterWire>);

/// One letter of a [`LetterBundle`], as its sharer signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LetterWire(#[serde(with = "serde_bytes_vec")] pub Vec<u8>);

impl LetterBundle {
    /// The wire form of `letters` (each verified, under one key).
    pub fn wire(letters: &[VerifiedRecord]) -> Vec<u8> {
        let bundle = Self(
            letters
                .iter()
                .map(|l| LetterWire(l.wire().to_vec()))
                .collect(),
        );
        protocol::encode(&bundle).unwrap_or_default()
    }
}

/// Checks a DHT value read under `key`: one record, or (under a letter key) a
/// [`LetterBundle`] of letters, each verified, at most [`MAX_LETTERS`], one per sharer. A
/// bundle holding anything but letters for that key is refused whole.
pub fn verify_value(key: &[u8], wire: &[u8]) -> Result<Vec<VerifiedRecord>, RecordError> {
    if wire.len() > MAX_BUNDLE_BYTES {
        return Err(RecordError::TooLarge(wire.len()));
    }
    let Ok(bundle) = protocol::decode::<LetterBundle>(wire, MAX_BUNDLE_BYTES) else {
        return VerifiedRecord::from_wire(key, wire).map(|one| vec![one]);
    };
    if bundle.0.len() > MAX_LETTERS {
        return Err(RecordError::Malformed(format!(
            "a bundle of {} letters (at most {MAX_LETTERS})",
            bundle.0.len()
        )));
    }
    let mut letters: Vec<VerifiedRecord> = Vec::with_capacity(bundle.0.len());
    for letter in &bundle.0 {
        let letter = VerifiedRecord::from_wire(key, &letter.0)?;
        if letter.record().kind != RecordKind::Letter {
            return Err(RecordError::Malformed("a bundle holds letters only".into()));
        }
        if letters
            .iter()
            .any(|l| l.record().owner == letter.record().owner)
        {
            return Err(RecordError::Malformed(
                "a bundle holds one letter per sharer".into(),
            ));
        }
        letters.push(letter);
    }
    Ok(letters)
}

/// A record a lookup found, with how many other peers answered with (a version of) it.
#[derive(Debug, Clone)]
pub struct FoundRecord {
    /// The newest version seen.
    pub record: VerifiedRecord,
    /// How many other peers answered with it (the looking peer's own copy not counted).
    pub remote_holders: usize,
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::OnceLock;

    use super::*;
    use crate::crypto::rsa_keys::PrivateKey;

    fn owner() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate_bits(2048).unwrap())
    }

    fn record(seq: u64, body: &[u8]) -> SignedRecord {
        SignedRecord::sign(
            RecordKind::UserKey,
            AccountId([1; 32]),
            seq,
            owner(),
            body.to_vec(),
        )
        .unwrap()
    }

    fn verified(r: &SignedRecord) -> Result<VerifiedRecord, RecordError> {
        VerifiedRecord::from_wire(&r.key(), &r.to_wire())
    }

    #[test]
    fn a_good_record_verifies() {
        let r = record(1, b"body");
        let v = verified(&r).unwrap();
        assert_eq!(v.record(), &r);
    }

    #[test]
    fn forgeries_are_refused() {
        let mut r = record(1, b"body");
        r.body = b"other".to_vec();
        assert!(matches!(verified(&r), Err(RecordError::BadSignature(_))));

        let r = record(1, b"body");
        assert_eq!(
            VerifiedRecord::from_wire(&dht_key(RecordKind::PrivateKey, &r.account), &r.to_wire()),
            Err(RecordError::WrongKey)
        );
        let thief = PrivateKey::generate_bits(2048).unwrap();
        let mut stolen = record(1, b"body");
        stolen.signature = thief.sign(&stolen.signed_bytes());
        assert!(matches!(
            verified(&stolen),
            Err(RecordError::BadSignature(_))
        ));
        assert!(matches!(
            VerifiedRecord::from_wire(&r.key(), b"\xff\x00junk"),
            Err(RecordError::Malformed(_))
        ));
        assert!(matches!(
            VerifiedRecord::from_wire(&r.key(), &vec![0; MAX_RECORD_BYTES + 1]),
            Err(RecordError::TooLarge(_))
        ));
    }

    #[test]
    fn replacement_rules() {
        let v1 = verified(&record(1, b"one")).unwrap();
        let v2 = verified(&record(2, b"two")).unwrap();
        assert_eq!(v2.may_replace(&v1), Ok(true));
        assert_eq!(
            v1.may_replace(&v2),
            Err(RecordError::Stale { new: 1, held: 2 })
        );
        assert_eq!(v1.may_replace(&v1), Ok(false));
        let v1b = verified(&record(1, b"one, again")).unwrap();
        assert_eq!(v1b.may_replace(&v1), Err(RecordError::Conflict(1)));

        let other = PrivateKey::generate_bits(2048).unwrap();
        let theirs =
            SignedRecord::sign(RecordKind::UserKey, AccountId([1; 32]), 9, &other, vec![]).unwrap();
        assert_eq!(
            verified(&theirs).unwrap().may_replace(&v1),
            Err(RecordError::NotOwner)
        );
    }

    #[test]
    fn a_later_key_replaces_an_earlier_one_and_never_the_reverse() {
        use crate::key_history::KeyLink;
        let account = AccountId([1; 32]);
        let old = verified(&record(5, b"old")).unwrap();
        let next = PrivateKey::generate_bits(2048).unwrap();
        let link = KeyLink::sign(owner(), &next.public()).unwrap();
        let sign = |key: &PrivateKey, history: Vec<KeyLink>, seq| {
            let r = SignedRecord::sign_with_history(
                RecordKind::UserKey,
                account,
                seq,
                key,
                history,
                b"new".to_vec(),
            )
            .unwrap();
            verified(&r)
        };
        // The hand-over travels with the record: a lower sequence number does not matter.
        let rotated = sign(&next, vec![link.clone()], 1).unwrap();
        assert!(rotated.descends_from(&old.record().owner));
        assert_eq!(rotated.may_replace(&old), Ok(true));
        assert_eq!(old.may_replace(&rotated), Err(RecordError::NotOwner));
        // Whoever kept the old key can hand over too, but never past the new key.
        let thief = PrivateKey::generate_bits(2048).unwrap();
        let side = sign(
            &thief,
            vec![KeyLink::sign(owner(), &thief.public()).unwrap()],
            9,
        );
        assert_eq!(
            side.unwrap().may_replace(&rotated),
            Err(RecordError::NotOwner)
        );
        // A history that does not end at the signer is refused outright.
        assert!(matches!(
            sign(&thief, vec![link], 2),
            Err(RecordError::BadHistory(_))
        ));
    }

    #[test]
    fn a_lease_speaks_only_for_its_signers_key_and_the_keys_it_took_over_from() {
        use crate::key_history::KeyLink;
        let der = owner().public().to_der().unwrap();
        let lease = |key: &PrivateKey, history: Vec<KeyLink>, account, body: &[u8]| {
            let r = SignedRecord::sign_with_history(
                RecordKind::Lease,
                account,
                1_800_000_000,
                key,
                history,
                body.to_vec(),
            )
            .unwrap();
            verified(&r)
        };
        assert!(lease(owner(), vec![], lease_account(&der), b"").is_ok());
        // Under someone else's key, or with a body: refused.
        let stranger = PrivateKey::generate_bits(2048).unwrap();
        let theirs = lease_account(&stranger.public().to_der().unwrap());
        assert!(matches!(
            lease(owner(), vec![], theirs, b""),
            Err(RecordError::Malformed(_))
        ));
        assert!(matches!(
            lease(owner(), vec![], lease_account(&der), b"x"),
            Err(RecordError::Malformed(_))
        ));
        // After a password change the new key renews the blocks the old key stored.
        let next = PrivateKey::generate_bits(2048).unwrap();
        let link = KeyLink::sign(owner(), &next.public()).unwrap();
        assert!(lease(&next, vec![link.clone()], lease_account(&der), b"").is_ok());
        // A made-up hand-over does not let a stranger speak for the old key.
        assert!(lease(&stranger, vec![link], lease_account(&der), b"").is_err());
    }
}
