//! From password to key: PBKDF2-HMAC-SHA256, with its parameters kept beside what it seals.

use serde::{Deserialize, Serialize};

use super::{random_bytes, CryptoError, SymmetricKey, KEY_LEN};

/// Iterations for new keys: OWASP's 2023 advice for PBKDF2-HMAC-SHA256.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Fewest iterations accepted from a record: a forged record must not make guessing cheap.
pub const MIN_ITERATIONS: u32 = 600_000;
/// Most iterations accepted: a forged record must not make a login take hours.
pub const MAX_ITERATIONS: u32 = 20_000_000;
/// Length of a fresh per-user salt.
pub const SALT_LEN: usize = 16;

/// Which algorithm derived a key, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "alg", rename_all = "kebab-case")]
pub enum KdfParams {
    /// PBKDF2 with HMAC-SHA256.
    Pbkdf2Sha256 {
        /// Iteration count.
        iterations: u32,
        /// Random per-user salt.
        salt: [u8; SALT_LEN],
    },
}

impl KdfParams {
    /// Fresh parameters for a new password: default iterations, random salt.
    pub fn fresh() -> Self {
        Self::Pbkdf2Sha256 {
            iterations: DEFAULT_ITERATIONS,
            salt: random_bytes(),
        }
    }

    /// Refuses parameters outside the accepted range.
    pub fn check(&self) -> Result<(), CryptoError> {
        let Self::Pbkdf2Sha256 { iterations, .. } = self;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(iterations) {
            return Err(CryptoError::BadParameters(format!(
                "PBKDF2 iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, not {iterations}"
            )));
        }
        Ok(())
    }
}

/// Derives a key from `password` with RustCrypto (see [`super::fast::derive_key`] for the
/// browser's faster path).
pub fn derive_key(password: &str, params: &KdfParams) -> Result<SymmetricKey, CryptoError> {
    params.check()?;
    let KdfParams::Pbkdf2Sha256 { iterations, salt } = params;
    Ok(derive_unchecked(password.as_bytes(), salt, *iterations))
}

pub(crate) fn derive_unchecked(password: &[u8], salt: &[u8], iterations: u32) -> SymmetricKey {
    let mut key = [0u8; KEY_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut key);
    SymmetricKey::from_bytes(key)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn matches_the_rfc_7914_test_vector() {
        // PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64), first 32 bytes (RFC 7914, section 11).
        let key = derive_unchecked(b"passwd", b"salt", 1);
        assert_eq!(
            key.as_bytes()[..8],
            [0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f]
        );
    }

    #[test]
    fn forged_parameters_are_refused() {
        let weak = KdfParams::Pbkdf2Sha256 {
            iterations: 1,
            salt: [0; SALT_LEN],
        };
        assert!(matches!(
            derive_key("pw", &weak),
            Err(CryptoError::BadParameters(_))
        ));
        let absurd = KdfParams::Pbkdf2Sha256 {
            iterations: u32::MAX,
            salt: [0; SALT_LEN],
        };
        assert!(absurd.check().is_err());
        assert!(KdfParams::fresh().check().is_ok());
    }
}
