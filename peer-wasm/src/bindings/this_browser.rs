//! What only this browser knows and keeps: `localStorage` (the donation agreed to, the
//! account key last seen here) and the storage quota and persistence it grants.

use super::*;

/// Where this browser remembers that the person agreed to donate (set by `set_donation`).
pub(super) const DONATION_AGREED: &str = "jellyfish.donation-agreed";

pub(super) fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// Whether the person agreed to a donation in this browser.
pub(super) fn donation_agreed() -> bool {
    local_storage()
        .and_then(|s| s.get_item(DONATION_AGREED).ok().flatten())
        .is_some()
}

/// What the page may know of an account ([`AccountInfo`]), as this browser sees it.
pub(super) trait InThisBrowser: Sized {
    fn remembering_key(session: &Session) -> Self;
}

impl InThisBrowser for AccountInfo {
    /// [`AccountInfo::of`] a fresh log-in: remembers the account's key in this browser
    /// (`localStorage`) and says whether it changed since the last log-in here. A key that the
    /// remembered one handed over to (a password change) is no change.
    fn remembering_key(session: &Session) -> Self {
        let mut info = Self::of(session);
        let changed = Some(true);
        let Some(storage) = local_storage() else {
            return info;
        };
        let Ok(der) = session.public_key().to_der() else {
            return info;
        };
        let fingerprint = |der: &[u8]| hex::encode(crate::crypto::sha256(der));
        let current = fingerprint(&der);
        let slot = format!("jellyfish.account-key.{}", session.username());
        let previous = storage.get_item(&slot).ok().flatten();
        let _ = storage.set_item(&slot, &current);
        // Another line of hand-overs branches off this key's history: whoever kept an earlier
        // key made one of their own. Warn whatever this browser remembers.
        if session.forked() {
            info.key_changed = changed;
            return info;
        }
        let handed_over = |p: &String| {
            session
                .history()
                .iter()
                .any(|link| fingerprint(&link.previous) == *p)
        };
        if previous.is_some_and(|p| p != current && !handed_over(&p)) {
            info.key_changed = changed;
        }
        info
    }
}

/// The browser's storage quota, and whether it grants persistent storage (asked here).
pub(super) async fn storage_facts() -> (Option<f64>, bool) {
    let Some(storage) = web_sys::window().map(|w| w.navigator().storage()) else {
        return (None, false);
    };
    let quota = match storage.estimate() {
        Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .ok()
            .and_then(|e| js_sys::Reflect::get(&e, &"quota".into()).ok())
            .and_then(|q| q.as_f64()),
        Err(_) => None,
    };
    let persisted = match storage.persist() {
        Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .ok()
            .and_then(|p| p.as_bool())
            .unwrap_or(false),
        Err(_) => false,
    };
    (quota, persisted)
}
