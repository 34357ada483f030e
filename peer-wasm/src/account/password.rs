//! Whether a password is strong enough for an account, on each platform's copy of the
//! estimator ([`jellyfish_password`]): natively linked in; in the browser its own wasm module,
//! which `js/password.js` fetches the first time a password is checked (zxcvbn's dictionaries
//! and regexes would otherwise be about half of this module, downloaded by every tab).

use super::AccountError;

pub use jellyfish_password::{PasswordStrength, MAX_PASSWORD_LEN, MIN_PASSWORD_SCORE};

/// Estimates a password's strength, knowing the username (a password near it is weak).
#[cfg(not(target_arch = "wasm32"))]
pub async fn password_strength(
    password: &str,
    username: &str,
) -> Result<PasswordStrength, AccountError> {
    Ok(jellyfish_password::password_strength(password, username))
}

/// Estimates a password's strength, knowing the username (a password near it is weak): asks
/// the estimator's module, fetching it first if no one has yet.
#[cfg(target_arch = "wasm32")]
pub async fn password_strength(
    password: &str,
    username: &str,
) -> Result<PasswordStrength, AccountError> {
    let failed = |e: String| AccountError::PasswordCheck(e);
    let value = estimator::password_strength(password, username)
        .await
        .map_err(|e| {
            // A script's error is an Error object; its message is what says what went wrong.
            let message = js_sys::Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string());
            failed(message.unwrap_or_else(|| format!("{e:?}")))
        })?;
    serde_wasm_bindgen::from_value(value).map_err(|e| failed(e.to_string()))
}

#[cfg(target_arch = "wasm32")]
mod estimator {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(module = "/js/password.js")]
    extern "C" {
        #[wasm_bindgen(catch)]
        pub(super) async fn password_strength(
            password: &str,
            username: &str,
        ) -> Result<JsValue, JsValue>;
    }
}

/// Refuses a password sign-up or a password change must not accept, with the estimator's
/// warning and advice.
pub(super) async fn check_password(password: &str, username: &str) -> Result<(), AccountError> {
    let strength = password_strength(password, username).await?;
    if strength.acceptable {
        return Ok(());
    }
    let mut advice = strength.suggestions.join(" ");
    if advice.is_empty() {
        advice = "Use a longer passphrase of several uncommon words.".into();
    }
    Err(AccountError::WeakPassword {
        warning: strength
            .warning
            .map(|w| format!(": {w}"))
            .unwrap_or_default(),
        advice: format!(
            "{advice} (An attacker could guess it in {}.)",
            strength.crack_time
        ),
    })
}
