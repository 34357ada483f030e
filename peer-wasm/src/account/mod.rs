//! Accounts, as the design prescribes, with nothing but the DHT.
//!
//! Sign up: the password must pass a strength estimate; an RSA key pair and a random AES-256
//! user key are made in the peer; three records go to the DHT under keys derived from the
//! username: the public key, the private key (PKCS#8) sealed with AES-256-GCM under a
//! PBKDF2-HMAC-SHA256 key (salt and iterations in the record), and the user key wrapped with
//! RSA-OAEP-SHA256 to the public key. All three are signed by the new key.
//!
//! Log in: fetch the records, derive the key, open the private key, unwrap the user key.
//!
//! Change password: rotate the keys. The old sealed private key is public and never expires, so
//! resealing it would leave the account to anyone who kept a copy and learns the old password.
//! Instead a new RSA key pair and a new user key are made, the old key hands over to the new one
//! ([`crate::key_history`]), and the new records replace the old ones at their holders. The new
//! private-key record is the commit point: it also carries, sealed under the new password, the
//! new user key and the earlier ones (so what was sealed before stays readable), which makes a
//! change that a closed tab cut short complete at the next log-in. Log-in opens only the newest
//! key of each line of hand-overs, so the old password opens nothing any more; a copy of the
//! old records opens only what was written before the change.
//!
//! The network is reached through [`Directory`], so these workflows run the same against the
//! real DHT ([`crate::net::Client`]) and in tests.

mod change;
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod fake;
mod keys;
mod login;
mod password;
mod signup;

pub use change::change_password;
pub use login::{log_in, MAX_OWNERS_TRIED};
pub use password::{password_strength, PasswordStrength, MAX_PASSWORD_LEN, MIN_PASSWORD_SCORE};
pub use signup::{sign_up, sign_up_alone, sign_up_with_key_bits};

// What the rooms share with each other and with the session's methods here.
use keys::*;
use login::*;
use password::check_password;
use signup::*;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{
    crypto::{
        aead::Sealed,
        fast,
        kdf::KdfParams,
        rsa_keys::{PrivateKey, PublicKey},
        sha256, CryptoError, SymmetricKey,
    },
    key_history::{self, KeyLink, MAX_KEY_LINKS},
    net::{Client, NetError},
    protocol,
    record::{
        dht_key, AccountId, FoundRecord, RecordError, RecordKind, SignedRecord, VerifiedRecord,
    },
};

/// Shortest and longest usernames.
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
/// Where account records are read and written: the DHT.
#[allow(async_fn_in_trait)]
pub trait Directory {
    /// The verified records under `key`: per owner the newest, the most widely held first,
    /// each with how many other peers answered with it. Empty only when enough peers were
    /// heard to say so; else [`AccountError::Unreachable`].
    async fn find(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, AccountError>;
    /// [`Directory::find`] without the holder counts.
    async fn get(&self, key: Vec<u8>) -> Result<Vec<VerifiedRecord>, AccountError> {
        Ok(self
            .find(key)
            .await?
            .into_iter()
            .map(|f| f.record)
            .collect())
    }
    /// Stores a record on the peers responsible for it.
    async fn put(&self, record: SignedRecord) -> Result<(), AccountError>;
}

/// The real directory: the DHT, through the network's handle.
impl Directory for Client {
    async fn find(&self, key: Vec<u8>) -> Result<Vec<FoundRecord>, AccountError> {
        self.find_record(key).await.map_err(AccountError::from)
    }

