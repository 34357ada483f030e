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

/// The strength estimate of a password, for the sign-up form's meter.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
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

fn private_key_aad(account: &AccountId) -> Vec<u8> {
    [b"jellyfish/private-key/v1/".as_slice(), &account.0].concat()
}

fn user_keys_aad(account: &AccountId) -> Vec<u8> {
    [b"jellyfish/user-keys/v1/".as_slice(), &account.0].concat()
}

fn encode_body<T: Serialize>(body: &T) -> Result<Vec<u8>, AccountError> {
    protocol::encode(body).map_err(|e| AccountError::Damaged(e.to_string()))
}

async fn seal_private_key(
    account: &AccountId,
    private: &PrivateKey,
    password: &str,
    user_keys: Option<&UserKeys>,
) -> Result<Vec<u8>, AccountError> {
    let kdf = KdfParams::fresh();
    let key = fast::derive_key(password, &kdf).await?;
    let pkcs8 = private.to_pkcs8()?;
    let sealed = fast::seal(&key, &private_key_aad(account), &pkcs8).await?;
    let user_keys = match user_keys {
        Some(keys) => {
            let plain = Zeroizing::new(encode_body(keys)?);
            Some(fast::seal(&key, &user_keys_aad(account), &plain).await?)
        }
        None => None,
    };
    encode_body(&SealedPrivateKey {
        kdf,
        sealed,
        user_keys,
    })
}

