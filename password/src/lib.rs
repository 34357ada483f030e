//! How strong a password is: zxcvbn's estimate (dictionaries, keyboard patterns, dates,
//! repeats, crack times), and whether Jellyfish accepts it for an account.
//!
//! A crate of its own so that the browser gets it as a wasm module of its own: zxcvbn's
//! dictionaries and regexes are about half of what the peer's module would weigh otherwise,
//! and a tab needs them only when someone picks a password. Natively the peer links the
//! estimator directly; in the browser the peer asks this module (fetched on first use) through
//! a small script, and the page's strength meter asks it too, so the meter never promises a
//! password sign-up would refuse.

use serde::{Deserialize, Serialize};

/// Lowest zxcvbn score (0..=4) accepted: 3 is "safely unguessable" for an offline attack on a
/// slow hash, which is what a record in a public DHT faces.
pub const MIN_PASSWORD_SCORE: u8 = 3;
/// Longest password accepted (the strength estimator is slow on huge inputs).
pub const MAX_PASSWORD_LEN: usize = 256;

/// The strength estimate of a password, for the sign-up form's meter.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordStrength {
    /// 0 (guessable in seconds) to 4 (very unguessable).
    pub score: u8,
    /// Whether sign-up will accept it.
    pub acceptable: bool,
    /// What makes it weak, if anything.
    pub warning: Option<String>,
    /// How to make it stronger.
    pub suggestions: Vec<String>,
    /// How long an offline attack on a slow hash would take, in words.
    pub crack_time: String,
}

/// Estimates a password's strength, knowing the username (a password near it is weak).
#[cfg(feature = "estimator")]
pub fn password_strength(password: &str, username: &str) -> PasswordStrength {
    let truncated: String = password.chars().take(MAX_PASSWORD_LEN).collect();
    let entropy = zxcvbn::zxcvbn(&truncated, &[username]);
    let score = u8::from(entropy.score());
    let feedback = entropy.feedback();
    PasswordStrength {
        score,
        acceptable: score >= MIN_PASSWORD_SCORE && password.chars().count() <= MAX_PASSWORD_LEN,
        warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
        suggestions: feedback
            .map(|f| f.suggestions().iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        crack_time: entropy
            .crack_times()
            .offline_slow_hashing_1e4_per_second()
            .to_string(),
    }
}

/// [`password_strength`] for JavaScript: the page's meter and the peer's own check call it.
#[cfg(all(target_arch = "wasm32", feature = "estimator"))]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = password_strength)]
pub fn password_strength_js(
    password: &str,
    username: &str,
) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    serde_wasm_bindgen::to_value(&password_strength(password, username))
        .map_err(|e| wasm_bindgen::JsValue::from_str(&e.to_string()))
}

#[cfg(all(test, feature = "estimator"))]
mod tests {
    use super::*;

    #[test]
    fn common_and_username_like_passwords_are_refused_and_a_passphrase_accepted() {
        for weak in ["alice1234", "password123", "qwertyuiop", "aliceALICE"] {
            let strength = password_strength(weak, "alice");
            assert!(!strength.acceptable, "{weak}: {strength:?}");
            assert!(!strength.suggestions.is_empty() || strength.warning.is_some());
        }
        let strong = password_strength("correct horse battery staple violet", "alice");
        assert!(strong.acceptable, "{strong:?}");
        assert!(strong.score >= MIN_PASSWORD_SCORE);
        let long = "correct horse battery staple violet ".repeat(10);
        assert!(
            !password_strength(&long, "alice").acceptable,
            "over 256 characters"
        );
    }
}