    async fn put(&self, record: SignedRecord) -> Result<(), AccountError> {
        self.put_record(record).await.map_err(AccountError::from)
    }
}

/// Why an account operation failed, in words a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The username has characters or a length that are not allowed.
    #[error("usernames are {min} to {max} letters, digits, '.', '_' or '-'", min = USERNAME_LEN.start(), max = USERNAME_LEN.end())]
    BadUsername,
    /// The password is too easy to guess.
    #[error("this password is too easy to guess{warning}. {advice}")]
    WeakPassword {
        /// What the estimator found, with a leading ": ", or nothing.
        warning: String,
        /// How to do better.
        advice: String,
    },
    /// The password's strength could not be estimated: in the browser, the estimator's own
    /// module could not be fetched or run.
    #[error("the password could not be checked: {0}")]
    PasswordCheck(String),
    /// Someone already has this username.
    #[error("the username is taken; choose another")]
    NameTaken,
    /// No account has this username.
    #[error("no account has this username; check it or sign up")]
    UnknownUser,
    /// The password does not open the account.
    #[error("wrong password")]
    WrongPassword,
    /// The account's records are incomplete or inconsistent in the network.
    #[error("the account's records are damaged or incomplete: {0}")]
    Damaged(String),
    /// A record was refused.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Too few peers answered to tell whether the account or name exists: the tab is still
    /// joining the network, or the network is in churn. Never reported as "unknown user".
    #[error("can't reach enough peers to check; try again (heard from {heard}, {needed} needed)")]
    Unreachable {
        /// Peers that answered.
        heard: usize,
        /// Peers that had to answer.
        needed: usize,
    },
    /// The account's records were sent out, but no other peer holds them: the account would
    /// live only in this tab.
    #[error("no other peer kept the account's records; the network may be too small, try again")]
    NotHeldElsewhere,
    /// The network could not be reached or did not answer.
    #[error("network: {0}")]
    Network(#[source] NetError),
}

impl From<NetError> for AccountError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Record(e) => AccountError::Record(e),
            NetError::TooFewPeers { heard, needed } => AccountError::Unreachable { heard, needed },
            other => AccountError::Network(other),
        }
    }
}

impl AccountError {
    /// Every code [`AccountError::code`] gives (the page's TypeScript union is made from it).
    pub const CODES: &[&str] = &[
        "bad_username",
        "weak_password",
        "password_check_failed",
        "name_taken",
        "unknown_user",
        "wrong_password",
        "account_damaged",
        "record_refused",
        "crypto_failed",
        "network_unreachable",
    ];

    /// A stable code for each kind of failure, for the page to switch on (never the text).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUsername => "bad_username",
            Self::WeakPassword { .. } => "weak_password",
            Self::PasswordCheck(_) => "password_check_failed",
            Self::NameTaken => "name_taken",
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::Damaged(_) => "account_damaged",
            Self::Record(_) => "record_refused",
            Self::Crypto(_) => "crypto_failed",
            Self::Unreachable { .. } | Self::NotHeldElsewhere | Self::Network(_) => {
                "network_unreachable"
            }
        }
    }
}

/// How long log-in and sign-up wait for the network to answer before saying it cannot be
/// reached: a tab that was just opened joins in a second or two on a calm network; 30 s
/// covers a relay reconnect and a DHT walk past departed peers (each dial gives up in 10 s).
pub const NETWORK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The first pause before a lookup that heard too few peers goes again (doubling to 4 s).
pub(crate) const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// What the page may know of an account: never a key.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[cfg_attr(all(test, not(target_arch = "wasm32")), ts(rename = "Account"))]
#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    /// The username.
    pub username: String,
    /// Set (true, and only then sent) when the account's key differs from the one this
    /// browser saw at its last log-in here: a rotation the user did elsewhere, or an
    /// impostor's account.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(all(test, not(target_arch = "wasm32")), ts(optional))]
    pub key_changed: Option<bool>,
    /// Set (true, and only then sent) while the account lives in this tab alone: made as the
    /// first on an empty network, not yet held by any other peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(all(test, not(target_arch = "wasm32")), ts(optional))]
    pub alone: Option<bool>,
}

impl AccountInfo {
    /// The account logged in as `session`, with nothing to warn of.
    pub fn of(session: &Session) -> Self {
        Self {
            username: session.username().to_owned(),
            key_changed: None,
            alone: None,
        }
    }
}

/// Lower-cases and checks a username; the DHT never sees it, only its hash.
pub fn normalize_username(username: &str) -> Result<String, AccountError> {
    let name = username.trim().to_lowercase();
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_chars || !USERNAME_LEN.contains(&name.len()) {
        return Err(AccountError::BadUsername);
    }
    Ok(name)
}

