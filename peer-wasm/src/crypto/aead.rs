//! AES-256-GCM sealing with a fresh random nonce per message (RustCrypto).

use aes_gcm::{
    aead::{Aead, Payload},
    Aes256Gcm, KeyInit, Nonce,
};
use serde::{Deserialize, Serialize};

use super::{random_bytes, CryptoError, SymmetricKey};

/// Length of a GCM nonce.
pub const NONCE_LEN: usize = 12;

/// A sealed message: its nonce and the ciphertext with the 16-byte tag at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The random nonce this message was sealed with.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the authentication tag.
    #[serde(with = "serde_bytes_vec")]
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// How many bytes shorter this message is written than with the widest nonce. The nonce is
    /// written as 12 CBOR integers, one byte each under 24 and two from 24, so one plaintext
    /// seals to encodings up to 12 bytes apart. A size limit that refuses (a letter in one
    /// record) counts the message at its widest, so that whether it fits does not depend on
    /// the nonce drawn: a letter that fit when a file was shared was once refused when sent
    /// again. Layout thresholds (inline index or manifest) need not: they only pick a layout.
    /// At the next wire-version bump the nonce becomes a byte string and this goes.
    pub fn widest_extra(&self) -> usize {
        self.nonce.iter().filter(|b| **b < 24).count()
    }
}

/// Seals `plaintext` under `key` with a fresh nonce; `aad` is authenticated, not encrypted.
pub fn seal(key: &SymmetricKey, aad: &[u8], plaintext: &[u8]) -> Sealed {
    let nonce = random_bytes::<NONCE_LEN>();
    Sealed {
        ciphertext: seal_with_nonce(key, &nonce, aad, plaintext),
        nonce,
    }
}

pub(crate) fn seal_with_nonce(
    key: &SymmetricKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    // Encryption only fails for inputs over GCM's 64 GiB limit, far above any block or record.
    cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// Opens a [`Sealed`] message, failing if the key, the data or the `aad` differ.
pub fn open(key: &SymmetricKey, aad: &[u8], sealed: &Sealed) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    cipher
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Decrypt)
}

/// Serde for `Vec<u8>` as one CBOR byte string instead of an array of numbers.
pub(crate) mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn seals_and_opens_with_fresh_nonces() {
        let key = SymmetricKey::random();
        let a = seal(&key, b"ctx", b"secret");
        let b = seal(&key, b"ctx", b"secret");
        assert_ne!(a.nonce, b.nonce, "every seal takes a fresh nonce");
        assert_eq!(open(&key, b"ctx", &a).unwrap(), b"secret");
    }

    #[test]
    fn wrong_key_aad_or_tampering_fail() {
        let key = SymmetricKey::random();
        let sealed = seal(&key, b"ctx", b"secret");
        assert_eq!(
            open(&SymmetricKey::random(), b"ctx", &sealed),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(open(&key, b"other", &sealed), Err(CryptoError::Decrypt));
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert_eq!(open(&key, b"ctx", &altered), Err(CryptoError::Decrypt));
    }

    #[test]
    fn a_message_counted_at_its_widest_does_not_depend_on_its_nonce() {
        let written = |nonce: [u8; NONCE_LEN]| {
            let sealed = Sealed {
                nonce,
                ciphertext: vec![2; 4000],
            };
            // CBOR as the wire writes it (the wire's envelope around it is of fixed size).
            let len = cbor4ii::serde::to_vec(Vec::new(), &sealed).unwrap().len();
            (len, sealed.widest_extra())
        };
        let (widest, none) = written([255; NONCE_LEN]);
        assert_eq!(none, 0);
        // The spread there is: 12 bytes between the narrowest nonce and the widest.
        assert_eq!(written([0; NONCE_LEN]), (widest - NONCE_LEN, NONCE_LEN));
        for seed in 0..=255u8 {
            let nonce: [u8; NONCE_LEN] =
                std::array::from_fn(|i| seed.wrapping_mul(i as u8 * 2 + 1) ^ (i as u8 * 19));
            let (len, extra) = written(nonce);
            assert_eq!(len + extra, widest, "{nonce:?}");
        }
    }
}
