//! What the peers asked for one block did: the typed reason an upload could not place a block
//! or a download could not fetch one. The page shows it as one sentence; tests and the code
//! match on the variants, never on the words.

use std::fmt;

use libp2p::PeerId;

use crate::{block::BlockError, net::NetError, protocol};

/// What one peer did instead of storing or serving a block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerFailure {
    /// It said no, with its own reason (quoted: it is another peer's text).
    #[error("refused: {}", protocol::quote(.0))]
    Refused(String),
    /// It said it stored the block, but its receipt does not name it for this block and owner:
    /// a holder that could drop the block with no co-holder ever able to ask.
    #[error("stored it without a valid receipt")]
    NoReceipt,
    /// It answered with another kind of message.
    #[error("unexpected answer: {0}")]
    Unexpected(&'static str),
    /// Its copy failed the checks against the address or the file key.
    #[error("its copy is bad: {0}")]
    BadCopy(#[source] BlockError),
    /// The request failed: unreachable, cut, timed out.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// Most attempts a message names; the rest are counted. A download may ask 20 peers.
const SHOWN: usize = 4;

/// The peers asked for one block, in order, and what each did.
#[derive(Debug, Default)]
pub struct Attempts(pub Vec<(PeerId, PeerFailure)>);

impl Attempts {
    /// Notes what `peer` did.
    pub(crate) fn push(&mut self, peer: PeerId, failure: PeerFailure) {
        self.0.push((peer, failure));
    }

    /// Whether any peer was asked.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every peer asked handed over a copy that failed the checks: the data is there
    /// but does not open (damaged, or sealed under a key this session does not have).
    pub fn all_bad_copies(&self) -> bool {
        !self.0.is_empty()
            && self
                .0
                .iter()
                .all(|(_, f)| matches!(f, PeerFailure::BadCopy(_)))
    }

    /// Whether every peer asked refused (none was unreachable): the network is there, but
    /// full or unwilling.
    pub fn all_refused(&self) -> bool {
        !self.0.is_empty()
            && self
                .0
                .iter()
                .all(|(_, f)| matches!(f, PeerFailure::Refused(_)))
    }
}

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no peer to ask");
        }
        for (i, (peer, failure)) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{peer}: {failure}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, "; and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Attempts are the cause of a failed upload or download, so they are an error in their own
/// right: the `source` of [`super::FileError::NoHolder`] and [`super::FileError::Unavailable`].
impl std::error::Error for Attempts {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn names_nobody_when_nobody_was_asked() {
        let none = Attempts::default();
        assert!(none.is_empty());
        assert!(!none.all_refused());
        assert_eq!(none.to_string(), "no peer to ask");
    }

    #[test]
    fn names_the_first_few_peers_and_counts_the_rest() {
        let mut attempts = Attempts::default();
        let peers: Vec<PeerId> = (0..6).map(|_| PeerId::random()).collect();
        for peer in &peers {
            attempts.push(*peer, PeerFailure::Refused("full".into()));
        }
        let text = attempts.to_string();
        assert!(
            text.starts_with(&format!("{}: refused: \"full\"", peers[0])),
            "{text}"
        );
        assert!(text.contains(&peers[3].to_string()), "{text}");
        assert!(!text.contains(&peers[4].to_string()), "{text}");
        assert!(text.ends_with("; and 2 more"), "{text}");
        assert!(attempts.all_refused());
        attempts.push(peers[0], PeerFailure::Net(NetError::Timeout(10)));
        assert!(!attempts.all_refused());
        assert!(!attempts.all_bad_copies());
        let mut bad = Attempts::default();
        bad.push(
            peers[1],
            PeerFailure::BadCopy(BlockError::Altered(crate::block::BlockId([0; 32]))),
        );
        assert!(bad.all_bad_copies() && !bad.all_refused());
    }
}