/// The account id of a (normalised) username.
pub fn account_id(normalized: &str) -> AccountId {
    AccountId(sha256(format!("jellyfish/user/v1/{normalized}").as_bytes()))
}

/// The body of a private-key record.
#[derive(Serialize, Deserialize)]
struct SealedPrivateKey {
    kdf: KdfParams,
    /// The PKCS#8 private key.
    sealed: Sealed,
    /// [`UserKeys`], sealed under the same password-derived key; only after a key rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_keys: Option<Sealed>,
}

/// The user keys a rotated account's private-key record carries.
#[derive(Serialize, Deserialize)]
struct UserKeys {
    current: [u8; 32],
    /// Earlier user keys, newest first, at most [`MAX_KEY_LINKS`]: what was sealed under them
    /// before the password changed stays readable.
    earlier: Vec<[u8; 32]>,
    /// The file-index pointer as it was when the password changed ([`Session::index_at_change`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index_at_change: Option<IndexAtChange>,
}

/// The largest body of a `FileIndex` record a password change can pin ([`IndexAtChange`]) in
/// the new private-key record, whatever came before: with RSA-3072 keys, the longest key
/// history kept ([`MAX_KEY_LINKS`]) and as many earlier user keys, that record is about
/// 10.2 KiB without the pin, 16,387 bytes with a pin of 6 KiB (over the 16 KiB limit: the
/// change would be refused), 15.9 KiB with this one (`account::fake` test
/// `a_password_change_pins_the_largest_index_body_after_the_most_changes`). A small index
/// rides whole in that body (`files::Settings::inline_index_bytes`), so it rides only up
/// to this.
pub const MAX_INDEX_PIN: usize = 5 * 1024 + 512;

/// The account's file-index pointer (the body of its `FileIndex` record) when its password
/// last changed, sealed with the new keys. Until the index is re-sealed under the new key, the
/// newest index record is still the old key's, which whoever knew the old password could
/// replace (to plant files or hide them); the index read is then this one instead. Not kept
/// when the change found no index record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexAtChange {
    /// The record body.
    #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
    pub body: Vec<u8>,
}

impl Drop for UserKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.current.zeroize();
        self.earlier.iter_mut().for_each(Zeroize::zeroize);
    }
}

/// The body of a user-key record.
#[derive(Serialize, Deserialize)]
struct WrappedUserKey {
    #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
    wrapped: Vec<u8>,
}

/// A logged-in user: their keys, in memory only, wiped when dropped.
pub struct Session {
    username: String,
    account: AccountId,
    private: PrivateKey,
    user_key: SymmetricKey,
    /// The user keys before the last password changes, newest first.
    earlier_user_keys: Vec<SymmetricKey>,
    /// How the account's earlier keys handed over to `private` (empty if it never rotated).
    history: Vec<KeyLink>,
    /// The private-key record as last published: changing the password checks against it.
    private_key_record: VerifiedRecord,
    /// Another newest key shares an earlier key with this one: someone who held an earlier
    /// key (and so knew an earlier password) handed it over to a key of their own.
    forked: bool,
    /// The file-index pointer when the password last changed, if it did.
    index_at_change: Option<IndexAtChange>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The normalised username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The account's public key.
    pub fn public_key(&self) -> PublicKey {
        self.private.public()
    }

    /// The AES-256 user key that seals the user's private records and wraps file keys.
    pub fn user_key(&self) -> &SymmetricKey {
        &self.user_key
    }

    /// The user key, then the ones before the last password changes (newest first): what was
    /// sealed before a change opens with one of them.
    pub fn user_keys(&self) -> impl Iterator<Item = &SymmetricKey> {
        std::iter::once(&self.user_key).chain(&self.earlier_user_keys)
    }

    /// How the account's earlier keys handed over to this one, oldest first.
    pub fn history(&self) -> &[KeyLink] {
        &self.history
    }

