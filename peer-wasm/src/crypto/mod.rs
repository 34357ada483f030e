//! The cryptographic primitives of accounts and files, and the formats they produce.
//!
//! - [`aead`]: AES-256-GCM with a fresh random 96-bit nonce per message, and associated data
//!   binding each ciphertext to where it belongs.
//! - [`kdf`]: PBKDF2-HMAC-SHA256 from password to key, with the parameters stored beside the
//!   ciphertext so they can be raised later.
//! - [`rsa_keys`]: the user's RSA key pair: PSS-SHA256 signatures, OAEP-SHA256 key wrapping,
//!   SPKI and PKCS#8 DER encodings.
//! - [`fast`]: the same AES-GCM and PBKDF2 behind async functions that use the browser's
//!   WebCrypto when it is faster (it is, about 5x, in Chromium) and RustCrypto natively.
//!   Both produce the same bytes; a browser test proves each opens what the other sealed.
//!
//! Keys live in [`SymmetricKey`], zeroed when dropped.

pub mod aead;
pub mod fast;
pub mod kdf;
pub mod rsa_keys;

use rand_core::{OsRng, RngCore};
use zeroize::Zeroize;

/// Length of every symmetric key: AES-256.
pub const KEY_LEN: usize = 32;

/// Errors of the primitives. Messages say what failed, never anything secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication failed: wrong key, or the data was altered.
    #[error("decryption failed: wrong key or altered data")]
    Decrypt,
    /// A signature did not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A key could not be decoded or is unusable.
    #[error("invalid key: {0}")]
    BadKey(String),
    /// Parameters outside what Jellyfish accepts (for example too few PBKDF2 iterations).
    #[error("unacceptable parameters: {0}")]
    BadParameters(String),
    /// The browser's WebCrypto failed.
    #[error("WebCrypto failed: {0}")]
    WebCrypto(String),
}

/// A 256-bit secret key, wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SymmetricKey([u8; KEY_LEN]);

impl Drop for SymmetricKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl SymmetricKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(random_bytes())
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Takes a key from a slice, refusing the wrong length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            CryptoError::BadKey(format!("a key has {KEY_LEN} bytes, not {}", bytes.len()))
        })?;
        Ok(Self(array))
    }

    /// The raw bytes, for the primitives.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(<secret>)")
    }
}

/// Bytes from the operating system's (or the browser's) secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Hash of an owner's RSA public key (SPKI DER): how holders, pledges, receipts and warrants
/// name the account a block belongs to.
pub type OwnerHash = [u8; 32];

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
