//! The user's RSA key pair: who they are on the network.
//!
//! Signatures are RSA-PSS with SHA-256 (random salt); key wrapping is RSA-OAEP with SHA-256.
//! Public keys travel as SPKI DER, private keys as PKCS#8 DER (only ever sealed).
//! Note: the `rsa` crate's decryption is not constant-time (RUSTSEC-2023-0071). Jellyfish only
//! decrypts locally, once per login, with no oracle for a remote attacker to time.

use rsa::{
    pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey},
    pss,
    sha2::Sha256,
    signature::{RandomizedSigner, SignatureEncoding, Verifier},
    Oaep, RsaPrivateKey, RsaPublicKey,
};
use zeroize::Zeroizing;

use super::CryptoError;

/// Modulus size of new user keys.
pub const RSA_BITS: usize = 3072;
/// Smallest modulus accepted from the network.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest modulus accepted from the network (verifying bigger keys costs too much).
pub const MAX_RSA_BITS: usize = 4096;

fn bad_key(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::BadKey(e.to_string())
}

/// A user's private key (and so its public half).
#[derive(Clone)]
pub struct PrivateKey(RsaPrivateKey);

/// A user's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(RsaPublicKey);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<secret>)")
    }
}

impl PrivateKey {
    /// Generates a new key of [`RSA_BITS`] bits.
    pub fn generate() -> Result<Self, CryptoError> {
        Self::generate_bits(RSA_BITS)
    }

    /// Generates a new key of `bits` bits (tests use smaller keys for speed).
    pub fn generate_bits(bits: usize) -> Result<Self, CryptoError> {
        RsaPrivateKey::new(&mut rand_core::OsRng, bits)
            .map(Self)
            .map_err(bad_key)
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        use rsa::traits::PublicKeyParts;
        self.0.size() * 8
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.to_public_key())
    }

    /// PKCS#8 DER, in memory that is wiped when dropped.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let doc = self.0.to_pkcs8_der().map_err(bad_key)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Reads PKCS#8 DER, checking the key is consistent.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        let key = RsaPrivateKey::from_pkcs8_der(der).map_err(bad_key)?;
        key.validate().map_err(bad_key)?;
        Ok(Self(key))
    }

    /// Signs `message` with RSA-PSS-SHA256.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        pss::SigningKey::<Sha256>::new(self.0.clone())
            .sign_with_rng(&mut rand_core::OsRng, message)
            .to_vec()
    }

    /// Unwraps what [`PublicKey::wrap`] wrapped, into memory wiped when dropped.
    pub fn unwrap_key(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0
            .decrypt(Oaep::new::<Sha256>(), wrapped)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

impl PublicKey {
    /// SPKI DER.
    pub fn to_der(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(self.0.to_public_key_der().map_err(bad_key)?.into_vec())
    }

    /// Reads SPKI DER, refusing moduli outside [`MIN_RSA_BITS`]..=[`MAX_RSA_BITS`].
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        use rsa::traits::PublicKeyParts;
        let key = RsaPublicKey::from_public_key_der(der).map_err(bad_key)?;
        let bits = key.n().bits();
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(CryptoError::BadKey(format!(
                "RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, not {bits}"
            )));
        }
        Ok(Self(key))
    }

    /// Verifies an RSA-PSS-SHA256 signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let signature =
            pss::Signature::try_from(signature).map_err(|_| CryptoError::BadSignature)?;
        pss::VerifyingKey::<Sha256>::new(self.0.clone())
            .verify(message, &signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Encrypts a short secret (a key) to this public key with RSA-OAEP-SHA256.
    pub fn wrap(&self, secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0
            .encrypt(&mut rand_core::OsRng, Oaep::new::<Sha256>(), secret)
            .map_err(bad_key)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sign_verify_wrap_unwrap_and_encodings() {
        let private = PrivateKey::generate_bits(2048).unwrap();
        let public = PublicKey::from_der(&private.public().to_der().unwrap()).unwrap();
        let signature = private.sign(b"message");
        public.verify(b"message", &signature).unwrap();
        assert_eq!(
            public.verify(b"other", &signature),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            public.verify(b"message", b"short"),
            Err(CryptoError::BadSignature)
        );

        let wrapped = public.wrap(&[7u8; 32]).unwrap();
        assert_eq!(&*private.unwrap_key(&wrapped).unwrap(), &[7u8; 32]);
        let again = PrivateKey::from_pkcs8(&private.to_pkcs8().unwrap()).unwrap();
        assert_eq!(again.public(), private.public());
        assert!(PrivateKey::from_pkcs8(b"garbage").is_err());
    }

    #[test]
    fn small_keys_are_refused_from_the_network() {
        let small = PrivateKey::generate_bits(1024).unwrap();
        assert!(PublicKey::from_der(&small.public().to_der().unwrap()).is_err());
    }
}
