//! The account's keys in its records: sealing the private key under the password, wrapping
//! the user key to the public key, and opening them again; record bodies in and out.

use super::*;

pub(super) fn private_key_aad(account: &AccountId) -> Vec<u8> {
    [b"jellyfish/private-key/v1/".as_slice(), &account.0].concat()
}

pub(super) fn user_keys_aad(account: &AccountId) -> Vec<u8> {
    [b"jellyfish/user-keys/v1/".as_slice(), &account.0].concat()
}

pub(super) fn encode_body<T: Serialize>(body: &T) -> Result<Vec<u8>, AccountError> {
    protocol::encode(body).map_err(|e| AccountError::Damaged(e.to_string()))
}

pub(super) async fn seal_private_key(
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
pub(super) fn wrap_user_key(
    owner: &PublicKey,
    user_key: &SymmetricKey,
) -> Result<Vec<u8>, AccountError> {
    encode_body(&WrappedUserKey {
        wrapped: owner.wrap(user_key.as_bytes())?,
    })
}

pub(super) fn decode_body<T: serde::de::DeserializeOwned>(
    record: &VerifiedRecord,
) -> Result<T, AccountError> {
    protocol::decode(&record.record().body, crate::record::MAX_RECORD_BYTES)
        .map_err(|e| AccountError::Damaged(format!("{:?} record: {e}", record.record().kind)))
}

/// Opens a private-key record with a password: the private key, and the user keys a rotated
/// account's record carries.
pub(super) async fn open_private_key(
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