    /// Whether another line of hand-overs branches off this account's history: whoever kept
    /// an earlier key made a key of their own from it. The page warns, as for a changed key.
    pub fn forked(&self) -> bool {
        self.forked
    }

    /// The file-index pointer as it was when the password last changed ([`IndexAtChange`]):
    /// what to read instead of an earlier key's index record.
    pub fn index_at_change(&self) -> Option<&IndexAtChange> {
        self.index_at_change.as_ref()
    }

    /// Whether `key` is this account's key or one it had before a password change.
    pub fn is_own_key(&self, key: &PublicKey) -> bool {
        *key == self.public_key()
            || key
                .to_der()
                .is_ok_and(|der| key_history::descends_from(&self.history, &der))
    }

    /// The account's id.
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// Signs a statement (a store or delete request) with the account's key.
    pub fn sign_statement(&self, statement: &[u8]) -> Vec<u8> {
        self.private.sign(statement)
    }

    /// [`Session::sign_statement`] on the platform's fastest engine (WebCrypto in the browser:
    /// the tab is not blocked while it signs), for what is signed once per block.
    pub async fn sign_statement_fast(&self, statement: &[u8]) -> Result<Vec<u8>, CryptoError> {
        fast::sign(&self.private, statement).await
    }

    /// Signs a record of this account (with its key history).
    pub fn sign(
        &self,
        kind: RecordKind,
        seq: u64,
        body: Vec<u8>,
    ) -> Result<SignedRecord, AccountError> {
        Ok(SignedRecord::sign_with_history(
            kind,
            self.account,
            seq,
            &self.private,
            self.history.clone(),
            body,
        )?)
    }

    /// [`Session::sign`] on the platform's fastest engine (WebCrypto in the browser), for
    /// records signed on a user's critical path.
    pub async fn sign_fast(
        &self,
        kind: RecordKind,
        seq: u64,
        body: Vec<u8>,
    ) -> Result<SignedRecord, AccountError> {
        let history = self.history.clone();
        let unsigned =
            SignedRecord::unsigned(kind, self.account, seq, &self.private, history, body)?;
        Ok(unsigned.signed_fast(&self.private).await?)
    }

    /// The most bytes a body of a record of `kind` signed by this session may take, for the
    /// record to stay within [`crate::record::MAX_RECORD_BYTES`]: the limit less the owner
    /// key (about 420 bytes for RSA-3072), its signature (384), the key history (about 850
    /// bytes a password change, up to [`crate::key_history::MAX_KEY_LINKS`]) and the
    /// framing. About 15 KiB before any password change, 8.5 KiB after the most.
    pub fn record_room(&self, kind: RecordKind) -> usize {
        /// CBOR's length headers of a body and a signature that are not empty: 3 bytes each
        /// up to 64 KiB, and a margin.
        const FRAMING: usize = 16;
        let history = self.history.clone();
        let Ok(empty) =
            SignedRecord::unsigned(kind, self.account, u64::MAX, &self.private, history, vec![])
        else {
            return 0;
        };
        let signature = self.private.bits().div_ceil(8);
        crate::record::MAX_RECORD_BYTES.saturating_sub(empty.to_wire().len() + signature + FRAMING)
    }

    /// Signs a letter to the account `recipient` ([`RecordKind::Letter`]: stored under the
    /// recipient's account, signed by this one's key, with its key history).
    pub fn sign_letter(
        &self,
        recipient: AccountId,
        seq: u64,
        body: Vec<u8>,
    ) -> Result<SignedRecord, AccountError> {
        Ok(SignedRecord::sign_with_history(
            RecordKind::Letter,
            recipient,
            seq,
            &self.private,
            self.history.clone(),
            body,
        )?)
    }

