//! An error's message with the messages of the errors that caused it.
//!
//! Several libraries keep what actually happened in the cause: libp2p's dial errors ("Failed to
//! negotiate transport protocol(s)") and rexie's IndexedDB errors ("idb error", with the
//! browser's `QuotaExceededError` underneath). Pure.

/// `error`, then each cause, joined by ": ".
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// Native only: the browser test runner runs #[wasm_bindgen_test]s.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn names_every_cause() {
        let e = Outer(std::io::Error::other("the browser said no"));
        assert_eq!(super::error_chain(&e), "outer: the browser said no");
    }
}
