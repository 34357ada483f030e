//! Sharing by link: making a link for a file, downloading the file a link names with no
//! account, and revoking a file's links by re-keying it (the format is in `link.rs`).
//!
//! Revoking re-seals every block under a fresh key and file id, places the new blocks, points
//! the index at them, then frees the old blocks everywhere (listed holders and the peers
//! nearest each address, as a delete does): a link's key opens only the old blocks, so once
//! they are gone the link is dead, for its holder and for anyone it was passed on to. What
//! revoking cannot undo: a copy someone already downloaded, and old blocks on a peer that was
//! unreachable when they were freed (dropped when no owner renews them,
//! [`crate::store`]'s keeping time).

use super::*;

impl<N: Network> Drive<N> {
    /// A share link for file `id`, working until `expires_ms` (milliseconds since the Unix
    /// epoch; `None`: until revoked). The index notes it, so the file's row says it is shared
    /// and [`Drive::revoke_expired_links`] can end it.
    pub async fn share_link(
        &self,
        id: &str,
        expires_ms: Option<u64>,
    ) -> Result<ShareLink, FileError> {
        if let Some(expires_ms) = expires_ms.filter(|&at| at <= now_ms()) {
            return Err(LinkError::Expired { expires_ms }.into());
        }
        let (index, _, at, key) = entry_and_key(self, id).await?;
        let entry = &index.files[at];
        // The link's reader cannot open the index: a manifest kept there is placed first.
        let (placed, receipts) = self
            .place_inline_manifests(&index, |f| f.id == entry.id)
            .await?;
        let link = ShareLink {
            file: entry.id,
            key: *key.as_bytes(),
            manifest: entry.manifest.id,
            name: entry.name.clone(),
            size: entry.size,
            expires_ms,
        };
        let note = LinkNote {
            created_ms: now_ms(),
            expires_ms,
        };
        let (file, manifest) = (entry.id, entry.manifest.id);
        let (mut noted, mut unnoted) = (false, Vec::new());
        // A failed commit may yet have landed unheard: what was placed is not freed then (a
        // few hundred bytes on 5 peers, dropped once no one renews them).
        commit_index(self, |index| {
            unnoted = note_placed(index, &placed);
            // The same file under the same key: not deleted or re-keyed meanwhile.
            let entry = index
                .files
                .iter_mut()
                .find(|f| f.id == file && f.manifest.id == manifest);
            noted = entry.map(|e| e.links.push(note.clone())).is_some();
        })
        .await?;
        free_all(self, &unnoted).await;
        witness(&self.client, owner_hash(&self.session)?, receipts);
        if !noted {
            return Err(FileError::NoSuchFile);
        }
        Ok(link)
    }

    /// Places the manifests kept inline ([`Settings::inline_manifest_bytes`]) of the files in
    /// `index` that `shared` picks: a link or a letter names a manifest to someone who cannot
    /// open the index. Returns them with their holders, for the index to note
    /// ([`note_placed`]), and the holders' receipts (for [`witness`] once noted); none when
    /// every such manifest is placed already.
    pub(super) async fn place_inline_manifests(
        &self,
        index: &FileIndex,
        shared: impl Fn(&FileEntry) -> bool,
    ) -> Result<(Vec<BlockRef>, Vec<Placed>), FileError> {
        let pledges = index.pledges();
        let (mut placed, mut receipts) = (Vec::new(), Vec::new());
        for entry in index
            .files
            .iter()
            .filter(|f| shared(f) && !f.manifest_placed())
        {
            match place_inline_manifest(self, entry, &pledges).await {
                Ok(Some((root, receipt))) => {
                    placed.push(root);
                    receipts.push(receipt);
                }
                Ok(None) => {}
                Err(e) => {
                    free_all(self, &placed).await;
                    return Err(e);
                }
            }
        }
        Ok((placed, receipts))
    }

