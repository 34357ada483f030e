//! Storage audits: a challenge to a holder to prove it still holds a block, checked against the
//! block's address alone ([`crate::proof`]). The owner audits the holders of its files
//! ([`crate::files::Drive::audit`]); a holder that fails or does not answer is counted as gone.

use libp2p::PeerId;
use serde::Serialize;

use crate::{
    block::BlockId,
    net::{Client, Network},
    proof,
    protocol::{self, Request, Response},
};

/// How long a holder has to answer a challenge request: a proof is one 4 KiB leaf read from
/// its block (the whole block only for blocks stored without their leaf hashes), so even 64
/// of them take one round trip and well under a second of reads; 10 s also covers a dial
/// through the relay and a holder's queue of requests.
pub const ANSWER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// What one challenge found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The holder proved it holds the block.
    Held,
    /// The holder said it does not hold the block (or refused the challenge).
    Refused(String),
    /// The holder answered with a proof that does not lead to the address: it lies.
    Invalid(String),
    /// The holder could not be reached or did not answer in time.
    Unanswered(String),
}

/// Challenges `holder` for a random leaf of block `id`.
pub async fn challenge<N: Network>(client: &N, holder: PeerId, id: BlockId) -> Outcome {
    let mut outcomes = challenge_each(client, holder, &[id]).await;
    outcomes
        .pop()
        .unwrap_or_else(|| Outcome::Unanswered("no challenge was sent".into()))
}

/// Challenges `holder` for a random leaf of each of `ids` in one request
/// ([`Request::ProveEach`], at most [`protocol::MAX_CHALLENGES`] at a time: more go in
/// further requests, sent together); an outcome per block, in order. A holder that does not
/// answer is unanswered for all of them, one that refuses the request refused for all, and an
/// answer with the wrong number of proofs invalid for all.
pub async fn challenge_each<N: Network>(
    client: &N,
    holder: PeerId,
    ids: &[BlockId],
) -> Vec<Outcome> {
    let asks = ids.chunks(protocol::MAX_CHALLENGES).map(|ids| async move {
        let challenges: Vec<(BlockId, u32)> = ids
            .iter()
            .map(|id| (*id, u32::from_le_bytes(crate::crypto::random_bytes())))
            .collect();
        let ask = client.request(
            holder,
            Request::ProveEach {
                challenges: challenges.clone(),
            },
        );
        let deadline = futures_timer::Delay::new(ANSWER_DEADLINE);
        let all = |outcome: Outcome| vec![outcome; challenges.len()];
        let answer = match futures::future::select(Box::pin(ask), deadline).await {
            futures::future::Either::Left((answer, _)) => answer,
            futures::future::Either::Right(_) => {
                let late = format!("no answer in {} s", ANSWER_DEADLINE.as_secs());
                return all(Outcome::Unanswered(late));
            }
        };
        match answer {
            Ok(Response::Proofs { answers }) if answers.len() == challenges.len() => challenges
                .iter()
                .zip(answers)
                .map(|((id, challenge), answer)| match answer {
                    protocol::Proved::Proof(proof) => {
                        match proof::verify(&id.0, *challenge, &proof) {
                            Ok(()) => Outcome::Held,
                            Err(e) => Outcome::Invalid(e.to_string()),
                        }
                    }
                    protocol::Proved::Refused(reason) => {
                        Outcome::Refused(format!("refused: {}", protocol::quote(&reason)))
                    }
                })
                .collect(),
            Ok(Response::Proofs { answers }) => all(Outcome::Invalid(format!(
                "{} proofs for {} challenges",
                answers.len(),
                challenges.len()
            ))),
            // A refusal of the whole request is about the request, not the blocks: the network
            // layer refuses when busy ("busy; try another peer"). Taken as no answer, so a busy
            // holder is not counted as lacking a sweep's worth of blocks (and repaired for).
            Ok(Response::Refused { reason }) => all(Outcome::Unanswered(format!(
                "refused the request: {}",
                protocol::quote(&reason)
            ))),
            Ok(other) => all(Outcome::Invalid(format!(
                "unexpected answer: {}",
                other.kind()
            ))),
            Err(e) => all(Outcome::Unanswered(e.to_string())),
        }
    });
    futures::future::join_all(asks).await.concat()
}

/// Audits a peer whose pledge a holder counts: asks what it holds and challenges every sampled
/// block, all in one request. Silent if it does not answer (no browser behind the key, or
/// offline); a failed challenge counts before silence.
pub async fn audit_donor(client: &Client, peer: PeerId) -> crate::donor_audit::Outcome {
    use crate::donor_audit::Outcome as Donor;
    let ask = client.request(peer, Request::Inventory);
    let deadline = futures_timer::Delay::new(ANSWER_DEADLINE);
    let sample = match futures::future::select(Box::pin(ask), deadline).await {
        futures::future::Either::Left((Ok(Response::Inventory { sample, .. }), _)) => sample,
        _ => return Donor::Silent,
    };
    let sample: Vec<BlockId> = sample
        .into_iter()
        .take(protocol::MAX_INVENTORY_SAMPLE)
        .collect();
    let outcomes = challenge_each(client, peer, &sample).await;
    // A block freed between the inventory and the challenge (placed index blobs are freed at
    // every save) is no lie: a refusal of one block passes.
    if outcomes.iter().any(|o| matches!(o, Outcome::Invalid(_))) {
        Donor::FailedChallenge
    } else if outcomes.iter().any(|o| matches!(o, Outcome::Unanswered(_))) {
        Donor::Silent
    } else {
        Donor::Answered
    }
}

/// A holder that did not prove it holds a block of a file.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[cfg_attr(all(test, not(target_arch = "wasm32")), ts(rename = "AuditFailure"))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    /// The file's name.
    pub file: String,
    /// The holder's peer id.
    pub peer: String,
    /// Whether it answered (with no valid proof) or not at all.
    pub answered: bool,
    /// What went wrong.
    pub reason: String,
}

/// What an audit of the user's files found.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[cfg_attr(all(test, not(target_arch = "wasm32")), ts(rename = "AuditReport"))]
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Blocks audited.
    pub blocks: usize,
    /// Challenges sent (one per holder of each audited block).
    pub challenges: usize,
    /// Challenges answered with a valid proof.
    pub held: usize,
    /// The distinct holders challenged (peer ids).
    pub holders: Vec<String>,
    /// The others.
    pub failures: Vec<Failure>,
    /// Files with fewer live copies than an upload asks for.
    pub files_degraded: usize,
    /// Files with one live copy or none: lost if that peer leaves.
    pub files_at_risk: usize,
    /// Whether the copies counted here are in the index now (the page's "Copies" column).
    /// False when they differed and saving the index failed: the counts above still hold, and
    /// the next audit saves them.
    pub counts_saved: bool,
}