    /// The hand-over from this session's key to `next`, as a password change signs it.
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(crate) fn hand_over(&self, next: &PublicKey) -> KeyLink {
        KeyLink::sign(&self.private, next).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Unwraps a secret wrapped to this account's current public key (RSA-OAEP).
    pub fn unwrap_secret(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.private.unwrap_key(wrapped)
    }

    /// The account's leases at Unix time `at`: its word that the blocks its keys stored are
    /// still wanted, one for its current key and one for each earlier key (whose warrants still
    /// name it), all signed by the current key ([`RecordKind::Lease`], [`crate::repair`]).
    pub fn leases(&self, at: u64) -> Result<Vec<SignedRecord>, AccountError> {
        let keys = std::iter::once(self.public_key().to_der()?)
            .chain(self.history.iter().map(|link| link.previous.clone()));
        keys.map(|der| {
            Ok(SignedRecord::sign_with_history(
                RecordKind::Lease,
                crate::record::lease_account(&der),
                at,
                &self.private,
                self.history.clone(),
                Vec::new(),
            )?)
        })
        .collect()
    }
}

/// The records of an account made by the first person on a network with no other peer yet,
/// held only by their tab until [`Unpublished::publish`] finds other peers to hold them.
pub struct Unpublished {
    records: [SignedRecord; 3],
}

impl std::fmt::Debug for Unpublished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unpublished").finish_non_exhaustive()
    }
}

impl Unpublished {
    /// Puts the records out; one that reached nobody still lands in this tab's own store.
    async fn put_all(&self, dir: &impl Directory) {
        for record in &self.records {
            if let Err(e) = dir.put(record.clone()).await {
                tracing::debug!("account record not yet held elsewhere: {e}");
            }
        }
    }

    /// Puts the records out again and reads them back from other peers: done once another
    /// peer holds each ([`AccountError::Unreachable`] while there is none).
    pub async fn publish(&self, dir: &impl Directory) -> Result<(), AccountError> {
        for record in &self.records {
            confirm_held_elsewhere_putting(dir, record, true).await?;
        }
        Ok(())
    }
}

/// The decoders of account record bodies, for the fuzz tests.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod fuzz_targets {
    use super::*;

    /// Valid encodings of each body, by name.
    pub(crate) fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let sealed = SealedPrivateKey {
            kdf: KdfParams::fresh(),
            sealed: Sealed {
                nonce: [5; 12],
                ciphertext: vec![6; 1200],
            },
            user_keys: Some(Sealed {
                nonce: [7; 12],
                ciphertext: vec![8; 300],
            }),
        };
        let wrapped = WrappedUserKey {
            wrapped: vec![7; 384],
        };
        [
            ("sealed private key", protocol::encode(&sealed)),
            ("wrapped user key", protocol::encode(&wrapped)),
        ]
        .into_iter()
        .filter_map(|(name, bytes)| Some((name, bytes.ok()?)))
        .collect()
    }

    /// Decodes `bytes` as the body `name` names, and checks what decodes as log-in would.
    pub(crate) fn decode_as(name: &str, bytes: &[u8]) {
        let max = crate::record::MAX_RECORD_BYTES;
        if name == "sealed private key" {
            if let Ok(sealed) = protocol::decode::<SealedPrivateKey>(bytes, max) {
                let _ = sealed.kdf.check();
            }
        } else {
            let _ = protocol::decode::<WrappedUserKey>(bytes, max);
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalize_username("  Alice.B ").unwrap(), "alice.b");
        assert!(normalize_username("al").is_err());
        assert!(normalize_username("alice bob").is_err());
        assert!(normalize_username("ålice").is_err());
        assert_ne!(account_id("alice"), account_id("bob"));
    }

    #[tokio::test]
    async fn weak_passwords_are_refused_with_advice() {
        for weak in ["password", "alice2024", "qwertyuiop", "aaaaaaaaaaaa"] {
            let err = check_password(weak, "alice").await.unwrap_err();
            let text = err.to_string();
            assert!(text.contains("too easy to guess"), "{weak}: {text}");
        }
        let strong = password_strength("correct horse battery staple violet", "alice")
            .await
            .unwrap();
        assert!(strong.acceptable, "{strong:?}");
        assert!(
            check_password("correct horse battery staple violet", "alice")
                .await
                .is_ok()
        );
    }
}
