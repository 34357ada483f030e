//! AES-256-GCM and PBKDF2 behind one async interface, on the fastest engine of each platform.
//!
//! In the browser these run in WebCrypto (SubtleCrypto), measured about 5x faster than
//! RustCrypto compiled to wasm for both (docs/ARCHITECTURE.md); natively they run RustCrypto.
//! RSA key generation, too, runs in WebCrypto in the browser (measured 12x faster than
//! RustCrypto in wasm: 0.2 s against 2.3 s for 3072 bits); the key is exported as PKCS#8 and
//! used by RustCrypto from then on. RSA-PSS signing (each block's warrant, each record) runs in
//! WebCrypto too: RustCrypto in wasm blocks the tab for every signature (see
//! `tests/bench/accounts.mjs`); the key is imported once and kept. So does a holder's check of
//! each stored copy's warrant ([`verify`]), each owner's key imported once. OAEP stays in
//! RustCrypto (once per log-in). Formats are identical: the nonce, ciphertext and tag layout of
//! [`Sealed`], the PBKDF2 output and the PKCS#8 key do not depend on the engine.

use super::{
    aead::{Sealed, NONCE_LEN},
    kdf::KdfParams,
    random_bytes,
    rsa_keys::PrivateKey,
    CryptoError, SymmetricKey,
};

/// Generates an RSA key pair of `bits` bits (exponent 65537).
pub async fn generate_rsa(bits: usize) -> Result<PrivateKey, CryptoError> {
    engine::generate_rsa(bits).await
}

/// Signs `message` with RSA-PSS-SHA256 and a 32-byte salt: the signature
/// [`PrivateKey::sign`] makes, and [`super::rsa_keys::PublicKey::verify`] checks.
pub async fn sign(key: &PrivateKey, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
    engine::sign(key, message).await
}

/// Checks an RSA-PSS-SHA256 signature with a 32-byte salt (what [`sign`] makes) by the key
/// `public` (SPKI DER) over `message`: [`super::rsa_keys::PublicKey::verify`] on the
/// platform's fastest engine. Refuses the keys [`super::rsa_keys::PublicKey::from_der`]
/// refuses. In the browser a holder checks one owner's warrants by the hundred (one per stored
/// copy): RustCrypto's big-number arithmetic in wasm took about 3 ms a check, the sampled
/// holders' top RSA function; WebCrypto imports each key once and checks natively.
pub async fn verify(public: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    engine::verify(public, message, signature).await
}

/// Derives a key from a password (PBKDF2-HMAC-SHA256 with the given parameters).
pub async fn derive_key(password: &str, params: &KdfParams) -> Result<SymmetricKey, CryptoError> {
    params.check()?;
    let KdfParams::Pbkdf2Sha256 { iterations, salt } = params;
    engine::pbkdf2(password.as_bytes(), salt, *iterations).await
}

/// Seals `plaintext` with a fresh random nonce.
pub async fn seal(key: &SymmetricKey, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    let nonce = random_bytes::<NONCE_LEN>();
    let ciphertext = engine::encrypt(key, &nonce, aad, plaintext).await?;
    Ok(Sealed { nonce, ciphertext })
}

/// Opens a [`Sealed`] message.
pub async fn open(key: &SymmetricKey, aad: &[u8], sealed: &Sealed) -> Result<Vec<u8>, CryptoError> {
    engine::decrypt(key, &sealed.nonce, aad, &sealed.ciphertext).await
}

#[cfg(not(target_arch = "wasm32"))]
mod engine {
    use super::super::{aead, kdf, rsa_keys::PrivateKey, CryptoError, SymmetricKey};

    pub(super) async fn generate_rsa(bits: usize) -> Result<PrivateKey, CryptoError> {
        PrivateKey::generate_bits(bits)
    }

    pub(super) async fn sign(key: &PrivateKey, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(key.sign(message))
    }

    pub(super) async fn verify(
        public: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        super::super::rsa_keys::PublicKey::from_der(public)?.verify(message, signature)
    }

