//! The operations on a user's files, as methods of [`Drive`]: list, quota, upload, download,
//! audit, delete (the password-change upkeep is in `rotation.rs`).

use super::*;

impl<N: Network> Drive<N> {
    /// The files of `session`'s account, reached through `client`.
    pub fn new(client: N, session: Shared<Session>, settings: Settings) -> Self {
        Self {
            client,
            session,
            settings,
            donation: None,
            journal: None,
            index_cache: Shared::default(),
            freeing: Shared::default(),
        }
    }

    /// Waits until the frees this drive started in the background are done: an index's
    /// previous root and pages are freed after a save, off the user's wait. For whoever
    /// counts what the holders keep, such as the tests.
    pub async fn frees_done(&self) {
        use std::sync::atomic::Ordering;
        while self.freeing.load(Ordering::Acquire) > 0 {
            futures_timer::Delay::new(std::time::Duration::from_millis(2)).await;
        }
    }

    /// This drive, keeping the index root and pages it opens or seals in `cache` (the app's,
    /// so the next drive of the same user need not fetch them again).
    pub fn with_index_cache(mut self, cache: Shared<IndexCache>) -> Self {
        self.index_cache = cache;
        self
    }

    /// This drive, noting what its uploads place in `journal` until they are in the index.
    pub fn journaling(mut self, journal: Shared<UploadJournal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Notes that upload `file` is about to place block `id` (best effort: a journal that
    /// fails costs only the clean-up of a cut-short upload, never the upload).
    pub(super) async fn note(&self, file: &FileId, id: BlockId) {
        let Some(journal) = &self.journal else { return };
        let Ok(owner) = owner_hash(&self.session) else {
            return;
        };
        if let Err(e) = journal.note(&owner, file, id, now_ms()).await {
            tracing::warn!("{e}");
        }
    }

    /// Notes in the journal the blobs `ids` of an index record whose put at `seq` failed and
    /// was not found after (best effort, as [`Drive::note`]): a later log-in frees them once
    /// it reads a newer index that does not name them.
    pub(super) async fn note_lost_index_put(&self, ids: &[BlockId], seq: u64) {
        let Some(journal) = &self.journal else { return };
        let Ok(owner) = owner_hash(&self.session) else {
            return;
        };
        if ids.is_empty() {
            return; // a root that rode in the record placed nothing
        }
        if let Err(e) = journal
            .note_lost_index_put(&owner, ids, seq, now_ms())
            .await
        {
            tracing::warn!("{e}");
        }
    }

    /// Forgets upload `file` in the journal: it is in the index, or its blocks were freed.
    pub(super) async fn noted_done(&self, file: &FileId) {
        let Some(journal) = &self.journal else { return };
        let Ok(owner) = owner_hash(&self.session) else {
            return;
        };
        if let Err(e) = journal.done(&owner, file).await {
            tracing::warn!("{e}");
        }
    }

    /// Frees what uploads cut short left behind (a tab closed mid-upload: blocks placed, no
    /// index entry), from the journal: run at log-in. An upload whose file is in the index
    /// after all (the tab closed between the commit and the journal) is only forgotten.
    /// The blobs of lost index puts ([`Drive::note_lost_index_put`]) are freed once the index
    /// read is newer than them ([`Drive::free_lost_index_puts`]).
    /// Returns how many blocks were freed.
    pub async fn finish_uploads(&self) -> Result<usize, FileError> {
        let Some(journal) = &self.journal else {
            return Ok(0);
        };
        let owner = owner_hash(&self.session)?;
        let quiet_since = now_ms().saturating_sub(self.settings.abandoned_after.as_millis() as u64);
        let (unfinished, lost_puts) = futures::join!(
            journal.unfinished(&owner, quiet_since),
            journal.lost_index_puts(&owner, quiet_since)
        );
        let (unfinished, lost_puts) = match (unfinished, lost_puts) {
            (Ok(unfinished), Ok(lost_puts)) => (unfinished, lost_puts),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("{e}");
                return Ok(0);
            }
        };
        if unfinished.is_empty() && lost_puts.is_none() {
            return Ok(0);
        }
        let (index, record) = load_index(self).await?;
        let mut freed = 0;
        for (file, ids) in unfinished {
            if !index.files.iter().any(|f| f.id == file) {
                let blocks: Vec<BlockRef> = ids
                    .into_iter()
                    .map(|id| BlockRef {
                        id,
                        holders: Vec::new(),
                    })
                    .collect();
                // No holders were noted: the free goes to the peers nearest each block, where
                // placement put it.
                free_all(self, &blocks).await;
                freed += blocks.len();
            }
            self.noted_done(&file).await;
        }
        if freed > 0 {
            tracing::info!(freed, "blocks of uploads cut short freed");
        }
        if let Some(lost) = lost_puts {
            freed += self
                .free_lost_index_puts(journal, &owner, lost, &index, record.as_ref())
                .await;
        }
        Ok(freed)
    }

    /// The part of [`Drive::finish_uploads`] for the blobs of lost index puts, given the index
    /// read (`index`, from `record`). While that is not the current key's record with a higher
    /// sequence number than every lost put, a lost record may yet surface and be read over it
    /// (holders and readers take the newest of one key, and the current key's over an earlier
    /// one's): nothing is freed, and the blobs stay noted. Once it is, the blobs it does not
    /// name are freed (an index built on a lost record that surfaced reuses its unchanged
    /// pages), and all are forgotten. Returns how many blobs were freed.
    async fn free_lost_index_puts(
        &self,
        journal: &UploadJournal,
        owner: &OwnerHash,
        lost: LostIndexPuts,
        index: &FileIndex,
        record: Option<&VerifiedRecord>,
    ) -> usize {
        let current_key = self.session.public_key();
        let newer = record.is_some_and(|r| r.owner() == &current_key && r.record().seq > lost.seq);
        if !newer {
            return 0;
        }
        let named = blobs_named(&self.session, index, record);
        let blobs: Vec<BlockRef> = lost
            .ids
            .iter()
            .filter(|id| !named.contains(id))
            .map(|&id| BlockRef {
                id,
                holders: Vec::new(),
            })
            .collect();
        free_all(self, &blobs).await;
        if let Err(e) = journal.forget_lost_index_puts(owner, &lost.ids).await {
            tracing::warn!("{e}");
        }
        if !blobs.is_empty() {
            tracing::info!(freed = blobs.len(), "blobs of lost index puts freed");
        }
        blobs.len()
    }

    /// This drive, pledging `donation` with what it writes.
    pub fn donating(mut self, donation: Donation) -> Self {
        self.donation = Some(donation);
        self
    }

    /// This drive, asking for `replicas` copies of each block it places.
    pub fn replicating(mut self, replicas: usize) -> Self {
        self.settings.replicas = replicas;
        self
    }

    /// This drive, auditing `blocks` random blocks per file besides the manifest.
    pub fn auditing(mut self, blocks: usize) -> Self {
        self.settings.audit_blocks_per_file = blocks;
        self
    }

    /// The settings it works with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The session whose files these are.
    pub fn session(&self) -> &Shared<Session> {
        &self.session
    }

    /// This browser's pledge, if it donates.
    pub(super) fn pledge(&self) -> Result<Option<(String, Pledge)>, FileError> {
        self.donation
            .as_ref()
            .map(|d| d.pledge(&self.session))
            .transpose()
    }

    /// The account's files.
    pub async fn list(&self) -> Result<Vec<FileInfo>, FileError> {
        Ok(load_index(self).await?.0.files.iter().map(info).collect())
    }

    /// The user's storage use and quota, counting this browser's current donation as the
    /// next upload will (the index keeps what each browser pledged when it last wrote).
    pub async fn quota(&self) -> Result<Quota, FileError> {
        let (mut index, _) = load_index(self).await?;
        if let Some((peer, pledge)) = self.pledge()? {
            index.donations.insert(peer, pledge);
        }
        Ok(index.quota(self.settings.replicas))
    }

    /// Uploads `source` as `name`: checks the quota up front (this browser's donation counts
    /// towards it), seals it block by block with a fresh file key, places each block on
    /// [`Settings::replicas`] peers, then commits it to the index. `progress` hears bytes done
    /// after each block and may break to cancel the upload.
    pub async fn upload(
        &self,
        name: &str,
        source: impl Source,
        progress: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<UploadReport, FileError> {
        if name.is_empty() || name.chars().count() > 255 {
            return Err(FileError::BadName);
        }
        let (client, session, replicas) = (&self.client, &*self.session, self.settings.replicas);
        let size = source.size();
        let max = max_file_bytes(&self.settings);
        if size > max {
            return Err(FileError::TooLarge { size, max });
        }
        let pledge = self.pledge()?;
        let started = web_time::Instant::now();
        // The index (for the quota, and the pledges every store request carries) loads while
        // the first blocks are read, sealed and walked for; their requests wait for it. Over
        // quota, or an index that does not load, cancels them before any block goes out.
        // The index loaded is handed on to the commit ahead ([`CHECKED_INDEX_FRESH`]).
        let (send_pledges, pledged) = Pledged::later();
        let (send_checked, checked_index) = futures::channel::oneshot::channel();
        let checked = async {
            let (mut index, previous) = load_index(self).await?;
            let index_loaded = web_time::Instant::now();
            if let Some((peer, pledge)) = &pledge {
                index.donations.insert(peer.clone(), pledge.clone());
            }
            let Quota { used, quota } = index.quota(replicas);
            if used.saturating_add(size) > quota {
                return Err(FileError::OverQuota { size, used, quota });
            }
            let pledges = index.pledges();
            let _ = send_checked.send(((index, previous), index_loaded));
            let _ = send_pledges.send(pledges);
            Ok(index_loaded)
        };
        let file = FileId::random();
        let key = SymmetricKey::random();
        let sealed_key =
            fast::seal(session.user_key(), &file_key_aad(&file), key.as_bytes()).await?;
        let created_ms = now_ms();
        let entry_for =
            |manifest: &BlockRef, inline: Option<&SealedManifest>, copies: u32| FileEntry {
                id: file,
                name: name.to_owned(),
                size,
                created_ms,
                key: sealed_key.clone(),
                manifest: manifest.clone(),
                manifest_inline: inline.cloned(),
                copies,
                claims_behind: false,
                links: Vec::new(),
                shared_with: Vec::new(),
            };
        let add = |index: &mut FileIndex, entry: &FileEntry| {
            if let Some((peer, pledge)) = &pledge {
                index.donations.insert(peer.clone(), pledge.clone());
            }
            index.files.push(entry.clone());
        };
        // The manifest and the index that lists it are sealed and placed while the last
        // blocks are still on their way, on the holders the blocks' walks named: published
        // if every block landed there, freed otherwise.
        let (foresee, foreseen) = futures::channel::mpsc::unbounded();
        let placing = place_blocks(self, &pledged, &key, &file, source, progress, Some(foresee));
        let ahead = commit_ahead(
            self,
            Foreseen::new(foreseen, size),
            &pledged,
            checked_index,
            &key,
            &file,
            |index, manifest, inline, copies| add(index, &entry_for(manifest, inline, copies)),
        );
        let (checked, placed, ahead) = futures::join!(checked, placing, ahead);
        let finished = finish_upload(self, &file, &key, &pledged, started, placed, ahead).await;
        let index_loaded = checked?;
        let (stored, commit) = finished?;
        let entry = entry_for(
            &stored.manifest,
            stored.manifest_inline.as_ref(),
            stored.copies,
        );
        let file_info = info(&entry);
        let committing = web_time::Instant::now();
        let committed = match commit {
            Commit::Ahead(prepared) => match publish_index(self, prepared).await {
                // Another browser saved the index meanwhile: the change goes on its newest.
                Err(e) if is_conflict(&e) => commit_index(self, |index| add(index, &entry)).await,
                published => published,
            },
            Commit::Now(reloaded) => {
                commit_loaded(self, reloaded, |index| add(index, &entry)).await
            }
        };
        if committed.is_ok() {
            self.noted_done(&file).await;
        }
        // A failed commit leaves the journal entry: the next log-in frees the blocks, unless
        // the index has the file after all (a commit that succeeded but was not heard).
        committed?;
        // Where an upload's time goes, for `tests/bench/cluster.mjs --profile`.
        tracing::debug!(
            target: crate::TIMING,
            blocks = stored.blocks.len(),
            index_load_ms = (index_loaded - started).as_millis() as u64,
            blocks_ms = stored.blocks_ms,
            manifest_ms = stored.manifest_ms,
            commit_ms = committing.elapsed().as_millis() as u64,
            ahead = stored.ahead,
            "upload done"
        );
        witness(client, owner_hash(session)?, stored.receipts);
        Ok(UploadReport {
            file: file_info,
            replicas: replicas as u32,
            complete: stored.copies as usize >= replicas,
        })
    }

    /// Seals `source` block by block under `key` as file `file`, places each block on
    /// [`Settings::replicas`] peers and then its manifest on [`Settings::meta_replicas`]:
    /// everything an index entry needs but its name. `alongside` runs while the manifest is
    /// placed (the commit's reload of the index), and its output comes back with what was
    /// stored. On a failure or a cancel, what was placed is freed and the journal forgets
    /// the file.
    pub(super) async fn store_file<T>(
        &self,
        pledged: &Pledged,
        file: &FileId,
        key: &SymmetricKey,
        source: impl Source,
        progress: impl FnMut(u64) -> ControlFlow<()>,
        alongside: impl std::future::Future<Output = T>,
    ) -> Result<(Stored, T), FileError> {
        let started = web_time::Instant::now();
        let placed = place_blocks(self, pledged, key, file, source, progress, None).await;
        self.finish_file(file, key, placed, pledged, started, alongside)
            .await
    }

    /// The second half of [`Drive::store_file`]: frees what `placed` placed if it failed, and
    /// places the manifest of its blocks otherwise. `started`: when the first block was read.
    pub(super) async fn finish_file<T>(
        &self,
        file: &FileId,
        key: &SymmetricKey,
        placed: PlacedBlocks,
        pledged: &Pledged,
        started: web_time::Instant,
        alongside: impl std::future::Future<Output = T>,
    ) -> Result<(Stored, T), FileError> {
        // Known by now: every block's request waited for them.
        let pledges = match &placed {
            Ok(_) => pledged.get().await,
            Err(_) => Ok(Vec::new()),
        };
        let placed = match (placed, pledges) {
            (Ok(placed), Ok(pledges)) => Ok((placed, pledges)),
            (Ok((blocks, ..)), Err(error)) => Err((error, blocks)),
            (Err(failed), _) => Err(failed),
        };
        let ((blocks, mut receipts, size), pledges) = match placed {
            Ok(placed) => placed,
            Err((error, placed)) => {
                free_all(self, &placed).await;
                self.noted_done(file).await;
                return Err(error);
            }
        };
        let blocks_placed = web_time::Instant::now();
        let (manifest, alongside) = futures::join!(
            store_manifest(self, &pledges, key, file, &blocks),
            alongside
        );
        let manifest = match manifest {
            Ok(stored) => stored,
            Err(error) => {
                free_all(self, &blocks).await;
                self.noted_done(file).await;
                return Err(error);
            }
        };
        let copies = fewest_copies(&blocks, &manifest);
        let StoredManifest {
            root,
            inline,
            parts,
            receipts: manifest_receipts,
        } = manifest;
        receipts.extend(manifest_receipts);
        let stored = Stored {
            manifest: root,
            manifest_inline: inline,
            copies,
            size,
            receipts,
            blocks,
            parts,
            blocks_ms: (blocks_placed - started).as_millis() as u64,
            manifest_ms: blocks_placed.elapsed().as_millis() as u64,
            ahead: false,
        };
        Ok((stored, alongside))
    }

    /// Downloads a file, handing each checked, opened block to `sink` in order; the sink may
    /// break to cancel. [`Settings::pipeline`] blocks are fetched at once (each from its own
    /// holders, so a file's blocks come from several peers together), and handed on in order:
    /// memory stays at about `pipeline` blocks whatever the file's size. The first blocks are
    /// fetched while the index reloads, from the entry this tab saw last ([`head_start`]).
    pub async fn download(
        &self,
        id: &str,
        mut sink: impl FnMut(Vec<u8>) -> ControlFlow<()>,
    ) -> Result<FileInfo, FileError> {
        let started = web_time::Instant::now();
        let file = FileId::from_hex(id).ok_or(FileError::NoSuchFile)?;
        let Confirmed {
            entry,
            ready,
            fetched,
            index_loaded,
            manifest_loaded,
        } = confirmed(self, id, file).await?;
        let mut first_block = None;
        let timed = |block| {
            first_block.get_or_insert_with(web_time::Instant::now);
            sink(block)
        };
        hand_on(fetched, ready, &entry.name, timed).await?;
        let first_block = first_block.unwrap_or(manifest_loaded);
        // Where a download's time goes, for `tests/bench/cluster.mjs --profile`.
        let ms = |from: web_time::Instant, to: web_time::Instant| (to - from).as_millis() as u64;
        tracing::debug!(
            target: crate::TIMING,
            index_ms = ms(started, index_loaded),
            manifest_ms = ms(index_loaded, manifest_loaded),
            first_block_ms = ms(started, first_block),
            blocks_ms = first_block.elapsed().as_millis() as u64,
            head_start = manifest_loaded == index_loaded,
            "download done"
        );
        Ok(info(&entry))
    }

    /// Audits the user's files and counts their live copies: for each file its manifest and
    /// [`Settings::audit_blocks_per_file`] of its blocks picked at random, every holder listed
    /// at upload is challenged to prove it still holds the block ([`crate::audit`]; one that
    /// fails or does not answer is reported), and so are the peers now nearest the block's
    /// address, where repair puts new copies ([`crate::repair`]). A file's copy count becomes
    /// the fewest peers that proved one of its blocks, up or down, and the index is saved when
    /// one changed: the page's "Copies" column shows copies that are there now, not those made
    /// at upload.
    pub async fn audit(&self) -> Result<audit::Report, FileError> {
        let session = &*self.session;
        self.renew().await;
        let (mut index, _) = load_index(self).await?;
        let mut report = audit::Report::default();
        let mut counted: Vec<(FileId, u32)> = Vec::new();
        for entry in &mut index.files {
            let key = open_file_key(session, entry).await?;
            // A manifest kept in the entry has no holders to challenge.
            let mut refs = match entry.manifest_placed() {
                true => vec![(entry.manifest.clone(), META_POSITION)],
                false => Vec::new(),
            };
            if let Ok(tree) = manifest(self, entry, &key).await {
                // Every part of a large file's manifest: each is needed for its blocks.
                let parts = tree.positioned().skip(tree.blocks.len());
                refs.extend(parts.map(|(part, position)| (part.clone(), position)));
                let mut blocks: Vec<_> = tree.blocks.into_iter().zip(0u64..).collect();
                // A random pick: a holder cannot know which blocks will be asked for.
                for i in (1..blocks.len()).rev() {
                    let j = u32::from_le_bytes(crate::crypto::random_bytes()) as usize % (i + 1);
                    blocks.swap(i, j);
                }
                refs.extend(blocks.into_iter().take(self.settings.audit_blocks_per_file));
            }
            let checks = self.audit_blocks(&refs).await;
            let mut fewest = u32::MAX;
            for (outcomes, others_held) in checks {
                report.blocks += 1;
                let mut proved = others_held;
                for (holder, outcome) in outcomes {
                    report.challenges += 1;
                    if !report.holders.contains(&holder.to_string()) {
                        report.holders.push(holder.to_string());
                    }
                    let (answered, reason) = match outcome {
                        audit::Outcome::Held => {
                            report.held += 1;
                            proved += 1;
                            continue;
                        }
                        audit::Outcome::Refused(reason) | audit::Outcome::Invalid(reason) => {
                            (true, reason)
                        }
                        audit::Outcome::Unanswered(reason) => (false, reason),
                    };
                    report.failures.push(audit::Failure {
                        file: entry.name.clone(),
                        peer: holder.to_string(),
                        answered,
                        reason,
                    });
                }
                fewest = fewest.min(u32::try_from(proved).unwrap_or(u32::MAX));
            }
            if fewest < u32::try_from(self.settings.replicas).unwrap_or(u32::MAX) {
                report.files_degraded += 1;
            }
            if fewest <= 1 {
                report.files_at_risk += 1;
            }
            if fewest != u32::MAX && fewest != entry.copies {
                counted.push((entry.id, fewest));
            }
        }
        report.counts_saved = true;
        if !counted.is_empty() {
            // Applied to the index as it is now: an upload or delete meanwhile is kept. Best
            // effort: the audit's finding stands when the save fails (in the browser churn
            // scenario under load, an error here once hid a finished audit from the page).
            let saved = commit_index(self, |index| {
                for entry in &mut index.files {
                    if let Some((_, copies)) = counted.iter().find(|(id, _)| *id == entry.id) {
                        entry.copies = *copies;
                    }
                }
            })
            .await;
            if let Err(e) = saved {
                tracing::warn!("the copies counted were not saved in the index: {e}");
                report.counts_saved = false;
            }
        }
        Ok(report)
    }

    /// Challenges each block's listed holders, and the peers now nearest its address that are
    /// not listed (copies made since the upload: as many as the block wants and two more; one
    /// that lacks it is no failure, nobody gave it the block). Each peer is asked about all the
    /// blocks it is wanted for in one request ([`audit::challenge_each`]), every peer at once:
    /// a holder that closed costs the deadline (10 s) once, and a file of 16 blocks on 8 peers
    /// costs 8 requests, not 16 × 8. Returns per block each listed holder's outcome and how
    /// many of the others proved it.
    async fn audit_blocks(
        &self,
        refs: &[(BlockRef, u64)],
    ) -> Vec<(Vec<(PeerId, audit::Outcome)>, usize)> {
        let client = &self.client;
        // Who to ask about each block: its listed holders, then the nearest others, found by
        // walks eight at a time.
        let asked: Vec<(Vec<PeerId>, Vec<PeerId>)> = futures::stream::iter(refs)
            .map(|(block, position)| {
                let others = self.settings.copies_at(*position) + 2;
                listed_and_nearest(client.clone(), block, others)
            })
            .buffered(8)
            .collect()
            .await;
        // Each peer's blocks, in the order they come.
        let mut per_peer: Vec<(PeerId, Vec<usize>)> = Vec::new();
        for (at, (listed, others)) in asked.iter().enumerate() {
            for peer in listed.iter().chain(others) {
                match per_peer.iter_mut().find(|(p, _)| p == peer) {
                    Some((_, blocks)) => blocks.push(at),
                    None => per_peer.push((*peer, vec![at])),
                }
            }
        }
        let answers = join_all(per_peer.iter().map(|(peer, blocks)| {
            let ids: Vec<BlockId> = blocks.iter().map(|&at| refs[at].0.id).collect();
            async move { audit::challenge_each(client, *peer, &ids).await }
        }))
        .await;
        let mut outcome_of: std::collections::HashMap<(PeerId, usize), audit::Outcome> =
            std::collections::HashMap::new();
        for ((peer, blocks), outcomes) in per_peer.iter().zip(answers) {
            for (&at, outcome) in blocks.iter().zip(outcomes) {
                outcome_of.insert((*peer, at), outcome);
            }
        }
        let mut take = |peer: PeerId, at: usize| {
            outcome_of
                .remove(&(peer, at))
                .unwrap_or_else(|| audit::Outcome::Unanswered("not asked".into()))
        };
        asked
            .iter()
            .enumerate()
            .map(|(at, (listed, others))| {
                let mine = listed.iter().map(|h| (*h, take(*h, at))).collect();
                let others_held = others
                    .iter()
                    .filter(|p| matches!(take(**p, at), audit::Outcome::Held))
                    .count();
                (mine, others_held)
            })
            .collect()
    }

    /// Puts fresh leases on the account's blocks if the newest in the DHT is over a day old
    /// ([`crate::repair::unrenewed`]): a log-in puts them, and this keeps a tab that stays
    /// open for days renewing. Best effort: the next audit tries again.
    async fn renew(&self) {
        const EVERY: u64 = 24 * 60 * 60;
        let session = &*self.session;
        let Ok(der) = session.public_key().to_der() else {
            return;
        };
        let now = crate::platform::unix_secs();
        let key = crate::record::dht_key(RecordKind::Lease, &crate::record::lease_account(&der));
        let newest = match self.client.get_record(key).await {
            Ok(found) => found.iter().map(|r| r.record().seq).max(),
            Err(e) => {
                tracing::debug!("lease not looked up: {e}");
                return;
            }
        };
        if newest.is_some_and(|at| now.saturating_sub(at) < EVERY) {
            return;
        }
        let Ok(leases) = session.leases(now) else {
            return;
        };
        for lease in leases {
            if let Err(e) = self.client.put_record(lease).await {
                tracing::warn!("lease not renewed: {e}");
            }
        }
    }

    /// Removes a file from the index everywhere, then asks its holders to free the space and
    /// sends the users it was shared with a letter without it. Returns how many block copies
    /// were freed.
    pub async fn delete(&self, id: &str) -> Result<usize, FileError> {
        let (mut index, _, at, key) = entry_and_key(self, id).await?;
        let entry = index.files.remove(at);
        let tree = manifest(self, &entry, &key).await.unwrap_or_default();
        // The entry as the newest index has it: another browser may have shared the file
        // meanwhile, placing its manifest.
        let (mut newest, mut owed) = (None, Owed::new());
        commit_index(self, |index| {
            let at = index.files.iter().position(|f| f.id == entry.id);
            newest = at.map(|at| index.files.remove(at));
            if let Some(gone) = &newest {
                owed = index.owe(&gone.shared_with);
            }
        })
        .await?;
        let entry = newest.unwrap_or(entry);

        let mut refs = tree.blocks;
        refs.extend(tree.parts);
        if entry.manifest_placed() {
            refs.push(entry.manifest);
        }
        let mut freed = 0;
        for block in &refs {
            freed += free(self, block).await;
        }
        // The users it was shared with get a letter without it, as when it is unshared: their
        // lists drop it rather than show a file that opens nothing. The delete stands if a
        // letter cannot go (their list keeps the file until one does; opening it says gone).
        // The index owes them a letter until one goes (the next log-in sends it).
        let users = entry.shared_with.iter().map(String::as_str);
        if let Err(e) = self.tell(&owed, users).await {
            tracing::warn!("not every user it was shared with was told of the delete: {e}");
        }
        Ok(freed)
    }
}

pub(super) async fn entry_and_key<N: Network>(
    drive: &Drive<N>,
    id: &str,
) -> Result<(FileIndex, Option<VerifiedRecord>, usize, SymmetricKey), FileError> {
    let file = FileId::from_hex(id).ok_or(FileError::NoSuchFile)?;
    let (index, record) = load_index(drive).await?;
    let at = index
        .files
        .iter()
        .position(|f| f.id == file)
        .ok_or(FileError::NoSuchFile)?;
    let key = open_file_key(&drive.session, &index.files[at]).await?;
    Ok((index, record, at, key))
}

/// Every block of `entry` and its manifest's parts, opened with its file key `key` (the
/// manifest read from the entry when it is kept there, else fetched).
pub(super) async fn manifest<N: Network>(
    drive: &Drive<N>,
    entry: &FileEntry,
    key: &SymmetricKey,
) -> Result<FileBlocks, FileError> {
    let (client, settings) = (&drive.client, &drive.settings);
    load_blocks(
        client,
        settings,
        key,
        &entry.id,
        &entry.name,
        &entry.manifest,
        entry.manifest_inline.as_ref(),
    )
    .await
}