    /// Revokes every share link of file `id` by re-keying it (see the module's
    /// documentation): the file keeps its name and upload time, gets a new id, and its old
    /// blocks are freed. `progress` hears bytes re-sealed after each block and may break to
    /// cancel (then nothing changes). Returns the file as it is now.
    pub async fn revoke_links(
        &self,
        id: &str,
        progress: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<FileInfo, FileError> {
        let (file, told) = self.rekey_and_tell(id, progress).await?;
        told?;
        Ok(file)
    }

    /// Re-keys file `id` keeping every user it is shared with, and sends them its new key.
    /// Returns the file as it is now and the first letter that did not go, if any (each is
    /// logged; the user is still in the file's row, so the next log-in's
    /// [`Drive::send_all_letters`] sends it again). [`Drive::revoke_links`] and
    /// [`Drive::revoke_expired_links`] share it, so that the two cannot drift apart.
    async fn rekey_and_tell(
        &self,
        id: &str,
        progress: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<(FileInfo, Result<(), FileError>), FileError> {
        let (file, users, _) = self.rekey(id, |_| true, progress).await?;
        let told = first_error(self.send_letters(users.iter().map(String::as_str)).await);
        Ok((file, told))
    }

    /// Re-keys file `id` (see the module's documentation), keeping it shared with the users
    /// `keep` says yes to. Returns the file as it is now, the users it was shared with, and
    /// those dropped, as the index now owes them a letter.
    pub(super) async fn rekey(
        &self,
        id: &str,
        keep: impl Fn(&str) -> bool,
        progress: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<(FileInfo, Vec<String>, Owed), FileError> {
        let (mut index, _, at, old_key) = entry_and_key(self, id).await?;
        let old = index.files[at].clone();
        let old_blocks = manifest(self, &old, &old_key).await?;
        let pledge = self.pledge()?;
        if let Some((peer, pledge)) = &pledge {
            index.donations.insert(peer.clone(), pledge.clone());
        }
        let pledges = index.pledges();
        // A new id, not only a new key: a tab closed mid-way leaves a journal entry for a file
        // the index does not name, and the next log-in frees its blocks.
        let file = FileId::random();
        let key = SymmetricKey::random();
        // The old blocks are fetched as a download fetches them, `pipeline` at once, while the
        // re-sealed ones are placed.
        let (client, settings, old_file) = (&self.client, &self.settings, &old.id);
        let old_key = &old_key;
        let fetches = futures::stream::iter(old_blocks.blocks.iter().zip(0u64..))
            .map(|(block, position)| async move {
                let fetched = fetch(client, settings, old_key, old_file, position, block).await;
                (position, fetched)
            })
            .buffered(settings.pipeline.max(1));
        let source = Refetch {
            size: old.size,
            name: &old.name,
            blocks: Box::pin(fetches),
            next: 0,
        };
        let (stored, reloaded) = self
            .store_file(
                &Pledged::ready(pledges),
                &file,
                &key,
                source,
                progress,
                load_index(self),
            )
            .await?;
        let entry = FileEntry {
            id: file,
            name: old.name.clone(),
            size: stored.size,
            created_ms: old.created_ms,
            key: fast::seal(
                self.session.user_key(),
                &file_key_aad(&file),
                key.as_bytes(),
            )
            .await?,
            manifest: stored.manifest.clone(),
            manifest_inline: stored.manifest_inline.clone(),
            copies: stored.copies,
            claims_behind: false,
            links: Vec::new(),
            shared_with: Vec::new(),
        };
        // The entry replaced as the newest index has it: another browser may have shared the
        // file meanwhile, placing its manifest, or with another user (who keeps it, with the
        // new key: the users come from the newest entry, not the one loaded at the start).
        let (mut replaced, mut owed) = (None, Owed::new());
        let mut entry = entry;
        let committed = commit_loaded(self, reloaded, |index| {
            if let Some((peer, pledge)) = &pledge {
                index.donations.insert(peer.clone(), pledge.clone());
            }
            let at = index.files.iter().position(|f| f.id == old.id);
            replaced = at.map(|at| {
                let newest = index.files[at].shared_with.clone();
                let (kept, dropped): (Vec<String>, Vec<String>) =
                    newest.into_iter().partition(|n| keep(n));
                entry.shared_with = kept;
                owed = index.owe(&dropped);
                std::mem::replace(&mut index.files[at], entry.clone())
            });
        })
        .await;
        // A failed commit leaves the journal entry: the next log-in frees the new blocks.
        committed?;
        let Some(old) = replaced else {
            // Deleted in another browser meanwhile: the new copies go too.
            free_all(self, &stored.blocks).await;
            free_all(self, &stored.parts).await;
            if stored.manifest_inline.is_none() {
                free(self, &stored.manifest).await;
            }
            self.noted_done(&file).await;
            return Err(FileError::NoSuchFile);
        };
        self.noted_done(&file).await;
        free_all(self, &old_blocks.blocks).await;
        free_all(self, &old_blocks.parts).await;
        if old.manifest_placed() {
            free(self, &old.manifest).await;
        }
        witness(&self.client, owner_hash(&self.session)?, stored.receipts);
        tracing::info!(name = %old.name, "the file was re-keyed: its links and shares revoked");
        Ok((info(&entry), old.shared_with, owed))
    }

    /// Revokes the links of every file whose links have all expired: run at log-in, so an
    /// expired link stops working for everyone once one of the owner's browsers is online
    /// after its expiry (a page opening it refuses it at once). A file with a link still
    /// valid keeps its key: revoking re-keys, which would end that link too. Returns how many
    /// files were re-keyed. A file whose blocks are out of reach ([`FileError::Unavailable`])
    /// does not keep the next files' expired links alive at every log-in: the round goes on,
    /// and returns that failure once every file was tried (the caller refreshes its list
    /// either way). Nor does a letter with a file's new key that does not go (logged): its
    /// user still has the file in the index, and the next log-in sends their letter again
    /// ([`Drive::send_all_letters`]). A file deleted meanwhile (in another browser) is passed
    /// over. Any other failure (the index or the network) ends the round at once: the next
    /// file would wait for the same network.
    pub async fn revoke_expired_links(&self) -> Result<usize, FileError> {
        let (index, _) = load_index(self).await?;
        let now = now_ms();
        let expired = index
            .files
            .iter()
            .filter(|entry| !entry.links.is_empty() && entry.links.iter().all(|l| l.expired(now)));
        let (mut revoked, mut failed) = (0, None);
        for entry in expired {
            match self
                .rekey_and_tell(&entry.id.to_hex(), |_| ControlFlow::Continue(()))
                .await
            {
                // A letter that did not go was logged, and goes again at the next log-in.
                Ok(_) => revoked += 1,
                Err(FileError::NoSuchFile) => {}
                Err(e @ FileError::Unavailable { .. }) => {
                    tracing::warn!(name = %entry.name, "its expired links are not revoked: {e}");
                    failed.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        failed.map_or(Ok(revoked), Err)
    }
}

/// Downloads the file `link` names, with no account (any tab may, logged in or not): the
/// manifest from the peers nearest its address, then the blocks as [`Drive::download`]
/// fetches them, every one checked against its address and opened with the link's key.
/// Refuses an expired link before asking anyone. When every peer asked for the manifest said
/// it does not hold it, the link is dead ([`FileError::LinkGone`]); when some could not be
/// reached, it may only be out of reach ([`FileError::Unavailable`]): never "gone" from
/// silence.
pub async fn download_link<N: Network>(
    client: &N,
    settings: &Settings,
    link: &ShareLink,
    sink: impl FnMut(Vec<u8>) -> ControlFlow<()>,
) -> Result<(), FileError> {
    link.check_expiry(now_ms())?;
    let key = link.key();
    let root = BlockRef {
        id: link.manifest,
        holders: Vec::new(),
    };
    let (file, name) = (&link.file, &link.name);
    let blocks = load_blocks(client, settings, &key, file, name, &root, None)
        .await
        .map_err(|e| match e {
            FileError::Unavailable {
                index: META_POSITION,
                attempts,
                ..
            } if attempts.all_refused() => FileError::LinkGone(attempts),
            other => other,
        })?;
    fetch_all(client, settings, &key, file, name, &blocks.blocks, sink).await
}

/// A file's own blocks as the source of its re-sealing: `blocks` fetches and opens them in
/// order, and each read takes the next ([`place_blocks`] reads one whole block at a time, in
/// order).
struct Refetch<'a, S> {
    size: u64,
    name: &'a str,
    blocks: S,
    /// The offset the next read must ask for.
    next: u64,
}

impl<S> Source for Refetch<'_, S>
where
    S: futures::Stream<Item = (u64, Result<Vec<u8>, Attempts>)> + Unpin,
{
    fn size(&self) -> u64 {
        self.size
    }

    async fn read(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, FileError> {
        if offset != self.next || len != BLOCK_SIZE {
            return Err(FileError::Read(format!(
                "a re-sealing reads whole blocks in order, not {len} bytes at {offset}"
            )));
        }
        match self.blocks.next().await {
            None => Ok(Vec::new()),
            Some((_, Ok(plain))) => {
                self.next += plain.len() as u64;
                Ok(plain)
            }
            Some((index, Err(attempts))) => Err(FileError::Unavailable {
                name: self.name.to_owned(),
                index,
                attempts,
            }),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::{collections::BTreeSet, future::Future, time::Duration};

    use super::super::fake::{
        download, drive, drive_of, guest_reads, pattern, same_user_elsewhere, Conduct, FailedPut,
        FakeNet, MIB,
    };
    use super::*;

    /// What a guest with `link` (and no account) gets.
    async fn open(net: &FakeNet, link: &ShareLink) -> Result<Vec<u8>, FileError> {
        guest_reads(net, link).await
    }

    async fn upload(files: &Drive<FakeNet>, name: &str, bytes: &[u8]) -> FileInfo {
        let report = files.upload(name, bytes, |_| ControlFlow::Continue(()));
        report.await.unwrap().file
    }

    #[tokio::test]
    async fn a_link_opens_the_file_bit_exact_with_no_account_until_the_owner_revokes_it() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let bytes = pattern((2 * MIB + 77) as usize, 5);
        let file = upload(&files, "thesis.pdf", &bytes).await;
        files.frees_done().await;
        let held = net.blocks_held().await.iter().sum::<u64>();

        let link = files.share_link(&file.id, None).await.unwrap();
        // What a guest's page reads from the URL, not the value made here.
        let link = ShareLink::from_token(&format!("https://x/#share={}", link.to_token())).unwrap();
        assert_eq!(
            (link.name.as_str(), link.size),
            ("thesis.pdf", bytes.len() as u64)
        );
        assert_eq!(open(&net, &link).await.unwrap(), bytes);
        let listed = files.list().await.unwrap();
        assert_eq!((listed[0].links, listed[0].expired_links), (1, 0));

        let now = files
            .revoke_links(&file.id, |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert_ne!(now.id, file.id, "a new id");
        assert_eq!(
            (now.name.as_str(), now.size, now.created_ms),
            ("thesis.pdf", file.size, file.created_ms)
        );
        assert_eq!((now.links, now.copies), (0, 3));
        // Every peer asked says the manifest is not there: gone, from peers that were heard.
        let gone = open(&net, &link).await;
        assert!(matches!(gone, Err(FileError::LinkGone(_))), "{gone:?}");
        assert_eq!(gone.unwrap_err().code(), "link_gone");
        // The owner reads it as before, under its new id; the old copies were all freed.
        assert_eq!(download(&files, &now.id).await.unwrap(), bytes);
        assert!(matches!(
            download(&files, &file.id).await,
            Err(FileError::NoSuchFile)
        ));
        assert_eq!(files.list().await.unwrap().len(), 1);
        files.frees_done().await;
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), held);
        // A new link works again.
        let again = files.share_link(&now.id, None).await.unwrap();
        assert_eq!(open(&net, &again).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_link_never_says_gone_from_silence() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let files = drive(&net).await;
        let file = upload(&files, "notes.txt", &pattern(1000, 1)).await;
        let link = files.share_link(&file.id, None).await.unwrap();
        net.set_all(Conduct::Gone);
        let unreachable = open(&net, &link).await;
        assert!(
            matches!(unreachable, Err(FileError::Unavailable { .. })),
            "{unreachable:?}"
        );
    }

    #[tokio::test]
    async fn an_altered_link_opens_nothing_and_never_another_file() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let files = drive(&net).await;
        let mine = upload(&files, "mine.txt", &pattern(3000, 1)).await;
        let other = upload(&files, "other.txt", &pattern(3000, 2)).await;
        let link = files.share_link(&mine.id, None).await.unwrap();
        let others = files.share_link(&other.id, None).await.unwrap();
        // The key of one file with the address of another: its copies do not open.
        let swapped = ShareLink {
            manifest: others.manifest,
            ..link.clone()
        };
        let refused = open(&net, &swapped).await;
        assert!(
            matches!(&refused, Err(FileError::Unavailable { attempts, .. }) if attempts.all_bad_copies()),
            "{refused:?}"
        );
        let mut key = link.key;
        key[0] ^= 1;
        let rekeyed = ShareLink {
            key,
            ..link.clone()
        };
        assert!(open(&net, &rekeyed).await.is_err());
        // A renamed link still opens only its own file.
        let renamed = ShareLink {
            name: "other.txt".into(),
            ..link.clone()
        };
        assert_eq!(open(&net, &renamed).await.unwrap(), pattern(3000, 1));
    }

    #[tokio::test]
    async fn an_expired_link_is_refused_before_any_peer_is_asked_and_revoked_at_the_next_log_in() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let files = drive(&net).await;
        let bytes = pattern(5000, 3);
        let file = upload(&files, "old.txt", &bytes).await;
        let past = files.share_link(&file.id, Some(now_ms() - 1)).await;
        assert!(
            matches!(past, Err(FileError::Link(LinkError::Expired { .. }))),
            "{past:?}"
        );

        let link = files
            .share_link(&file.id, Some(now_ms() + 150))
            .await
            .unwrap();
        assert_eq!(open(&net, &link).await.unwrap(), bytes);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let expired = open(&net, &link).await;
        assert_eq!(expired.unwrap_err().code(), "link_expired");
        assert_eq!(files.list().await.unwrap()[0].expired_links, 1);
        // Someone strips the expiry from the link: it still opens, until the owner is back.
        let stripped = ShareLink {
            expires_ms: None,
            ..link.clone()
        };
        assert_eq!(open(&net, &stripped).await.unwrap(), bytes);
        assert_eq!(files.revoke_expired_links().await.unwrap(), 1);
        assert!(matches!(
            open(&net, &stripped).await,
            Err(FileError::LinkGone(_))
        ));
        assert_eq!(files.revoke_expired_links().await.unwrap(), 0);
        let listed = files.list().await.unwrap();
        assert_eq!((listed[0].links, listed[0].expired_links), (0, 0));
        assert_eq!(download(&files, &listed[0].id).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn expired_links_are_revoked_past_a_lost_letter_and_a_file_out_of_reach() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let (alice, bob) = (drive(&net).await, drive_of(&net, "bob").await);
        let held = || async {
            let mut all = BTreeSet::new();
            for peer in net.live() {
                all.extend(net.held_by(peer).await);
            }
            all
        };
        // shared.txt is shared with Bob, and the letter with its new key will be lost;
        // unreachable.txt's block is gone from every holder, so it cannot be re-keyed. The
        // round once stopped at either, and every file after it kept its expired links.
        let mut stripped = Vec::new();
        for (i, name) in ["shared.txt", "unreachable.txt", "plain.txt"]
            .into_iter()
            .enumerate()
        {
            let before = held().await;
            let file = upload(&alice, name, &pattern(4000, i as u8)).await;
            let blocks: Vec<_> = held().await.difference(&before).copied().collect();
            // One data block (its manifest rides in the index entry; the index in its record).
            assert_eq!(blocks.len(), 1, "{name}");
            if name == "shared.txt" {
                alice.share_with(&file.id, "bob").await.unwrap();
            }
            let link = alice
                .share_link(&file.id, Some(now_ms() + 100))
                .await
                .unwrap();
            if name == "unreachable.txt" {
                for peer in net.live() {
                    for id in &blocks {
                        net.store(peer).evict(id).await.unwrap();
                    }
                }
            }
            stripped.push(ShareLink {
                expires_ms: None,
                ..link
            });
        }
        let token = |given: Vec<SharedFile>| given[0].token.clone();
        let old_token = token(bob.shared_with_me().await.unwrap().files);
        tokio::time::sleep(Duration::from_millis(150)).await;
        net.lose_letters(1);
        let unreachable = |round: &Result<usize, FileError>| matches!(round, Err(FileError::Unavailable { name, .. }) if name == "unreachable.txt");
        let round = alice.revoke_expired_links().await;
        assert!(unreachable(&round), "{round:?}");
        for at in [0, 2] {
            let opened = open(&net, &stripped[at]).await;
            assert!(
                matches!(opened, Err(FileError::LinkGone(_))),
                "{at}: {opened:?}"
            );
        }
        // Bob's letter was lost: what he holds opens nothing until the next log-in's letters.
        assert_eq!(token(bob.shared_with_me().await.unwrap().files), old_token);
        let old = open(&net, &ShareLink::from_token(&old_token).unwrap()).await;
        assert!(matches!(old, Err(FileError::LinkGone(_))), "{old:?}");
        alice.send_all_letters().await.unwrap();
        let new_token = token(bob.shared_with_me().await.unwrap().files);
        let link = ShareLink::from_token(&new_token).unwrap();
        assert_eq!(open(&net, &link).await.unwrap(), pattern(4000, 0));
        // The next round has only the unreachable file left, and still says so.
        let round = alice.revoke_expired_links().await;
        assert!(unreachable(&round), "{round:?}");
        let rows = alice.list().await.unwrap();
        let expired: Vec<_> = rows.iter().filter(|r| r.expired_links > 0).collect();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].name, "unreachable.txt");
    }

    #[tokio::test]
    async fn a_file_with_a_link_still_valid_keeps_its_key_when_another_expires() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let files = drive(&net).await;
        let file = upload(&files, "both.txt", &pattern(100, 3)).await;
        let short = files
            .share_link(&file.id, Some(now_ms() + 100))
            .await
            .unwrap();
        let forever = files.share_link(&file.id, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(files.revoke_expired_links().await.unwrap(), 0);
        assert!(open(&net, &forever).await.is_ok());
        assert_eq!(open(&net, &short).await.unwrap_err().code(), "link_expired");
    }

    #[tokio::test]
    async fn only_the_owner_makes_or_revokes_links_and_unknown_files_are_named() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let alice = drive(&net).await;
        let file = upload(&alice, "alices.txt", &pattern(100, 3)).await;
        let mallory = drive_of(&net, "mallory").await;
        let mine = mallory.share_link(&file.id, None).await;
        assert!(matches!(mine, Err(FileError::NoSuchFile)), "{mine:?}");
        let revoked = mallory
            .revoke_links(&file.id, |_| ControlFlow::Continue(()))
            .await;
        assert!(matches!(revoked, Err(FileError::NoSuchFile)), "{revoked:?}");
        assert!(matches!(
            alice.share_link("nope", None).await,
            Err(FileError::NoSuchFile)
        ));
    }

    #[tokio::test]
    async fn a_revocation_fetches_the_old_blocks_as_many_at_once_as_the_pipeline_holds() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let bytes = pattern((9 * MIB + 5) as usize, 4);
        let file = upload(&files, "film.mkv", &bytes).await;
        net.set_all(Conduct::Slow(Duration::from_millis(20)));
        let now = files
            .revoke_links(&file.id, |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert_eq!(net.peak_fetching(), files.settings().pipeline);
        assert_eq!(download(&files, &now.id).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_cancelled_revocation_changes_nothing_and_frees_what_it_placed() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let bytes = pattern((3 * MIB) as usize, 9);
        let file = upload(&files, "big.bin", &bytes).await;
        let link = files.share_link(&file.id, None).await.unwrap();
        files.frees_done().await;
        let held = net.blocks_held().await.iter().sum::<u64>();
        let cancelled = files
            .revoke_links(&file.id, |_| ControlFlow::Break(()))
            .await;
        assert!(
            matches!(cancelled, Err(FileError::Cancelled)),
            "{cancelled:?}"
        );
        files.frees_done().await;
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), held);
        assert_eq!(open(&net, &link).await.unwrap(), bytes);
        assert_eq!(files.list().await.unwrap()[0].id, file.id);
    }

    #[tokio::test]
    async fn a_link_whose_index_change_landed_unheard_is_handed_over_and_a_lost_one_is_not() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let files = drive(&net).await;
        let held = net.blocks_held().await.iter().sum::<u64>();
        let bytes = pattern(5_000, 3);
        let file = upload(&files, "plan.txt", &bytes).await;

        // The index change reaches no one: the link is refused, the row counts none, and
        // nothing is noted that no one was given.
        net.fail_puts(&[FailedPut::Lost]);
        let lost = files.share_link(&file.id, None).await;
        assert!(matches!(lost, Err(FileError::Net(_))), "{lost:?}");
        assert_eq!(files.list().await.unwrap()[0].links, 0);

        // It lands, but every answer is lost: the link is handed over, works, and is counted.
        net.fail_puts(&[FailedPut::LandsUnheard]);
        let link = files.share_link(&file.id, None).await.unwrap();
        assert_eq!(open(&net, &link).await.unwrap(), bytes);
        assert_eq!(files.list().await.unwrap()[0].links, 1);

        // Revoking ends it; deleting the file then frees every copy, the manifest the lost
        // attempt placed too (the next attempt placed the same sealed bytes, so its address).
        let now = files
            .revoke_links(&file.id, |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert!(matches!(
            open(&net, &link).await,
            Err(FileError::LinkGone(_))
        ));
        files.delete(&now.id).await.unwrap();
        files.frees_done().await;
        assert_eq!(net.blocks_held().await.iter().sum::<u64>(), held);
    }

    /// When the other browser's operation starts against this one's link, in ms (negative:
    /// the link starts later), from the link done first to the other done first. The ends
    /// (half a second) settle each order whatever the machine's load; in the middle the steps
    /// interleave (each holder answers after 1 ms).
    const LAGS: [i64; 13] = [-500, -80, -40, -20, -10, -5, 0, 1, 2, 5, 10, 40, 500];

    /// `first` and `second`, one started `lag` ms after the other (see [`LAGS`]).
    async fn raced<A: Future, B: Future>(lag: i64, first: A, second: B) -> (A::Output, B::Output) {
        let after = |ms: i64| tokio::time::sleep(Duration::from_millis(ms.max(0) as u64));
        futures::join!(
            async {
                after(-lag).await;
                first.await
            },
            async {
                after(lag).await;
                second.await
            }
        )
    }

    /// Blocks held on every peer together, once `drives`' frees are done.
    async fn settled(net: &FakeNet, drives: &[&Drive<FakeNet>]) -> u64 {
        for drive in drives {
            drive.frees_done().await;
        }
        net.blocks_held().await.iter().sum()
    }

    /// A network whose holders answer after 1 ms, one user's browser there, the same user in
    /// another browser (with its own view of the index), and the blocks held before either
    /// did anything.
    async fn two_browsers() -> (FakeNet, Drive<FakeNet>, Drive<FakeNet>, u64) {
        let net = FakeNet::new(6, 64 * MIB).await;
        net.set_all(Conduct::Slow(Duration::from_millis(1)));
        let here = drive(&net).await;
        let there = same_user_elsewhere(&here);
        let held = settled(&net, &[&here, &there]).await;
        (net, here, there, held)
    }

    /// [`two_browsers`] and another user, Bob, with the blocks held before anyone did anything.
    async fn two_browsers_and_bob() -> (FakeNet, Drive<FakeNet>, Drive<FakeNet>, Drive<FakeNet>, u64)
    {
        let (net, here, there, _) = two_browsers().await;
        let bob = drive_of(&net, "bob").await;
        let held = settled(&net, &[&here, &there, &bob]).await;
        (net, here, there, bob, held)
    }

    /// Asserts a round (`round`, `lag`) left no block behind: every peer holds `held` blocks
    /// together once `drives`' frees are done.
    async fn nothing_left(
        net: &FakeNet,
        drives: &[&Drive<FakeNet>],
        held: u64,
        (round, lag): (usize, i64),
    ) {
        let left = settled(net, drives).await;
        assert_eq!(
            left, held,
            "round {round} (lag {lag} ms): blocks left behind"
        );
    }

    #[tokio::test]
    async fn a_link_made_while_another_browser_deletes_the_file_never_outlives_it() {
        let (net, here, there, held) = two_browsers().await;
        let mut seen = BTreeSet::new();
        for (round, lag) in LAGS.into_iter().enumerate() {
            // A small file: its manifest rides in the index until the link places it.
            let file = upload(&here, "plan.txt", &pattern(5_000, round as u8)).await;
            let delete = there.delete(&file.id);
            let (link, deleted) = raced(lag, here.share_link(&file.id, None), delete).await;
            deleted.unwrap();
            match link {
                // Made first: the delete ended it (the manifest it placed went too).
                Ok(link) => {
                    let read = open(&net, &link).await;
                    assert!(matches!(read, Err(FileError::LinkGone(_))), "{read:?}");
                    seen.insert("made, then ended by the delete");
                }
                // The delete landed first: no link, and what it placed was freed.
                Err(FileError::NoSuchFile) => {
                    seen.insert("refused: deleted meanwhile");
                }
                Err(e) => panic!("round {round}: {e}"),
            }
            assert!(here.list().await.unwrap().is_empty());
            assert!(there.list().await.unwrap().is_empty());
            nothing_left(&net, &[&here, &there], held, (round, lag)).await;
        }
        // Both orders happened, or the race was not run.
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    #[tokio::test]
    async fn a_link_made_while_another_browser_revokes_links_works_exactly_when_it_is_counted() {
        let (net, here, there, held) = two_browsers().await;
        let mut seen = BTreeSet::new();
        for (round, lag) in LAGS.into_iter().enumerate() {
            let bytes = pattern(5_000, round as u8);
            let file = upload(&here, "plan.txt", &bytes).await;
            let revoke = there.revoke_links(&file.id, |_| ControlFlow::Continue(()));
            let (link, revoked) = raced(lag, here.share_link(&file.id, None), revoke).await;
            let now = revoked.unwrap();
            let rows = here.list().await.unwrap();
            assert_eq!(rows.len(), 1, "round {round}");
            let row = &rows[0];
            assert_eq!(row.id, now.id, "round {round}: the re-keyed file");
            // A link the owner was given works if and only if the file's row counts it (so
            // the owner sees it and can end it), and never opens anything but the file.
            let works = match link {
                Ok(link) => match open(&net, &link).await {
                    Ok(read) => {
                        assert_eq!(read, bytes, "round {round}");
                        seen.insert("made after the re-key: works");
                        true
                    }
                    Err(FileError::LinkGone(_)) => {
                        seen.insert("made before the re-key: revoked");
                        false
                    }
                    Err(e) => panic!("round {round}: {e}"),
                },
                Err(FileError::NoSuchFile) => {
                    seen.insert("refused: re-keyed meanwhile");
                    false
                }
                Err(e) => panic!("round {round}: {e}"),
            };
            assert_eq!(row.links, u32::from(works), "round {round} (lag {lag} ms)");
            assert_eq!(download(&here, &row.id).await.unwrap(), bytes);
            there.delete(&row.id).await.unwrap();
            nothing_left(&net, &[&here, &there], held, (round, lag)).await;
        }
        // Both orders happened. (A link made after the re-key would name the new id, which the
        // racing browser does not know yet: its link for the old id is refused.)
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    #[tokio::test]
    async fn a_user_shared_with_while_another_browser_re_keys_the_file_opens_it_exactly_when_listed(
    ) {
        let (net, here, there, bob, held) = two_browsers_and_bob().await;
        let mut seen = BTreeSet::new();
        for (round, lag) in LAGS.into_iter().enumerate() {
            let bytes = pattern(5_000, round as u8);
            let file = upload(&here, "plan.txt", &bytes).await;
            let revoke = there.revoke_links(&file.id, |_| ControlFlow::Continue(()));
            let (shared, revoked) = raced(lag, here.share_with(&file.id, "bob"), revoke).await;
            let now = revoked.unwrap();
            let rows = here.list().await.unwrap();
            assert_eq!(rows.len(), 1, "round {round}");
            let row = &rows[0];
            assert_eq!(row.id, now.id, "round {round}: the re-keyed file");
            let given = bob.shared_with_me().await.unwrap().files;
            match shared {
                // Shared, whichever commit came first: the owner sees Bob on the file, and
                // what Bob was given opens it (with the new key).
                Ok(_) => {
                    assert_eq!(row.shared_with, ["bob"], "round {round} (lag {lag} ms)");
                    assert_eq!(given.len(), 1, "round {round} (lag {lag} ms): {given:?}");
                    let link = ShareLink::from_token(&given[0].token).unwrap();
                    let read = open(&net, &link).await;
                    assert_eq!(read.ok(), Some(bytes), "round {round} (lag {lag} ms)");
                    seen.insert("shared, kept through the re-key");
                }
                // The re-key landed first: the old id is gone, nothing is shared.
                Err(FileError::NoSuchFile) => {
                    assert!(row.shared_with.is_empty(), "round {round}");
                    assert!(given.is_empty(), "round {round}: {given:?}");
                    seen.insert("refused: re-keyed meanwhile");
                }
                Err(e) => panic!("round {round}: {e}"),
            }
            there.delete(&row.id).await.unwrap();
            assert!(bob.shared_with_me().await.unwrap().files.is_empty());
            nothing_left(&net, &[&here, &there, &bob], held, (round, lag)).await;
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    #[tokio::test]
    async fn a_user_shared_with_while_another_browser_deletes_the_file_is_left_with_nothing() {
        let (net, here, there, bob, held) = two_browsers_and_bob().await;
        let mut seen = BTreeSet::new();
        for (round, lag) in LAGS.into_iter().enumerate() {
            let file = upload(&here, "plan.txt", &pattern(5_000, round as u8)).await;
            let delete = there.delete(&file.id);
            let (shared, deleted) = raced(lag, here.share_with(&file.id, "bob"), delete).await;
            deleted.unwrap();
            match shared {
                Ok(_) => seen.insert("shared, then deleted"),
                Err(FileError::NoSuchFile) => seen.insert("refused: deleted meanwhile"),
                Err(e) => panic!("round {round}: {e}"),
            };
            assert!(here.list().await.unwrap().is_empty(), "round {round}");
            // Bob's list never keeps the deleted file, whichever letter went last.
            let given = bob.shared_with_me().await.unwrap().files;
            assert!(given.is_empty(), "round {round} (lag {lag} ms): {given:?}");
            nothing_left(&net, &[&here, &there, &bob], held, (round, lag)).await;
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    #[tokio::test]
    async fn two_files_shared_with_one_user_from_two_browsers_at_once_both_reach_them() {
        let (net, here, there, bob, held) = two_browsers_and_bob().await;
        for (round, lag) in LAGS.into_iter().enumerate() {
            let a = upload(&here, "a.txt", &pattern(3_000, round as u8)).await;
            let b = upload(&here, "b.txt", &pattern(4_000, round as u8)).await;
            let (one, two) = raced(
                lag,
                here.share_with(&a.id, "bob"),
                there.share_with(&b.id, "bob"),
            )
            .await;
            one.unwrap();
            two.unwrap();
            let rows = here.list().await.unwrap();
            assert!(
                rows.iter().all(|r| r.shared_with == ["bob"]),
                "round {round}"
            );
            // Each browser's letter may have been built before the other's share: the one
            // that stands lists both.
            let given = bob.shared_with_me().await.unwrap().files;
            let mut names: Vec<&str> = given.iter().map(|f| f.name.as_str()).collect();
            names.sort_unstable();
            assert_eq!(names, ["a.txt", "b.txt"], "round {round} (lag {lag} ms)");
            for file in [&a, &b] {
                here.delete(&file.id).await.unwrap();
            }
            assert!(bob.shared_with_me().await.unwrap().files.is_empty());
            nothing_left(&net, &[&here, &there, &bob], held, (round, lag)).await;
        }
    }
}
