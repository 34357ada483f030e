//! Accounts, as the design prescribes, with nothing but the DHT.
//!
//! Sign up: the password must pass a strength estimate; an RSA key pair and a random AES-256
//! user key are made in the peer; three records go to the DHT under keys derived from the
//! username: the public key, the private key (PKCS#8) sealed with AES-256-GCM under a
//! PBKDF2-HMAC-SHA256 key (salt and iterations in the record), and the user key wrapped with
//! RSA-OAEP-SHA256 to the public key. All three are signed by the new key.
//!
//! Log in: fetch the records, derive the key, open the private key, unwrap the user key.
//! Change password: reseal the private key with a new salt at a higher sequence number.
//!
//! The network is reached through [`Directory`], so these workflows run the same against the
//! real DHT ([`crate::net::Client`]) and in tests.

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
    protocol,
    record::{
        dht_key, AccountId, FoundRecord, RecordError, RecordKind, SignedRecord, VerifiedRecord,
    },
};

/// Shortest and longest usernames.
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
/// Lowest zxcvbn score (0..=4) accepted: 3 is "safely unguessable" for an offline attack on a
/// slow hash, which is what a record in a public DHT faces.
pub const MIN_PASSWORD_SCORE: u8 = 3;
/// Longest password accepted (the strength estimator is slow on huge inputs).
pub const MAX_PASSWORD_LEN: usize = 256;

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
    Network(String),
}

