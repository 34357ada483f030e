//! The fellow holders a store request names (`Request::StoreBlock`'s `fellows`), from the
//! holder that stored the block to its repairer.
//!
//! An uploader asks a block's copies of several peers at once and knows whom it asked; a
//! repairer knows who answered its challenges. Named in the request, those peers are what the
//! receiver's repairer would otherwise learn by surveying the block's neighbourhood once it
//! arrived: about 200 challenge requests among the tabs busy storing a 128 MiB upload
//! (docs/PERFORMANCE.md). A name is a claim: the repairer challenges each named peer at its
//! sweeps on a block it shares, and a live peer that lacks a block it was only named for
//! loses that block, which is then checked in full; one that is gone has all its blocks
//! checked.

use std::{collections::VecDeque, sync::Mutex};

use libp2p::PeerId;

use crate::block::BlockId;

/// Stores noted and not yet taken, at most: 1,024 (about 300 KB), some 30 s of blocks arriving
/// at 34 MiB/s, far above what a tab receives between two sweeps. Beyond, a block's names are
/// dropped and it is surveyed when it arrives, as without them.
const MAX_NOTED: usize = 1024;

/// One stored block and the fellow holders its request named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The block stored.
    pub id: BlockId,
    /// The other peers asked to hold it (never this peer), each once.
    pub peers: Vec<PeerId>,
    /// The copies the store's warrant asks for: with this peer and the names making up as
    /// many (across every store of the block), nothing is left to learn by surveying it.
    pub copies: u8,
}

/// What the holder noted and the repairer has not taken yet.
#[derive(Debug, Default)]
pub struct NamedFellows {
    noted: Mutex<VecDeque<Named>>,
}

impl NamedFellows {
    /// Notes a block stored just now with the fellow holders its request named.
    pub fn note(&self, named: Named) {
        if let Ok(mut noted) = self.noted.lock() {
            if noted.len() < MAX_NOTED {
                noted.push_back(named);
            }
        }
    }

    /// Everything noted since the last call, oldest first.
    pub fn take(&self) -> Vec<Named> {
        match self.noted.lock() {
            Ok(mut noted) => noted.drain(..).collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn notes_are_taken_once_and_bounded() {
        let book = NamedFellows::default();
        let named = |n: u8| Named {
            id: BlockId::of(&[n]),
            peers: vec![PeerId::random()],
            copies: 2,
        };
        for n in 0..3 {
            book.note(named(n));
        }
        let taken = book.take();
        assert_eq!(taken.iter().map(|n| n.id).collect::<Vec<_>>(), {
            (0..3).map(|n| BlockId::of(&[n])).collect::<Vec<_>>()
        });
        assert!(book.take().is_empty(), "taken once");
        for n in 0..=MAX_NOTED {
            book.note(named(n as u8));
        }
        assert_eq!(book.take().len(), MAX_NOTED, "a full book drops the newest");
    }
}