    pub(super) async fn pbkdf2(
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<SymmetricKey, CryptoError> {
        Ok(kdf::derive_unchecked(password, salt, iterations))
    }

    pub(super) async fn encrypt(
        key: &SymmetricKey,
        nonce: &[u8; aead::NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Ok(aead::seal_with_nonce(key, nonce, aad, plaintext))
    }

    pub(super) async fn decrypt(
        key: &SymmetricKey,
        nonce: &[u8; aead::NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let sealed = aead::Sealed {
            nonce: *nonce,
            ciphertext: ciphertext.to_vec(),
        };
        aead::open(key, aad, &sealed)
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) mod engine {
    use js_sys::{Array, ArrayBuffer, Object, Promise, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{AesGcmParams, CryptoKey, Pbkdf2Params, SubtleCrypto};

    use super::super::{aead::NONCE_LEN, rsa_keys::PrivateKey, CryptoError, SymmetricKey, KEY_LEN};

    pub(crate) async fn generate_rsa(bits: usize) -> Result<PrivateKey, CryptoError> {
        let subtle = subtle()?;
        let algorithm = Object::new();
        let set =
            |k: &str, v: &JsValue| js_sys::Reflect::set(&algorithm, &k.into(), v).map_err(failed);
        set("name", &"RSA-PSS".into())?;
        set("modulusLength", &JsValue::from(bits as u32))?;
        set("publicExponent", &Uint8Array::from(&[1u8, 0, 1][..]).into())?;
        set("hash", &"SHA-256".into())?;
        let usages: Array = ["sign", "verify"]
            .iter()
            .map(|u| JsValue::from_str(u))
            .collect();
        let promise = subtle
            .generate_key_with_object(&algorithm, true, &usages)
            .map_err(failed)?;
        let pair = JsFuture::from(promise).await.map_err(failed)?;
        let private: CryptoKey = js_sys::Reflect::get(&pair, &"privateKey".into())
            .map_err(failed)?
            .dyn_into()
            .map_err(failed)?;
        let promise = subtle.export_key("pkcs8", &private).map_err(failed)?;
        let pkcs8 =
            zeroize::Zeroizing::new(bytes_of(JsFuture::from(promise).await.map_err(failed)?));
        PrivateKey::from_pkcs8(&pkcs8)
    }

    thread_local! {
        /// The last key imported for signing, by its public key's DER: a session signs with
        /// one key, so it is imported once, not per signature.
        static SIGNING_KEY: std::cell::RefCell<Option<(Vec<u8>, CryptoKey)>> =
            const { std::cell::RefCell::new(None) };
    }

    /// The salt length [`PrivateKey::sign`] uses: SHA-256's output.
    const PSS_SALT_LEN: u32 = 32;

    fn pss_algorithm() -> Result<Object, CryptoError> {
        let algorithm = Object::new();
        let set =
            |k: &str, v: &JsValue| js_sys::Reflect::set(&algorithm, &k.into(), v).map_err(failed);
        set("name", &"RSA-PSS".into())?;
        set("hash", &"SHA-256".into())?;
        set("saltLength", &JsValue::from(PSS_SALT_LEN))?;
        Ok(algorithm)
    }

    /// Imports an RSA-PSS key (`format` "pkcs8" or "spki") for one `usage`, not extractable.
    async fn import_pss(
        subtle: &SubtleCrypto,
        format: &str,
        der: &[u8],
        usage: &str,
    ) -> Result<CryptoKey, CryptoError> {
        let usages: Array = std::iter::once(JsValue::from_str(usage)).collect();
        imported(subtle.import_key_with_object(
            format,
            &Uint8Array::from(der),
            &pss_algorithm()?,
            false,
            &usages,
        ))
        .await
    }

    /// Awaits a started `importKey` and takes its result as the key it must be.
    async fn imported(started: Result<Promise, JsValue>) -> Result<CryptoKey, CryptoError> {
        JsFuture::from(started.map_err(failed)?)
            .await
            .map_err(failed)?
            .dyn_into()
            .map_err(failed)
    }

    async fn signing_key(
        subtle: &SubtleCrypto,
        key: &PrivateKey,
    ) -> Result<CryptoKey, CryptoError> {
        let id = key.public().to_der()?;
        let held = SIGNING_KEY.with(|held| {
            held.borrow()
                .as_ref()
                .filter(|(held_id, _)| *held_id == id)
                .map(|(_, key)| key.clone())
        });
        if let Some(key) = held {
            return Ok(key);
        }
        let pkcs8 = key.to_pkcs8()?;
        let imported = import_pss(subtle, "pkcs8", &pkcs8, "sign").await?;
        SIGNING_KEY.with(|held| *held.borrow_mut() = Some((id, imported.clone())));
        Ok(imported)
    }

    pub(crate) async fn sign(key: &PrivateKey, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let subtle = subtle()?;
        let crypto_key = signing_key(&subtle, key).await?;
        let promise = subtle
            .sign_with_object_and_u8_array(&pss_algorithm()?, &crypto_key, message)
            .map_err(failed)?;
        Ok(bytes_of(JsFuture::from(promise).await.map_err(failed)?))
    }

    thread_local! {
        /// Keys imported for checking signatures, by their SPKI DER: a holder checks each
        /// owner's warrants by the hundred, so a key is imported once, not per check.
        static VERIFYING_KEYS: std::cell::RefCell<std::collections::HashMap<Vec<u8>, CryptoKey>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }

    /// Keys kept imported; when full, the lot is dropped (a holder serves a few owners at a
    /// time, and a key imports in well under a millisecond).
    const VERIFYING_KEYS_KEPT: usize = 64;

    async fn verifying_key(subtle: &SubtleCrypto, public: &[u8]) -> Result<CryptoKey, CryptoError> {
        let held = VERIFYING_KEYS.with(|keys| keys.borrow().get(public).cloned());
        if let Some(key) = held {
            return Ok(key);
        }
        // The sizes RustCrypto accepts, and nothing WebCrypto would take that it refuses.
        super::super::rsa_keys::PublicKey::from_der(public)?;
        let imported = import_pss(subtle, "spki", public, "verify").await?;
        VERIFYING_KEYS.with(|keys| {
            let mut keys = keys.borrow_mut();
            if keys.len() >= VERIFYING_KEYS_KEPT {
                keys.clear();
            }
            keys.insert(public.to_vec(), imported.clone());
        });
        Ok(imported)
    }

    pub(crate) async fn verify(
        public: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let subtle = subtle()?;
        let key = verifying_key(&subtle, public).await?;
        let promise = subtle
            .verify_with_object_and_u8_array_and_u8_array(
                &pss_algorithm()?,
                &key,
                signature,
                message,
            )
            .map_err(failed)?;
        match JsFuture::from(promise).await.map_err(failed)?.as_bool() {
            Some(true) => Ok(()),
            _ => Err(CryptoError::BadSignature),
        }
    }

    fn failed(e: JsValue) -> CryptoError {
        CryptoError::WebCrypto(
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| format!("{e:?}")),
        )
    }

    fn subtle() -> Result<SubtleCrypto, CryptoError> {
        let crypto: web_sys::Crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
            .map_err(failed)?
            .dyn_into()
            .map_err(|_| CryptoError::WebCrypto("no crypto object in this context".into()))?;
        Ok(crypto.subtle())
    }

    async fn import(
        subtle: &SubtleCrypto,
        raw: &[u8],
        algorithm: &str,
        usages: &[&str],
    ) -> Result<CryptoKey, CryptoError> {
        let usages: Array = usages.iter().map(|u| JsValue::from_str(u)).collect();
        imported(subtle.import_key_with_str(
            "raw",
            &Uint8Array::from(raw),
            algorithm,
            false,
            &usages,
        ))
        .await
    }

    fn bytes_of(value: JsValue) -> Vec<u8> {
        Uint8Array::new(&value.unchecked_into::<ArrayBuffer>()).to_vec()
    }

    pub(crate) async fn pbkdf2(
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<SymmetricKey, CryptoError> {
        let subtle = subtle()?;
        let base = import(&subtle, password, "PBKDF2", &["deriveBits"]).await?;
        let params = Pbkdf2Params::new(
            "PBKDF2",
            &"SHA-256".into(),
            iterations,
            &Uint8Array::from(salt),
        );
        let promise = subtle
            .derive_bits_with_object(&params, &base, (KEY_LEN * 8) as u32)
            .map_err(failed)?;
        let bits = JsFuture::from(promise).await.map_err(failed)?;
        SymmetricKey::from_slice(&bytes_of(bits))
    }

    fn gcm_params(nonce: &[u8; NONCE_LEN], aad: &[u8]) -> AesGcmParams {
        let params = AesGcmParams::new("AES-GCM", &Uint8Array::from(&nonce[..]));
        params.set_additional_data(&Uint8Array::from(aad));
        params.set_tag_length(128);
        params
    }

    pub(crate) async fn encrypt(
        key: &SymmetricKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let subtle = subtle()?;
        let key = import(&subtle, key.as_bytes(), "AES-GCM", &["encrypt"]).await?;
        let data: Object = Uint8Array::from(plaintext).into();
        let promise = subtle
            .encrypt_with_object_and_buffer_source(&gcm_params(nonce, aad), &key, &data)
            .map_err(failed)?;
        Ok(bytes_of(JsFuture::from(promise).await.map_err(failed)?))
    }

    pub(crate) async fn decrypt(
        key: &SymmetricKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let subtle = subtle()?;
        let key = import(&subtle, key.as_bytes(), "AES-GCM", &["decrypt"]).await?;
        let data: Object = Uint8Array::from(ciphertext).into();
        let promise = subtle
            .decrypt_with_object_and_buffer_source(&gcm_params(nonce, aad), &key, &data)
            .map_err(failed)?;
        // WebCrypto reports a failed tag check as a bare OperationError.
        let plaintext = JsFuture::from(promise)
            .await
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(bytes_of(plaintext))
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests {
    #![allow(clippy::unwrap_used)]

    use wasm_bindgen_test::wasm_bindgen_test;

    use super::super::{aead, kdf};
    use super::*;

    #[wasm_bindgen_test]
    async fn webcrypto_and_rustcrypto_open_each_others_seals() {
        let key = SymmetricKey::random();
        let by_webcrypto = seal(&key, b"aad", b"hello from WebCrypto").await.unwrap();
        assert_eq!(
            aead::open(&key, b"aad", &by_webcrypto).unwrap(),
            b"hello from WebCrypto"
        );
        let by_rust = aead::seal(&key, b"aad", b"hello from RustCrypto");
        assert_eq!(
            open(&key, b"aad", &by_rust).await.unwrap(),
            b"hello from RustCrypto"
        );
        assert_eq!(
            open(&key, b"other", &by_rust).await,
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            open(&SymmetricKey::random(), b"aad", &by_rust).await,
            Err(CryptoError::Decrypt)
        );
    }

    #[wasm_bindgen_test::wasm_bindgen_test]
    async fn a_signature_checks_alike_in_webcrypto_and_rustcrypto() {
        let key = crate::crypto::rsa_keys::PrivateKey::generate_bits(2048).unwrap();
        let public = key.public();
        let der = public.to_der().unwrap();
        let (rust, web) = (
            key.sign(b"warrant"),
            super::sign(&key, b"warrant").await.unwrap(),
        );
        for signature in [&rust, &web] {
            // Twice: the second check finds the key imported.
            for _ in 0..2 {
                assert_eq!(super::verify(&der, b"warrant", signature).await, Ok(()));
            }
            assert_eq!(public.verify(b"warrant", signature), Ok(()));
            let mut changed = signature.clone();
            changed[10] ^= 1;
            for (message, signature) in [(&b"warrant"[..], &changed), (&b"warrants"[..], signature)]
            {
                assert_eq!(
                    super::verify(&der, message, signature).await,
                    Err(CryptoError::BadSignature)
                );
                assert_eq!(
                    public.verify(message, signature),
                    Err(CryptoError::BadSignature)
                );
            }
        }
        assert!(matches!(
            super::verify(b"not a key", b"warrant", &rust).await,
            Err(CryptoError::BadKey(_))
        ));
    }

    #[wasm_bindgen_test]
    async fn a_webcrypto_rsa_key_works_in_rustcrypto() {
        let private = generate_rsa(2048).await.unwrap();
        let public = private.public();
        public.verify(b"m", &private.sign(b"m")).unwrap();
        let wrapped = public.wrap(&[5; 32]).unwrap();
        assert_eq!(&*private.unwrap_key(&wrapped).unwrap(), &[5; 32]);
    }

    #[wasm_bindgen_test]
    async fn a_webcrypto_signature_verifies_in_rustcrypto_and_a_changed_one_does_not() {
        let private = generate_rsa(2048).await.unwrap();
        let public = private.public();
        for message in [&b"a warrant"[..], b"another, signed with the kept key"] {
            let signature = sign(&private, message).await.unwrap();
            public.verify(message, &signature).unwrap();
            assert!(public.verify(b"something else", &signature).is_err());
        }
        // Another key is imported, not mistaken for the kept one.
        let other = generate_rsa(2048).await.unwrap();
        let signature = sign(&other, b"m").await.unwrap();
        other.public().verify(b"m", &signature).unwrap();
        assert!(public.verify(b"m", &signature).is_err());
    }

    #[wasm_bindgen_test]
    async fn webcrypto_and_rustcrypto_derive_the_same_key() {
        let params = KdfParams::Pbkdf2Sha256 {
            iterations: kdf::MIN_ITERATIONS,
            salt: [9; kdf::SALT_LEN],
        };
        let web = derive_key("correct horse battery staple", &params)
            .await
            .unwrap();
        let rust = kdf::derive_key("correct horse battery staple", &params).unwrap();
        assert_eq!(web, rust);
    }
}