/// The body of a user-key record: `user_key` wrapped to `owner`.
fn wrap_user_key(owner: &PublicKey, user_key: &SymmetricKey) -> Result<Vec<u8>, AccountError> {
    encode_body(&WrappedUserKey {
        wrapped: owner.wrap(user_key.as_bytes())?,
    })
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
    let (session, records) = new_account(username, account, password, rsa_bits).await?;
    // The public key first: it claims the name.
    for record in &records {
        dir.put(record.clone()).await?;
    }
    // Done only once other peers hold the records, read back from them: a put acknowledged by
    // libp2p may still have been filtered out by its holders.
    for record in &records {
        confirm_held_elsewhere(dir, record).await?;
    }
    Ok(session)
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

/// Signs up the first person on a network that has no other peer yet (the page asks the
/// relay, which sees every tab, before it offers this): the name is checked against what this
/// tab holds, the records go into this tab's own store (kept across reloads) and out to
/// whoever appears, and [`Unpublished::publish`] says when others hold them. Until then the
/// account lives in this tab alone: closing it for good loses the account.
pub async fn sign_up_alone(
    dir: &impl Directory,
    username: &str,
    password: &str,
) -> Result<(Session, Unpublished), AccountError> {
    let username = normalize_username(username)?;
    check_password(password, &username)?;
    let account = account_id(&username);
    // One look, no waiting for a network that is not there: a claim this tab holds (or one a
    // peer that just appeared answers with) still makes the name taken.
    match dir.find(dht_key(RecordKind::PublicKey, &account)).await {
        Ok(found)
            if found
                .iter()
                .any(|f| f.record.record().kind == RecordKind::PublicKey) =>
        {
            return Err(AccountError::NameTaken)
        }
        Ok(_) | Err(AccountError::Unreachable { .. }) => {}
        Err(e) => return Err(e),
    }
    let (session, records) = new_account(
        username,
        account,
        password,
        crate::crypto::rsa_keys::RSA_BITS,
    )
    .await?;
    let unpublished = Unpublished { records };
    unpublished.put_all(dir).await;
    Ok((session, unpublished))
}

/// A new account's keys and its three records (public key, sealed private key, wrapped user
/// key), signed and not yet published.
async fn new_account(
    username: String,
    account: AccountId,
    password: &str,
    rsa_bits: usize,
) -> Result<(Session, [SignedRecord; 3]), AccountError> {
    let private = fast::generate_rsa(rsa_bits).await?;
    let user_key = SymmetricKey::random();
    let public_record =
        SignedRecord::sign(RecordKind::PublicKey, account, 1, &private, Vec::new())?;
    let private_record = SignedRecord::sign(
        RecordKind::PrivateKey,
        account,
        1,
        &private,
        seal_private_key(&account, &private, password, None).await?,
    )?;
    let user_key_record = SignedRecord::sign(
        RecordKind::UserKey,
        account,
        1,
        &private,
        wrap_user_key(&private.public(), &user_key)?,
    )?;

    let private_key_record =
        VerifiedRecord::from_wire(&private_record.key(), &private_record.to_wire())?;
    let session = Session {
        username,
        account,
        private,
        user_key,
        earlier_user_keys: Vec::new(),
        history: Vec::new(),
        private_key_record,
        forked: false,
        index_at_change: None,
    };
    // The public key first: it claims the name.
    Ok((session, [public_record, private_record, user_key_record]))
}

/// Reads `record` back from the network until another peer answers with it (the same or a
/// newer version by the same owner), for up to [`NETWORK_WAIT`].
async fn confirm_held_elsewhere(
    dir: &impl Directory,
    record: &SignedRecord,
) -> Result<(), AccountError> {
    confirm_held_elsewhere_putting(dir, record, false).await
}

/// [`confirm_held_elsewhere`]; with `put_again`, the record is put out again before each
/// look, for peers that joined since (a first account going out as the network forms).
async fn confirm_held_elsewhere_putting(
    dir: &impl Directory,
    record: &SignedRecord,
    put_again: bool,
) -> Result<(), AccountError> {
    let deadline = web_time::Instant::now() + NETWORK_WAIT;
    let mut pause = RETRY_PAUSE;
    loop {
        if put_again {
            if let Err(e) = dir.put(record.clone()).await {
                tracing::debug!("account record not yet held elsewhere: {e}");
            }
        }
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

/// Opens a private-key record with a password: the private key, and the user keys a rotated
/// account's record carries.
async fn open_private_key(
    record: &VerifiedRecord,
    account: &AccountId,
    password: &str,
) -> Result<(PrivateKey, Option<UserKeys>), AccountError> {
    let sealed: SealedPrivateKey = decode_body(record)?;
    let key = fast::derive_key(password, &sealed.kdf).await?;
    let wrong_password = |e| match e {
        CryptoError::Decrypt => AccountError::WrongPassword,
        other => AccountError::Crypto(other),
    };
    let pkcs8 = Zeroizing::new(
        fast::open(&key, &private_key_aad(account), &sealed.sealed)
            .await
            .map_err(wrong_password)?,
    );
    let private = PrivateKey::from_pkcs8(&pkcs8)?;
    let user_keys = match &sealed.user_keys {
        Some(keys) => {
            let plain = Zeroizing::new(
                fast::open(&key, &user_keys_aad(account), keys)
                    .await
                    .map_err(wrong_password)?,
            );
            Some(
                protocol::decode::<UserKeys>(&plain, crate::record::MAX_RECORD_BYTES)
                    .map_err(|e| AccountError::Damaged(format!("user keys: {e}")))?,
            )
        }
        None => None,
    };
    Ok((private, user_keys))
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
fn owned_by<'a>(records: &'a [FoundRecord], owner: &PublicKey) -> Option<&'a VerifiedRecord> {
    records
        .iter()
        .find(|f| f.record.owner() == owner)
        .map(|f| &f.record)
}

/// The private-key records log-in tries, in order: for each claim on the name (most widely held
/// first), the newest key of its line of hand-overs (the claim's own key if it never rotated).
/// A key that handed over to a later one is never tried: after a password change the old
/// password opens nothing, even where a holder still answers with the old records.
fn keys_to_try(claims: &[FoundRecord], private_records: &[FoundRecord]) -> Vec<VerifiedRecord> {
    let superseded = |record: &VerifiedRecord| {
        private_records
            .iter()
            .any(|later| later.record.descends_from(&record.record().owner))
    };
    let mut heads: Vec<VerifiedRecord> = Vec::new();
    for claim in claims {
        let claimed = &claim.record.record().owner;
        for candidate in private_records.iter().map(|f| &f.record) {
            let in_line = &candidate.record().owner == claimed || candidate.descends_from(claimed);
            if in_line && !superseded(candidate) && !heads.contains(candidate) {
                heads.push(candidate.clone());
            }
        }
    }
    heads.truncate(MAX_OWNERS_TRIED);
    heads
}

/// Whether another of `heads` shares an earlier key with `head`: a fork of its history.
fn forked(head: &VerifiedRecord, heads: &[VerifiedRecord]) -> bool {
    let earlier: Vec<&[u8]> = head
        .record()
        .history
        .iter()
        .map(|l| l.previous.as_slice())
        .collect();
    heads.iter().filter(|h| *h != head).any(|other| {
        earlier.iter().any(|key| other.descends_from(key))
            || head.descends_from(&other.record().owner)
    })
}

/// Opens an account from its records and republishes them (the owner keeps them alive).
///
/// Several keys may claim a username: the real owner's, and any that hostile peers made up and
/// answer with, however many of them there are. The account is the one whose sealed private
/// key opens with the password; the others are tried and passed over (at most
/// [`MAX_OWNERS_TRIED`], most widely held first). Only the newest key of a line of hand-overs
/// is tried ([`keys_to_try`]); if a password change was cut short after its private-key
/// record, the log-in publishes the rest.
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

    // What to report if no key opens: a wrong password over a damaged stranger's claim.
    let mut failure = None;
    let heads = keys_to_try(&claims, &private_records);
    for private_record in heads.clone() {
        let owner = private_record.owner().clone();
        let (private, user_keys) = match open_private_key(&private_record, &account, password).await
        {
            Ok(opened) => opened,
            // Not this key's account (or not this password): try the next.
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
        if private.public() != owner {
            failure.get_or_insert(AccountError::Damaged(
                "the private key does not match its record".into(),
            ));
            continue;
        }
        let user_key_record = owned_by(&user_key_records, &owner);
        let index_at_change = user_keys.as_ref().and_then(|k| k.index_at_change.clone());
        let (user_key, earlier_user_keys) = match (&user_keys, user_key_record) {
            (Some(keys), _) => (
                SymmetricKey::from_bytes(keys.current),
                keys.earlier
                    .iter()
                    .copied()
                    .map(SymmetricKey::from_bytes)
                    .collect(),
            ),
            (None, Some(record)) => {
                let wrapped: WrappedUserKey = decode_body(record)?;
                let raw = private.unwrap_key(&wrapped.wrapped)?;
                (SymmetricKey::from_slice(&raw)?, Vec::new())
            }
            (None, None) => {
                return Err(AccountError::Damaged(
                    "the UserKey record is missing".into(),
                ))
            }
        };
        let session = Session {
            username,
            account,
            private,
            user_key,
            earlier_user_keys,
            history: private_record.record().history.clone(),
            forked: forked(&private_record, &heads),
            private_key_record: private_record.clone(),
            index_at_change,
        };
        // Upkeep, not part of opening the account: a holder that took a fork (or a record it
        // will not replace) refuses it, and that must not keep the owner out.
        if let Err(e) = republish(dir, &session, &claims, user_key_record).await {
            tracing::warn!("logged in; the account's records were not all republished: {e}");
        }
        return Ok(session);
    }
    Err(failure.unwrap_or_else(|| {
        AccountError::Damaged("no private-key record belongs to a claim on the name".into())
    }))
}

/// Puts the session's records back (their holders keep them another [`crate::net`] record
/// lifetime), signing the public-key and user-key records anew where a password change was
/// cut short before they were published.
async fn republish(
    dir: &impl Directory,
    session: &Session,
    claims: &[FoundRecord],
    user_key_record: Option<&VerifiedRecord>,
) -> Result<(), AccountError> {
    let owner = session.public_key();
    // Past the newest claim in the line, so holders of an older one take it.
    let next_seq = claims
        .iter()
        .filter(|f| session.is_own_key(f.record.owner()))
        .map(|f| f.record.record().seq)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    let public = match owned_by(claims, &owner) {
        Some(record) => record.record().clone(),
        None => session.sign(RecordKind::PublicKey, next_seq, Vec::new())?,
    };
    let user_key = match user_key_record {
        Some(record) => record.record().clone(),
        None => session.sign(
            RecordKind::UserKey,
            next_seq,
            wrap_user_key(&owner, &session.user_key)?,
        )?,
    };
    for record in [
        public,
        session.private_key_record.record().clone(),
        user_key,
    ] {
        dir.put(record).await?;
    }
    Ok(())
}

/// Changes the password by rotating the account's keys, and returns the session of the new
/// keys (the old session must no longer be used). `current_password` must open the private key
/// as held: an unattended tab is not enough.
///
/// A new RSA key pair and user key are made; the old key hands over to the new one; the new
/// private-key record (sealed under the new password, carrying the new and earlier user keys)
/// is published first: once it is out the change is done and the new session comes back, even
/// if the user-key and public-key records that follow, or the read-back from another peer, fail
/// (the next log-in publishes them). What the user key sealed (the file index, file keys) is re-sealed
/// by [`crate::files::finish_rotation`].
pub async fn change_password(
    dir: &impl Directory,
    session: &Session,
    current_password: &str,
    new_password: &str,
) -> Result<Session, AccountError> {
    check_password(new_password, &session.username)?;
    let held = &session.private_key_record;
    open_private_key(held, &session.account, current_password).await?;

    let private = fast::generate_rsa(session.private.bits()).await?;
    let user_key = SymmetricKey::random();
    let history = key_history::extended(
        &session.history,
        KeyLink::sign(&session.private, &private.public())?,
    );
    let mut earlier: Vec<[u8; 32]> = session.user_keys().map(|k| *k.as_bytes()).collect();
    earlier.truncate(MAX_KEY_LINKS);
    let user_keys = UserKeys {
        current: *user_key.as_bytes(),
        earlier,
        index_at_change: index_at_change(dir, session).await?,
    };
    // Past the newest record of this account's own line (others' made-up numbers do not count:
    // across a hand-over the sequence does not decide anyway).
    let network_seq = records_of(dir, RecordKind::PrivateKey, &session.account)
        .await?
        .iter()
        .filter(|f| session.is_own_key(f.record.owner()))
        .map(|f| f.record.record().seq)
        .max()
        .unwrap_or(0);
    let seq = held.record().seq.max(network_seq).saturating_add(1);
    let body = seal_private_key(&session.account, &private, new_password, Some(&user_keys)).await?;
    let next = Session {
        username: session.username.clone(),
        account: session.account,
        private,
        user_key,
        earlier_user_keys: user_keys
            .earlier
            .iter()
            .copied()
            .map(SymmetricKey::from_bytes)
            .collect(),
        history,
        private_key_record: held.clone(),
        forked: false,
        index_at_change: user_keys.index_at_change.clone(),
    };
    let record = next.sign(RecordKind::PrivateKey, seq, body)?;
    let private_key_record = VerifiedRecord::from_wire(&record.key(), &record.to_wire())?;
    // The commit point: from here on the new password opens the account and the old does not.
    dir.put(record.clone()).await?;
    let next = Session {
        private_key_record,
        ..next
    };
    // The rest is published again by the next log-in if it fails here: the change is done, and
    // the tab must go on with the new keys (a retry from the old ones would fork the account).
    let rest = async {
        let user_key_record = next.sign(
            RecordKind::UserKey,
            seq,
            wrap_user_key(&next.public_key(), &next.user_key)?,
        )?;
        dir.put(user_key_record).await?;
        dir.put(next.sign(RecordKind::PublicKey, seq, Vec::new())?)
            .await?;
        confirm_held_elsewhere(dir, &record).await
    };
    if let Err(e) = rest.await {
        tracing::warn!("password changed; the rest is published at the next log-in: {e}");
    }
    Ok(next)
}

/// The account's file-index pointer now, to pin at a change: the newest index record signed
/// by this account's current or an earlier key, read from peers that answered (a lookup that
/// reached nobody stops the change before its commit point). `None` when none was found: an
/// empty pin would hide an index that merely went unheard, so nothing is pinned then.
async fn index_at_change(
    dir: &impl Directory,
    session: &Session,
) -> Result<Option<IndexAtChange>, AccountError> {
    let records = records_of(dir, RecordKind::FileIndex, &session.account).await?;
    let current = owned_by(&records, &session.public_key());
    let newest_own = || {
        records
            .iter()
            .filter(|f| session.is_own_key(f.record.owner()))
            .max_by_key(|f| f.record.record().seq)
            .map(|f| &f.record)
    };
    Ok(current.or_else(newest_own).map(|record| IndexAtChange {
        body: record.record().body.clone(),
    }))
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