impl AccountError {
    /// A stable code for each kind of failure, for the page to switch on (never the text).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUsername => "bad_username",
            Self::WeakPassword { .. } => "weak_password",
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
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// The strength estimate of a password, for the sign-up form's meter.
#[derive(Debug, Clone, Serialize)]
pub struct PasswordStrength {
    /// 0 (guessable in seconds) to 4 (very unguessable).
    pub score: u8,
    /// Whether sign-up will accept it.
    pub acceptable: bool,
    /// What makes it weak, if anything.
    pub warning: Option<String>,
    /// How to make it stronger.
    pub suggestions: Vec<String>,
    /// How long an offline attack on a slow hash would take, in words.
    pub crack_time: String,
}

/// Estimates a password's strength, knowing the username (a password near it is weak).
pub fn password_strength(password: &str, username: &str) -> PasswordStrength {
    let truncated: String = password.chars().take(MAX_PASSWORD_LEN).collect();
    let entropy = zxcvbn::zxcvbn(&truncated, &[username]);
    let score = u8::from(entropy.score());
    let feedback = entropy.feedback();
    PasswordStrength {
        score,
        acceptable: score >= MIN_PASSWORD_SCORE && password.chars().count() <= MAX_PASSWORD_LEN,
        warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
        suggestions: feedback
            .map(|f| f.suggestions().iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        crack_time: entropy
            .crack_times()
            .offline_slow_hashing_1e4_per_second()
            .to_string(),
    }
}

fn check_password(password: &str, username: &str) -> Result<(), AccountError> {
    let strength = password_strength(password, username);
    if strength.acceptable {
        return Ok(());
    }
    let mut advice = strength.suggestions.join(" ");
    if advice.is_empty() {
        advice = "Use a longer passphrase of several uncommon words.".into();
    }
    Err(AccountError::WeakPassword {
        warning: strength
            .warning
            .map(|w| format!(": {w}"))
            .unwrap_or_default(),
        advice: format!(
            "{advice} (An attacker could guess it in {}.)",
            strength.crack_time
        ),
    })
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
    sealed: Sealed,
}

/// The body of a user-key record.
#[derive(Serialize, Deserialize)]
struct WrappedUserKey {
    #[serde(with = "crate::crypto::aead::serde_bytes_vec")]
    wrapped: Vec<u8>,
}

fn private_key_aad(account: &AccountId) -> Vec<u8> {
    [b"jellyfish/private-key/v1/".as_slice(), &account.0].concat()
}

async fn seal_private_key(
    account: &AccountId,
    private: &PrivateKey,
    password: &str,
) -> Result<Vec<u8>, AccountError> {
    let kdf = KdfParams::fresh();
    let key = fast::derive_key(password, &kdf).await?;
    let pkcs8 = private.to_pkcs8()?;
    let sealed = fast::seal(&key, &private_key_aad(account), &pkcs8).await?;
    protocol::encode(&SealedPrivateKey { kdf, sealed })
        .map_err(|e| AccountError::Damaged(e.to_string()))
}

fn decode_body<T: serde::de::DeserializeOwned>(record: &VerifiedRecord) -> Result<T, AccountError> {
    protocol::decode(&record.record().body, crate::record::MAX_RECORD_BYTES)
        .map_err(|e| AccountError::Damaged(format!("{:?} record: {e}", record.record().kind)))
}

/// A logged-in user: their keys, in memory only, wiped when dropped.
pub struct Session {
    username: String,
    account: AccountId,
    private: PrivateKey,
    user_key: SymmetricKey,
    /// The private-key record as last published: changing the password checks against it.
    private_key_record: std::sync::Mutex<VerifiedRecord>,
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

    /// The account's id.
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// Signs a statement (a store or delete request) with the account's key.
    pub fn sign_statement(&self, statement: &[u8]) -> Vec<u8> {
        self.private.sign(statement)
    }

    /// Signs a record of this account.
    pub fn sign(
        &self,
        kind: RecordKind,
        seq: u64,
        body: Vec<u8>,
    ) -> Result<SignedRecord, AccountError> {
        Ok(SignedRecord::sign(
            kind,
            self.account,
            seq,
            &self.private,
            body,
        )?)
    }
}

/// Creates an account: checks the name and password, makes the keys, publishes the records.
pub async fn sign_up(
    dir: &impl Directory,
    username: &str,
    password: &str,
) -> Result<Session, AccountError> {
    sign_up_with_key_bits(dir, username, password, crate::crypto::rsa_keys::RSA_BITS).await
}

/// [`sign_up`] with a chosen RSA size (tests use smaller keys to run fast).
pub async fn sign_up_with_key_bits(
    dir: &impl Directory,
    username: &str,
    password: &str,
    rsa_bits: usize,
) -> Result<Session, AccountError> {
    let username = normalize_username(username)?;
    check_password(password, &username)?;
    let account = account_id(&username);
    if !records_of(dir, RecordKind::PublicKey, &account)
        .await?
        .is_empty()
    {
        return Err(AccountError::NameTaken);
    }

    let private = fast::generate_rsa(rsa_bits).await?;
    let user_key = SymmetricKey::random();
    let public_record =
        SignedRecord::sign(RecordKind::PublicKey, account, 1, &private, Vec::new())?;
    let private_record = SignedRecord::sign(
        RecordKind::PrivateKey,
        account,
        1,
        &private,
        seal_private_key(&account, &private, password).await?,
    )?;
    let wrapped = WrappedUserKey {
        wrapped: private.public().wrap(user_key.as_bytes())?,
    };
    let user_key_record = SignedRecord::sign(
        RecordKind::UserKey,
        account,
        1,
        &private,
        protocol::encode(&wrapped).map_err(|e| AccountError::Damaged(e.to_string()))?,
    )?;

    // The public key first: it claims the name.
    let private_key_record =
        VerifiedRecord::from_wire(&private_record.key(), &private_record.to_wire())?;
    let records = [public_record, private_record, user_key_record];
    for record in &records {
        dir.put(record.clone()).await?;
    }
    // Done only once other peers hold the records, read back from them: a put acknowledged by
    // libp2p may still have been filtered out by its holders.
    for record in &records {
        confirm_held_elsewhere(dir, record).await?;
    }
    Ok(Session {
        username,
        account,
        private,
        user_key,
        private_key_record: std::sync::Mutex::new(private_key_record),
    })
}

/// Reads `record` back from the network until another peer answers with it (the same or a
/// newer version by the same owner), for up to [`NETWORK_WAIT`].
async fn confirm_held_elsewhere(
    dir: &impl Directory,
    record: &SignedRecord,
) -> Result<(), AccountError> {
    let deadline = web_time::Instant::now() + NETWORK_WAIT;
    let mut pause = RETRY_PAUSE;
    loop {
        let held = records_of(dir, record.kind, &record.account)
            .await?
            .iter()
            .any(|f| {
                f.record.record().owner == record.owner
                    && f.record.record().seq >= record.seq
                    && f.remote_holders > 0
            });
        if held {
            return Ok(());
        }
        if web_time::Instant::now() + pause >= deadline {
            return Err(AccountError::NotHeldElsewhere);
        }
        futures_timer::Delay::new(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(4));
    }
}

/// Opens a private-key record with a password.
async fn open_private_key(
    record: &VerifiedRecord,
    account: &AccountId,
    password: &str,
) -> Result<PrivateKey, AccountError> {
    let sealed: SealedPrivateKey = decode_body(record)?;
    let key = fast::derive_key(password, &sealed.kdf).await?;
    let pkcs8 = Zeroizing::new(
        fast::open(&key, &private_key_aad(account), &sealed.sealed)
            .await
            .map_err(|e| match e {
                CryptoError::Decrypt => AccountError::WrongPassword,
                other => AccountError::Crypto(other),
            })?,
    );
    Ok(PrivateKey::from_pkcs8(&pkcs8)?)
}

/// Log-in tries at most this many keys that claim a username (most widely held first): enough
/// for the real owner to be among them when a few Sybils answer with made-up accounts, few
/// enough that a wrong password costs at most this many key derivations (about 60 ms each in
/// the browser's WebCrypto).
pub const MAX_OWNERS_TRIED: usize = 4;

/// The verified records under the DHT key of `kind` for `account`, checked once more to be of
/// that kind and account (the network layer checks the key; this keeps the account code from
/// trusting anything else).
///
/// A lookup that heard too few peers to tell goes again, with growing pauses, for up to
/// [`NETWORK_WAIT`]: log-in and sign-up typed the instant the page opens wait for the tab to
/// join instead of hearing "no such account".
async fn records_of(
    dir: &impl Directory,
    kind: RecordKind,
    account: &AccountId,
) -> Result<Vec<FoundRecord>, AccountError> {
    let deadline = web_time::Instant::now() + NETWORK_WAIT;
    let mut pause = RETRY_PAUSE;
    let found = loop {
        match dir.find(dht_key(kind, account)).await {
            Err(AccountError::Unreachable { .. })
                if web_time::Instant::now() + pause < deadline =>
            {
                futures_timer::Delay::new(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(4));
            }
            other => break other?,
        }
    };
    Ok(found
        .into_iter()
        .filter(|f| f.record.record().kind == kind && f.record.record().account == *account)
        .collect())
}

/// The newest record among `records` signed by `owner`; copies by anyone else are ignored.
fn owned_by(
    records: &[FoundRecord],
    kind: RecordKind,
    owner: &PublicKey,
) -> Result<VerifiedRecord, AccountError> {
    records
        .iter()
        .find(|f| f.record.owner() == owner)
        .map(|f| f.record.clone())
        .ok_or_else(|| AccountError::Damaged(format!("the {kind:?} record is missing")))
}

/// Opens an account from its records and republishes them (the owner keeps them alive).
///
/// Several keys may claim a username: the real owner's, and any that hostile peers made up and
/// answer with, however many of them there are. The account is the one whose sealed private
/// key opens with the password; the others are tried and passed over (at most
/// [`MAX_OWNERS_TRIED`], most widely held first).
pub async fn log_in(
    dir: &impl Directory,
    username: &str,
    password: &str,
) -> Result<Session, AccountError> {
    let username = normalize_username(username).map_err(|_| AccountError::UnknownUser)?;
    let account = account_id(&username);
    let claims = records_of(dir, RecordKind::PublicKey, &account).await?;
    if claims.is_empty() {
        return Err(AccountError::UnknownUser);
    }
    let private_records = records_of(dir, RecordKind::PrivateKey, &account).await?;
    let user_key_records = records_of(dir, RecordKind::UserKey, &account).await?;

    // What to report if no claim opens: a wrong password over a damaged stranger's claim.
    let mut failure = None;
    for FoundRecord {
        record: public_record,
        ..
    } in claims.into_iter().take(MAX_OWNERS_TRIED)
    {
        let owner = public_record.owner().clone();
        let opened = async {
            let private_record = owned_by(&private_records, RecordKind::PrivateKey, &owner)?;
            let private = open_private_key(&private_record, &account, password).await?;
            if private.public() != owner {
                return Err(AccountError::Damaged(
                    "the private key does not match the public key".into(),
                ));
            }
            Ok((private_record, private))
        }
        .await;
        let (private_record, private) = match opened {
            Ok(opened) => opened,
            // Not this key's account (or not this password): try the next claim.
            Err(AccountError::WrongPassword) => {
                failure = Some(AccountError::WrongPassword);
                continue;
            }
            Err(e @ AccountError::Damaged(_)) => {
                failure.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let user_key_record = owned_by(&user_key_records, RecordKind::UserKey, &owner)?;
        let wrapped: WrappedUserKey = decode_body(&user_key_record)?;
        let user_key = SymmetricKey::from_slice(&private.unwrap_key(&wrapped.wrapped)?)?;

        for record in [&public_record, &private_record, &user_key_record] {
            dir.put(record.record().clone()).await?;
        }
        return Ok(Session {
            username,
            account,
            private,
            user_key,
            private_key_record: std::sync::Mutex::new(private_record),
        });
    }
    Err(failure.unwrap_or(AccountError::WrongPassword))
}

/// Reseals the private key under `new_password` (new salt) and publishes it with a higher
/// sequence number. The identity, the user key and everything they protect stay the same.
/// `current_password` must open the private key as held: an unattended tab is not enough.
pub async fn change_password(
    dir: &impl Directory,
    session: &Session,
    current_password: &str,
    new_password: &str,
) -> Result<(), AccountError> {
    check_password(new_password, &session.username)?;
    let held = session
        .private_key_record
        .lock()
        .map_err(|_| AccountError::Damaged("session lock poisoned".into()))?
        .clone();
    open_private_key(&held, &session.account, current_password).await?;
    let held_seq = held.record().seq;
    let owner = session.public_key();
    let network_seq = records_of(dir, RecordKind::PrivateKey, &session.account)
        .await?
        .iter()
        .find(|f| f.record.owner() == &owner)
        .map_or(0, |f| f.record.record().seq);
    let body = seal_private_key(&session.account, &session.private, new_password).await?;
    let record = session.sign(RecordKind::PrivateKey, held_seq.max(network_seq) + 1, body)?;
    let verified = VerifiedRecord::from_wire(&record.key(), &record.to_wire())?;
    dir.put(record).await?;
    if let Ok(mut held) = session.private_key_record.lock() {
        *held = verified;
    }
    Ok(())
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

    #[test]
    fn weak_passwords_are_refused_with_advice() {
        for weak in ["password", "alice2024", "qwertyuiop", "aaaaaaaaaaaa"] {
            let err = check_password(weak, "alice").unwrap_err();
            let text = err.to_string();
            assert!(text.contains("too easy to guess"), "{weak}: {text}");
        }
        let strong = password_strength("correct horse battery staple violet", "alice");
        assert!(strong.acceptable, "{strong:?}");
        assert!(check_password("correct horse battery staple violet", "alice").is_ok());
    }
}
