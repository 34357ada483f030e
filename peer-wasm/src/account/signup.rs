//! Sign-up: a new key pair and user key, three signed records, done only once other peers
//! hold them; or, first on an empty network, held in this tab until peers appear.

use super::*;

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
    check_password(password, &username).await?;
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

/// Signs up the first person on a network that has no other peer yet (the page asks the
/// relay, which sees every tab, before it offers this): the name is checked against what this
/// tab holds, the records go into this tab's own store (kept across reloads) and out to
/// whoever appears, and [`Unpublished::publish`] says when others hold them. Until then the
/// account lives in this tab alone: closing it for good loses the account. Its RSA key has
/// `rsa_bits` bits ([`crate::crypto::rsa_keys::RSA_BITS`] in the app).
pub async fn sign_up_alone(
    dir: &impl Directory,
    username: &str,
    password: &str,
    rsa_bits: usize,
) -> Result<(Session, Unpublished), AccountError> {
    let username = normalize_username(username)?;
    check_password(password, &username).await?;
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
    let (session, records) = new_account(username, account, password, rsa_bits).await?;
    let unpublished = Unpublished { records };
    unpublished.put_all(dir).await;
    Ok((session, unpublished))
}

/// A new account's keys and its three records (public key, sealed private key, wrapped user
/// key), signed and not yet published.
pub(super) async fn new_account(
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
pub(super) async fn confirm_held_elsewhere(
    dir: &impl Directory,
    record: &SignedRecord,
) -> Result<(), AccountError> {
    confirm_held_elsewhere_putting(dir, record, false).await
}

/// [`confirm_held_elsewhere`]; with `put_again`, the record is put out again before each
/// look, for peers that joined since (a first account going out as the network forms).
pub(super) async fn confirm_held_elsewhere_putting(
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
