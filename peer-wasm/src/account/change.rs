//! Change password: the keys rotate (a new key pair and user key; the old key hands over to
//! the new), and the new private-key record is the commit point.

use super::*;

/// Changes the password by rotating the account's keys, and returns the session of the new
/// keys (the old session must no longer be used). `current_password` must open the private key
/// as held: an unattended tab is not enough.
///
/// A new RSA key pair and user key are made; the old key hands over to the new one; the new
/// private-key record (sealed under the new password, carrying the new and earlier user keys)
/// is published first: once it is out the change is done and the new session comes back, even
/// if the user-key and public-key records that follow, or the read-back from another peer, fail
/// (the next log-in publishes them). What the user key sealed (the file index, file keys) is
/// re-sealed by [`crate::files::Drive::finish_rotation`].
pub async fn change_password(
    dir: &impl Directory,
    session: &Session,
    current_password: &str,
    new_password: &str,
) -> Result<Session, AccountError> {
    check_password(new_password, &session.username).await?;
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
pub(super) async fn index_at_change(
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
