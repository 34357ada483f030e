//! Log-in: the records under the name, the claims whose sealed key the password opens, the
//! newest key of each line of hand-overs; records republished so they outlive their holders.

use super::*;

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
pub(super) async fn records_of(
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
pub(super) fn owned_by<'a>(
    records: &'a [FoundRecord],
    owner: &PublicKey,
) -> Option<&'a VerifiedRecord> {
    records
        .iter()
        .find(|f| f.record.owner() == owner)
        .map(|f| &f.record)
}

/// The private-key records log-in tries, in order: for each claim on the name (most widely held
/// first), the newest key of its line of hand-overs (the claim's own key if it never rotated).
/// A key that handed over to a later one is never tried: after a password change the old
/// password opens nothing, even where a holder still answers with the old records.
pub(super) fn keys_to_try(
    claims: &[FoundRecord],
    private_records: &[FoundRecord],
) -> Vec<VerifiedRecord> {
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
pub(super) fn forked(head: &VerifiedRecord, heads: &[VerifiedRecord]) -> bool {
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
/// lifetime) with fresh leases on its blocks, signing the public-key and user-key records anew
/// where a password change was cut short before they were published.
pub(super) async fn republish(
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
    // The log-in renews every block the account stored ([`crate::repair::unrenewed`]).
    // Best effort each: a holder that took a lease signed the same second keeps that one.
    for lease in session.leases(crate::platform::unix_secs())? {
        if let Err(e) = dir.put(lease).await {
            tracing::warn!("a lease was not renewed: {e}");
        }
    }
    Ok(())
}
