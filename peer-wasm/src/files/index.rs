//! The file index: finding and opening it (the record, then the sealed blob it points at),
//! and committing a change to it (reload, apply, seal, place, sign a new record; again on a
//! conflict with another browser).

use super::*;

/// Times a change is applied to the newest index when another writer (another browser of the
/// user, or this tab's own upkeep) saved in between.
pub(super) const COMMIT_ATTEMPTS: usize = 3;

/// The account's index, and the record that points at it (if any). After a password change
/// not yet finished ([`Drive::finish_rotation`]) the record is an earlier key's and the index is sealed
/// under an earlier user key. Pledges for any other owner than the session's key are dropped:
/// holders would not count them.
pub(super) async fn load_index<N: Network>(
    drive: &Drive<N>,
) -> Result<(FileIndex, Option<VerifiedRecord>), FileError> {
    let (client, session) = (&drive.client, &*drive.session);
    let owner = session.public_key();
    // A lookup that heard too few peers to tell whether the index exists goes again, with
    // growing pauses, for up to `network_wait` (as log-in does): right after a holder tab closed,
    // the routing table still names it and a lookup can hear two live peers of the three it
    // needs, and an upload must not fail for that.
    let key = dht_key(RecordKind::FileIndex, &session.account());
    let deadline = web_time::Instant::now() + drive.settings.network_wait;
    let mut pause = crate::account::RETRY_PAUSE;
    let records = loop {
        match client.get_record(key.clone()).await {
            Err(NetError::TooFewPeers { .. }) if web_time::Instant::now() + pause < deadline => {
                futures_timer::Delay::new(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(4));
            }
            other => break other?,
        }
    };
    let record = records
        .iter()
        .find(|r| r.owner() == &owner)
        .or_else(|| records.iter().find(|r| session.is_own_key(r.owner())))
        .cloned();
    let Some(record) = record else {
        return Ok((FileIndex::default(), None));
    };
    // An earlier key's record, before the change is finished: whoever knew the old password
    // may have replaced it since, so the pointer read is the one the change pinned.
    let body = match session.index_at_change() {
        Some(pinned) if record.owner() != &owner => &pinned.body,
        _ => &record.record().body,
    };
    let pointer: IndexPointer = decode(body)?;
    let keys: Vec<&SymmetricKey> = session.user_keys().collect();
    let plain = fetch_with(
        client,
        &drive.settings,
        &keys,
        &index_file_id(session),
        META_POSITION,
        &pointer.blob,
    )
    .await
    .map_err(|attempts| {
        // Copies that all fail to open are damage (or a key this session lacks), not absence:
        // trying again later would not help.
        if attempts.all_bad_copies() {
            FileError::Damaged(format!("the index does not open: {attempts}"))
        } else {
            FileError::IndexUnavailable(attempts)
        }
    })?;
    let mut index: FileIndex = decode(&plain)?;
    let owner = owner_hash(session)?;
    index.donations.retain(|_, pledge| pledge.owner == owner);
    Ok((index, Some(record)))
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
    mut change: impl FnMut(&mut FileIndex),
) -> Result<(), FileError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (mut index, previous) = load_index(drive).await?;
        change(&mut index);
        // Every write carries this browser's pledge: the index blob is placed under the
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

/// Seals and stores a new index, then points the account's record at it.
pub(super) async fn save_index<N: Network>(
    drive: &Drive<N>,
    index: &FileIndex,
    previous: Option<&VerifiedRecord>,
) -> Result<(), FileError> {
    let (client, session) = (&drive.client, &*drive.session);
    let (_, sealed) = seal_block(
        session.user_key(),
        &index_file_id(session),
        META_POSITION,
        &encode(index)?,
    )
    .await?;
    // Not witnessed: an index blob is freed at the next save.
    let (blob, _) = place(drive, &index.pledges(), sealed, META_POSITION).await?;
    let seq = previous.map_or(1, |r| r.record().seq + 1);
    let record = session
        .sign(
            RecordKind::FileIndex,
            seq,
            encode(&IndexPointer { blob: blob.clone() })?,
        )
        .map_err(|e| FileError::Damaged(e.to_string()))?;
    if let Err(e) = client.put_record(record).await {
        // Nothing points at the new blob: free it.
        free(drive, &blob).await;
        return Err(e.into());
    }
    // The previous index blob is garbage now: free it (best effort; a stale copy is harmless).
    if let Some(pointer) = previous.and_then(|r| decode::<IndexPointer>(&r.record().body).ok()) {
        free(drive, &pointer.blob).await;
    }
    Ok(())
}
