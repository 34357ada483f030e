//! After a password change: re-sealing the index under the new keys, and moving the claims on
//! every block from the old key to the new one.

use super::*;

/// Claims moved at once: each is one small request to one holder.
pub(super) const CLAIMS_IN_FLIGHT: usize = 16;

impl<N: Network> Drive<N> {
    /// Finishes a password change for the files: re-seals the index and every file key under the
    /// session's (new) user key and points the index record, signed by the new key, at it (or
    /// carries it); the old index blob, if it was placed, is freed, and every file is marked for
    /// [`Drive::move_claims`], which the caller runs next (in the background: it asks every holder
    /// of every block). Returns whether there was anything to do (nothing when the index is already
    /// the current key's). Files' blocks stay as they are: their keys did not change.
    ///
    /// The pledges in the index were signed for the old key and holders would not count them
    /// for the new one, so the re-sealed index carries this drive's donation
    /// ([`Drive::donating`]) in their place; without one it refuses ([`FileError::NoDonation`])
    /// rather than save an index that pledges nothing (a quota of zero until the next upload).
    pub async fn finish_rotation(&self) -> Result<bool, FileError> {
        let session = &*self.session;
        let (peer, pledge) = self.pledge()?.ok_or(FileError::NoDonation)?;
        let (mut index, record) = load_index(self).await?;
        let Some(record) = record else {
            return Ok(false);
        };
        if record.owner() == &session.public_key() {
            return Ok(false);
        }
        for entry in &mut index.files {
            let key = open_file_key(session, entry).await?;
            entry.key =
                fast::seal(session.user_key(), &file_key_aad(&entry.id), key.as_bytes()).await?;
            entry.claims_behind = true;
        }
        index.donations.insert(peer, pledge);
        // Every page of a large index is sealed under the new user key too.
        index.reseal = true;
        save_index(self, &index, Some(&record)).await?;
        Ok(true)
    }

    /// Moves the claims on the blocks of files still claimed by an earlier key to the session's
    /// key, at every holder ([`Request::Claim`]), so that whoever knew the old password cannot
    /// free them with the old key. A file is marked done once every holder answered; one with a
    /// holder out of reach is tried again at the next log-in. Returns how many files were done.
    pub async fn move_claims(&self) -> Result<usize, FileError> {
        let (client, session) = (&self.client, &*self.session);
        if session.history().is_empty() {
            return Ok(0);
        }
        let (index, _) = load_index(self).await?;
        if !index.files.iter().any(|f| f.claims_behind) {
            return Ok(0);
        }
        let owner = session.public_key().to_der()?;
        let mut done = Vec::new();
        for entry in index.files.iter().filter(|f| f.claims_behind) {
            let key = open_file_key(session, entry).await?;
            let Ok(manifest) = manifest(self, entry, &key).await else {
                continue;
            };
            let asks: Vec<(BlockId, PeerId)> = manifest
                .blocks
                .iter()
                .chain(&manifest.parts)
                .chain([&entry.manifest])
                .flat_map(|b| b.holders.iter().map(move |h| (b.id, h)))
                .filter_map(|(id, holder)| Some((id, holder.parse::<PeerId>().ok()?)))
                .collect();
            let answered = futures::stream::iter(asks)
                .map(|(id, holder)| {
                    let request = Request::Claim {
                        id,
                        owner: owner.clone(),
                        signature: session.sign_statement(&protocol::claim_statement(&id)),
                        history: session.history().to_vec(),
                    };
                    with_deadline(audit::ANSWER_DEADLINE, client.request(holder, request))
                })
                .buffer_unordered(CLAIMS_IN_FLIGHT)
                .collect::<Vec<_>>()
                .await;
            // A holder that no longer has the block answers Claimed too; one out of reach, or
            // refusing, leaves the file to be tried again.
            if answered.iter().all(|a| matches!(a, Ok(Response::Claimed))) {
                done.push(entry.id);
            }
        }
        if done.is_empty() {
            return Ok(0);
        }
        // Onto the newest index: the claims took a while, and the index may have changed.
        commit_index(self, |index| {
            for entry in index.files.iter_mut().filter(|f| done.contains(&f.id)) {
                entry.claims_behind = false;
            }
        })
        .await?;
        Ok(done.len())
    }
}
