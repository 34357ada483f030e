//! Sharing with another user by username: the sharer's side (a letter per recipient listing
//! every file shared with them, sent again whenever that list or a file's key changes) and the
//! recipient's ("Shared with me": the letters under the recipient's account, each checked
//! against the named sharer's current key, kept in the recipient's own index). The letter
//! format is in `letters.rs`.
//!
//! Stopping a share with one user re-keys the file ([`Drive::revoke_links`] does the same for
//! links): the recipient's capability opens only the old blocks, which are freed, and the
//! other recipients get a letter with the new key. What it cannot undo: a copy the recipient
//! already downloaded.

use std::collections::BTreeMap;

use super::letters::{genuine_key, letter_seq, open_letter, seal_letter, Letter};
use super::*;
use crate::{
    account::{account_id, normalize_username},
    crypto::rsa_keys::PublicKey,
    record::{AccountId, SignedRecord},
};

/// What this user keeps of what one sharer shares with them (in their own index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Received {
    /// The sequence number of the newest letter read from the sharer: an older one is a
    /// replay, and is refused.
    seq: u64,
    /// The files, as that letter listed them.
    files: Vec<ShareLink>,
    /// Those this user chose not to see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hidden: Vec<FileId>,
}

/// A file another user shares with this one.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SharedFile {
    /// The sharer's username.
    pub from: String,
    /// The file's id (hex), for [`Drive::hide_shared`].
    pub id: String,
    /// Its name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// A share-link token that reads it ([`download_link`]).
    pub token: String,
}

/// What "Shared with me" shows.
#[cfg_attr(all(test, not(target_arch = "wasm32")), derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SharedWithMe {
    /// Every file shared with this user and not hidden, newest sharer's letter first read.
    pub files: Vec<SharedFile>,
    /// Letters refused: not signed by the named sharer's current key, or older than one
    /// read before (a replay), or not readable.
    pub refused: u32,
    /// Whether the letters could be looked up: when too few peers answered, the list is what
    /// this user's index kept from earlier.
    pub fresh: bool,
}

/// A letter refused, and why.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("not signed by {0:?}'s current key")]
    NotTheSharer(String),
    #[error("older than the letter from {0:?} read before (a replay)")]
    Replayed(String),
    #[error("from this user")]
    FromSelf,
    #[error(transparent)]
    File(#[from] FileError),
}

/// The files `index` shares with user `name`, as a letter lists them (id and name).
fn shared_files(index: &FileIndex, name: &str) -> Vec<(FileId, String)> {
    let files = index
        .files
        .iter()
        .filter(|f| f.shared_with.iter().any(|n| n == name));
    files.map(|f| (f.id, f.name.clone())).collect()
}

/// The first failed letter of `told` ([`Drive::send_letters`]), if any.
pub(super) fn first_error<'a>(
    told: impl IntoIterator<Item = (&'a str, Result<(), FileError>)>,
) -> Result<(), FileError> {
    told.into_iter()
        .find_map(|(_, sent)| sent.err())
        .map_or(Ok(()), Err)
}

/// Letters sent to one user in one go when the index keeps changing under them (see
/// [`Drive::send_letter`]); the last one stands until the next change sends another.
const LETTER_ATTEMPTS: usize = 3;

/// How many users' keys [`Drive::send_letters`] looks up at once: Kademlia's own parallelism
/// per walk is 3, so 4 walks keep about 12 requests in flight.
const USER_LOOKUPS: usize = 4;

impl<N: Network> Drive<N> {
    /// Shares file `id` with the user `username`: notes them in the file's entry and sends
    /// them a letter listing every file shared with them. Returns the file as it is now.
    pub async fn share_with(&self, id: &str, username: &str) -> Result<FileInfo, FileError> {
        let name = recipient(&self.session, username)?;
        let file = FileId::from_hex(id).ok_or(FileError::NoSuchFile)?;
        let (account, key) = find_user(self, &name).await?;
        let (mut shared, mut added) = (None, false);
        commit_index(self, |index| {
            shared = index.files.iter_mut().find(|f| f.id == file).map(|entry| {
                // Already shared with them (asked twice, or by another browser meanwhile):
                // they hold the key, so a failure below must not take the share back.
                added = !entry.shared_with.contains(&name);
                if added {
                    entry.shared_with.push(name.clone());
                    entry.shared_with.sort();
                }
                info(entry)
            });
        })
        .await?;
        let shared = shared.ok_or(FileError::NoSuchFile)?;
        match self.send_letter(&name, account, &key, None).await {
            Ok(_) => {}
            // Sent, and no peer confirmed it: it may have landed, and this tab's DHT sends it
            // again. The share stands, so that the index never says "not shared" with a user
            // who may hold the file's key; their letter goes again at the next log-in, and
            // stopping sharing (a re-key) takes it back.
            Err(e @ FileError::LetterUnconfirmed { .. }) => {
                tracing::warn!(user = %name, "a file was shared; its letter is unconfirmed: {e}");
                return Err(e);
            }
            Err(e) if added => return Err(self.undo_share(&file, &name, e).await),
            Err(e) => return Err(e),
        }
        tracing::info!(user = %name, "a file was shared with a user");
        Ok(shared)
    }

    /// Takes back the share of `file` with `name` that this call added and whose letter was
    /// not sent (`error`: too many files for one letter, or the index not read), so the index
    /// does not say it is shared; returns `error`, or the commit's if it failed. The user is
    /// owed a letter all the same (at most one letter too many): another browser may have
    /// shared the file with them meanwhile and sent its letter.
    async fn undo_share(&self, file: &FileId, name: &str, error: FileError) -> FileError {
        let owed = name.to_string();
        let undone = commit_index(self, |index| {
            if let Some(entry) = index.files.iter_mut().find(|f| f.id == *file) {
                entry.shared_with.retain(|n| n != name);
            }
            index.owe([&owed]);
        })
        .await;
        undone.err().unwrap_or(error)
    }

    /// Stops sharing file `id` with `username`: re-keys the file (its old blocks freed, so what
    /// the user was given opens nothing more), sends them a letter without it and the other
    /// users it is shared with a letter with its new key. `progress` as for
    /// [`Drive::revoke_links`] (which this also does: a re-keyed file's links stop working).
    pub async fn unshare_with(
        &self,
        id: &str,
        username: &str,
        progress: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<FileInfo, FileError> {
        let name = normalize_username(username)
            .map_err(|_| FileError::BadUsername(username.to_string()))?;
        let (file, before, owed) = self.rekey(id, |n| n != name, progress).await?;
        // The user removed learns the file is gone; the others get its new key.
        self.tell(&owed, before.iter().map(String::as_str)).await?;
        tracing::info!(user = %name, "a file is no longer shared with a user");
        Ok(file)
    }

    /// Sends each of `users` a letter listing every file now shared with them; one that cannot
    /// go does not keep the others from theirs (each failure is logged). Returns each user
    /// with how their letter went ([`first_error`]).
    pub(super) async fn send_letters<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(&'a str, Result<(), FileError>)> {
        self.send_letters_from(None, users).await
    }

    /// [`Drive::send_letters`], the first letter built from `loaded` (the index as the caller
    /// just read it) when it is given. The index one letter's check read is where the next
    /// letter starts (N + 1 index reads for N users, not 2N), so the letters go one after
    /// another; the users' keys are looked up beforehand, [`USER_LOOKUPS`] at once (each
    /// lookup is a DHT walk of its own: a delete of a file shared with three users waited for
    /// three in turn).
    async fn send_letters_from<'a>(
        &self,
        mut loaded: Option<LoadedIndex>,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(&'a str, Result<(), FileError>)> {
        // The futures are made before the stream (a closure inside it would make the future
        // spawned for a password change's letters not `Send` for every lifetime).
        let lookups: Vec<_> = users
            .into_iter()
            .map(|name| find_user(self, name).map(move |found| (name, found)))
            .collect();
        let found: Vec<_> = futures::stream::iter(lookups)
            .buffered(USER_LOOKUPS)
            .collect()
            .await;
        let mut results = Vec::new();
        for (name, found) in found {
            let sent = match found {
                Ok((account, key)) => self.send_letter(name, account, &key, loaded.take()).await,
                Err(e) => Err(e),
            };
            results.push((
                name,
                sent.map(|next| loaded = next).inspect_err(|e| {
                    tracing::warn!(user = %name, "no letter sent: {e}");
                }),
            ));
        }
        results
    }

    /// Sends each of `users` their letter after a change that owes some of them one (`owed`,
    /// as [`FileIndex::owe`] returned it) and pays those it reached ([`Drive::pay`]; a failed
    /// payment is logged: they get one more letter at the next log-in). Returns the first
    /// failed letter once every user was tried.
    pub(super) async fn tell<'a>(
        &self,
        owed: &Owed,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), FileError> {
        let told = self.send_letters(users).await;
        if let Err(e) = self.pay(owed, &told).await {
            tracing::warn!("users told are still noted as owed a letter: {e}");
        }
        first_error(told)
    }

    /// Drops from the index's `owed` each user of `owed` whose letter went (`told`), unless
    /// they were owed again since (another tag: a change in another browser meanwhile).
    pub(super) async fn pay(
        &self,
        owed: &Owed,
        told: &[(&str, Result<(), FileError>)],
    ) -> Result<(), FileError> {
        let paid: Vec<(&str, u64)> = told
            .iter()
            .filter(|(_, sent)| sent.is_ok())
            .filter_map(|(user, _)| Some((*user, *owed.get(*user)?)))
            .collect();
        if paid.is_empty() {
            return Ok(());
        }
        commit_index(self, |index| {
            for (user, tag) in &paid {
                if index.owed.get(*user) == Some(tag) {
                    index.owed.remove(*user);
                }
            }
        })
        .await
    }

    /// Sends every user a file is shared with their letter again, and every user owed one
    /// ([`FileIndex::owed`]: a file deleted or unshared whose letter may not have gone): at
    /// log-in (a letter is kept [`crate::net::record_limits::RECORD_TTL`] after it was last
    /// sent) and after a password change (letters signed by the earlier key are refused).
    /// Owed users told are paid ([`Drive::pay`]). Returns how many letters went; the first
    /// error once every user was tried.
    pub async fn send_all_letters(&self) -> Result<usize, FileError> {
        let loaded = load_index(self).await?;
        let owed = loaded.0.owed.clone();
        let sharing: Vec<String> = loaded
            .0
            .files
            .iter()
            .flat_map(|f| f.shared_with.clone())
            .collect();
        let mut users: Vec<&str> = sharing
            .iter()
            .chain(owed.keys())
            .map(String::as_str)
            .collect();
        users.sort_unstable();
        users.dedup();
        let told = self.send_letters_from(Some(loaded), users).await;
        self.pay(&owed, &told).await?;
        let sent = told.iter().filter(|(_, sent)| sent.is_ok()).count();
        // An owed user whose account is not found now (its key record lapsed while they were
        // away, 90 days) stays owed, without failing the others' letters.
        let failed = told.into_iter().filter(|(user, sent)| {
            let away = matches!(sent, Err(FileError::UnknownUser(_)));
            !away || sharing.iter().any(|n| n == user)
        });
        first_error(failed)?;
        Ok(sent)
    }

    /// Seals and sends the letter to `name` listing every file the index shares with them
    /// (`loaded`, when the caller has just read it; else it is read), then reads the index
    /// again: when what it shares with them changed meanwhile (another browser of this user
    /// shared, unshared or deleted a file), the letter goes again. A letter built from an
    /// older index never replaces one from a newer ([`letter_seq`]), but the other browser's
    /// letter may never come (its tab closed after its commit): with the check, the last to
    /// put has seen the newest index. At most [`LETTER_ATTEMPTS`] letters. The first letter
    /// fails the call when it was refused before it went out, or went out unconfirmed
    /// ([`FileError::LetterUnconfirmed`]); once one was confirmed, nothing after it fails the
    /// call (a caller would undo a share the user can already open): it is logged. Returns the
    /// index as read after the last letter, for the next user's.
    async fn send_letter(
        &self,
        name: &str,
        account: AccountId,
        key: &PublicKey,
        loaded: Option<LoadedIndex>,
    ) -> Result<Option<LoadedIndex>, FileError> {
        let mut loaded = match loaded {
            Some(loaded) => loaded,
            None => load_index(self).await?,
        };
        let mut sent = self.put_letter(name, account, key, &mut loaded).await?;
        for attempt in 1..=LETTER_ATTEMPTS {
            loaded = match load_index(self).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::warn!(user = %name, "a letter went out; the index was not read again: {e}");
                    return Ok(None);
                }
            };
            if shared_files(&loaded.0, name) == sent {
                break;
            }
            if attempt == LETTER_ATTEMPTS {
                tracing::warn!(user = %name, "the index kept changing while letters went out; the next change sends another");
                break;
            }
            tracing::info!(user = %name, attempt, "the index changed while a letter went out; sending it again");
            sent = match self.put_letter(name, account, key, &mut loaded).await {
                Ok(sent) => sent,
                Err(e) => {
                    tracing::warn!(user = %name, "a letter went out; the one after a change did not: {e}");
                    return Ok(None);
                }
            };
        }
        Ok(Some(loaded))
    }

    /// Seals and puts one letter to `name` from the index `loaded` ([`Drive::seal_from`]);
    /// returns the files it lists.
    async fn put_letter(
        &self,
        name: &str,
        account: AccountId,
        key: &PublicKey,
        loaded: &mut LoadedIndex,
    ) -> Result<Vec<(FileId, String)>, FileError> {
        let record = self.seal_from(name, account, key, loaded, now_ms()).await?;
        match self.client.put_record(record).await {
            Ok(()) => {}
            // This tab holds a letter to them from this index or a newer one (sent within the
            // same second, or by another browser since): it stands, and lists what this one
            // would or newer. The caller compares with the index as it is now.
            Err(NetError::Record(e @ (RecordError::Stale { .. } | RecordError::Conflict(_)))) => {
                tracing::debug!(user = %name, "a letter from this index or a newer one is held: {e}");
            }
            // Refused here, before it went anywhere.
            Err(e @ NetError::Record(_)) => return Err(e.into()),
            // It went out, unconfirmed (this tab's DHT holds it and sends it again); or the
            // network stopped (the tab is closing), where keeping what it says is the safe side.
            Err(source) => {
                return Err(FileError::LetterUnconfirmed {
                    user: name.to_string(),
                    source: Box::new(source),
                })
            }
        }
        Ok(shared_files(&loaded.0, name))
    }

    /// Seals the letter to `name` listing what the index `loaded` shares with them, numbered
    /// by the index's version and `now_ms` ([`letter_seq`]), placing the manifests it names
    /// that ride in the index first.
    async fn seal_from(
        &self,
        name: &str,
        account: AccountId,
        key: &PublicKey,
        (index, record): &mut LoadedIndex,
        now_ms: u64,
    ) -> Result<SignedRecord, FileError> {
        let version = record.as_ref().map_or(0, |r| r.record().seq);
        let shared = |f: &FileEntry| f.shared_with.iter().any(|n| n == name);
        // The user cannot open this index: a manifest kept there is placed first, and its
        // holders noted (once: a later letter finds it placed).
        let (placed, receipts) = self.place_inline_manifests(index, shared).await?;
        if !placed.is_empty() {
            // A failed commit may yet have landed unheard: nothing is freed then (a few
            // hundred bytes on 5 peers, dropped once no one renews them).
            let mut unnoted = Vec::new();
            commit_index(self, |index| unnoted = note_placed(index, &placed)).await?;
            free_all(self, &unnoted).await;
            witness(&self.client, owner_hash(&self.session)?, receipts);
            note_placed(index, &placed);
        }
        let mut files = Vec::new();
        for entry in index.files.iter().filter(|f| shared(f)) {
            let file_key = open_file_key(&self.session, entry).await?;
            files.push(ShareLink {
                file: entry.id,
                key: *file_key.as_bytes(),
                manifest: entry.manifest.id,
                name: entry.name.clone(),
                size: entry.size,
                expires_ms: None,
            });
        }
        let letter = Letter {
            from: self.session.username().to_string(),
            files,
        };
        let seq = letter_seq(version, now_ms);
        seal_letter(&self.session, account, name, key, &letter, seq).await
    }

    /// What other users share with this one: the letters under this account, each checked
    /// (signed by the named sharer's current key, newer than the one read before), kept in
    /// the index so a share outlives its letter. When too few peers answer, the index's list
    /// is shown with `fresh: false`, never an empty one.
    pub async fn shared_with_me(&self) -> Result<SharedWithMe, FileError> {
        let key = dht_key(RecordKind::Letter, &self.session.account());
        let (letters, fresh) = match self.client.get_record(key).await {
            Ok(letters) => (letters, true),
            Err(NetError::TooFewPeers { .. }) => (Vec::new(), false),
            Err(e) => return Err(e.into()),
        };
        let (index, _) = load_index(self).await?;
        let mut newer: BTreeMap<String, (u64, Vec<ShareLink>)> = BTreeMap::new();
        let mut refused = 0;
        for letter in &letters {
            match self.read_letter(letter, &index.received).await {
                Ok(Some((from, letter_seq, files))) => {
                    newer.insert(from, (letter_seq, files));
                }
                Ok(None) => {}
                Err(e) => {
                    refused += 1;
                    tracing::info!("a letter was refused: {e}");
                }
            }
        }
        let mut received = index.received;
        if !newer.is_empty() {
            let apply = |received: &mut BTreeMap<String, Received>| {
                for (from, (seq, files)) in &newer {
                    let entry = received.entry(from.clone()).or_insert(Received {
                        seq: 0,
                        files: Vec::new(),
                        hidden: Vec::new(),
                    });
                    if entry.seq < *seq {
                        entry.seq = *seq;
                        entry.files = files.clone();
                    }
                }
            };
            commit_index(self, |index| apply(&mut index.received)).await?;
            apply(&mut received);
        }
        Ok(SharedWithMe {
            files: listed(&received),
            refused,
            fresh,
        })
    }

    /// Checks and opens one letter; `Ok(None)` when it is the one read before.
    async fn read_letter(
        &self,
        record: &VerifiedRecord,
        received: &BTreeMap<String, Received>,
    ) -> Result<Option<(String, u64, Vec<ShareLink>)>, Refused> {
        let letter = open_letter(&self.session, record).await?;
        let from = normalize_username(&letter.from)
            .map_err(|_| Refused::NotTheSharer(letter.from.clone()))?;
        if from == self.session.username() {
            return Err(Refused::FromSelf);
        }
        let (_, key) = find_user(self, &from).await?;
        if key.to_der().map_err(FileError::from)? != record.record().owner {
            return Err(Refused::NotTheSharer(from));
        }
        let seq = record.record().seq;
        match received.get(&from).map(|r| r.seq) {
            Some(held) if held > seq => Err(Refused::Replayed(from)),
            Some(held) if held == seq => Ok(None),
            _ => Ok(Some((from, seq, letter.files))),
        }
    }

    /// Hides file `id` shared by `from` from "Shared with me" (in every browser: the index
    /// keeps it).
    pub async fn hide_shared(&self, from: &str, id: &str) -> Result<(), FileError> {
        let file = FileId::from_hex(id).ok_or(FileError::NoSuchFile)?;
        let mut found = false;
        commit_index(self, |index| {
            found = false;
            if let Some(received) = index.received.get_mut(from) {
                if received.files.iter().any(|f| f.file == file) {
                    found = true;
                    if !received.hidden.contains(&file) {
                        received.hidden.push(file);
                    }
                }
            }
        })
        .await?;
        found.then_some(()).ok_or(FileError::NoSuchFile)
    }
}

/// The files in `received` not hidden, by sharer.
fn listed(received: &BTreeMap<String, Received>) -> Vec<SharedFile> {
    received
        .iter()
        .flat_map(|(from, r)| {
            r.files
                .iter()
                .filter(|f| !r.hidden.contains(&f.file))
                .map(move |f| SharedFile {
                    from: from.clone(),
                    id: f.file.to_hex(),
                    name: f.name.clone(),
                    size: f.size,
                    token: f.to_token(),
                })
        })
        .collect()
}

/// The normalised username of a recipient, who must not be the sharer.
fn recipient(session: &Session, username: &str) -> Result<String, FileError> {
    let name =
        normalize_username(username).map_err(|_| FileError::BadUsername(username.to_string()))?;
    if name == session.username() {
        return Err(FileError::ShareWithSelf);
    }
    Ok(name)
}

/// The account and current public key of the user `name` (normalised), from the DHT. A
/// lookup that heard too few peers is tried again for up to `network_wait`, then fails with
/// `network_unreachable`; "unknown user" only when enough peers were heard.
async fn find_user<N: Network>(
    drive: &Drive<N>,
    name: &str,
) -> Result<(AccountId, PublicKey), FileError> {
    let account = account_id(name);
    let key = dht_key(RecordKind::PublicKey, &account);
    let deadline = web_time::Instant::now() + drive.settings.network_wait;
    let mut pause = crate::account::RETRY_PAUSE;
    let found = loop {
        match drive.client.get_record(key.clone()).await {
            Err(NetError::TooFewPeers { .. }) if web_time::Instant::now() + pause < deadline => {
                futures_timer::Delay::new(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
            }
            other => break other?,
        }
    };
    let genuine = genuine_key(&found).ok_or_else(|| FileError::UnknownUser(name.to_string()))?;
    Ok((account, genuine.owner().clone()))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::fake::same_user_elsewhere;
    use super::super::fake::{drive_of, pattern, FakeNet, MIB};
    use super::*;
    use crate::crypto::rsa_keys::PrivateKey;

    async fn upload(drive: &Drive<FakeNet>, name: &str, bytes: &[u8]) -> FileInfo {
        drive
            .upload(name, bytes, |_| ControlFlow::Continue(()))
            .await
            .unwrap()
            .file
    }

    /// What a recipient gets with the token "Shared with me" gave them.
    async fn open(net: &FakeNet, token: &str) -> Result<Vec<u8>, FileError> {
        let link = ShareLink::from_token(token)?;
        let mut out = Vec::new();
        download_link(net, &Settings::default(), &link, |block| {
            out.extend_from_slice(&block);
            ControlFlow::Continue(())
        })
        .await?;
        Ok(out)
    }

    fn names(shared: &SharedWithMe) -> Vec<(String, String)> {
        shared
            .files
            .iter()
            .map(|f| (f.from.clone(), f.name.clone()))
            .collect()
    }

    #[tokio::test]
    async fn a_file_shared_with_a_user_who_is_away_reaches_them_bit_exact_until_it_is_unshared() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let (alice, bob, carol) = (
            drive_of(&net, "alice").await,
            drive_of(&net, "bob").await,
            drive_of(&net, "carol").await,
        );
        let bytes = pattern(2 * MIB as usize + 77, 5);
        let file = upload(&alice, "plans.pdf", &bytes).await;
        // Bob's tab plays no part: the letter waits in the DHT under his account.
        let shared = alice.share_with(&file.id, " Bob ").await.unwrap();
        assert_eq!(shared.shared_with, vec!["bob".to_string()]);
        alice.share_with(&file.id, "carol").await.unwrap();
        assert_eq!(alice.list().await.unwrap()[0].shared_with, ["bob", "carol"]);

        let got = bob.shared_with_me().await.unwrap();
        assert!(got.fresh);
        assert_eq!(got.refused, 0);
        assert_eq!(names(&got), [("alice".into(), "plans.pdf".into())]);
        let old_token = got.files[0].token.clone();
        assert_eq!(open(&net, &old_token).await.unwrap(), bytes);
        // Nothing of the file counts against the recipient.
        assert_eq!(bob.list().await.unwrap().len(), 0);

        // Alice stops sharing with Bob: the file is re-keyed, Carol is sent the new key.
        let now = alice
            .unshare_with(&file.id, "bob", |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert_eq!(now.shared_with, ["carol"]);
        assert!(bob.shared_with_me().await.unwrap().files.is_empty());
        assert!(
            matches!(open(&net, &old_token).await, Err(FileError::LinkGone(_))),
            "what Bob was given opens nothing more"
        );
        let carols = carol.shared_with_me().await.unwrap();
        assert_eq!(names(&carols), [("alice".into(), "plans.pdf".into())]);
        assert_ne!(carols.files[0].token, old_token);
        assert_eq!(open(&net, &carols.files[0].token).await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_file_its_owner_deletes_leaves_the_lists_of_the_users_it_was_shared_with() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let (alice, bob) = (drive_of(&net, "alice").await, drive_of(&net, "bob").await);
        let kept = upload(&alice, "kept.txt", b"kept").await;
        let gone = upload(&alice, "gone.txt", b"gone").await;
        for file in [&kept, &gone] {
            alice.share_with(&file.id, "bob").await.unwrap();
        }
        assert_eq!(bob.shared_with_me().await.unwrap().files.len(), 2);
        alice.delete(&gone.id).await.unwrap();
        // Bob's next look lists only what is still shared (not a file that opens nothing).
        let got = bob.shared_with_me().await.unwrap();
        assert_eq!(names(&got), [("alice".into(), "kept.txt".into())]);
        assert_eq!(open(&net, &got.files[0].token).await.unwrap(), b"kept");
    }

    #[tokio::test]
    async fn forged_replayed_and_rotated_key_letters_are_refused_and_never_shown() {
        let net = FakeNet::new(6, 64 * MIB).await;
        let (alice, bob, mallory) = (
            drive_of(&net, "alice").await,
            drive_of(&net, "bob").await,
            drive_of(&net, "mallory").await,
        );
        let file = upload(&alice, "a.txt", b"from alice").await;
        alice.share_with(&file.id, "bob").await.unwrap();
        assert_eq!(bob.shared_with_me().await.unwrap().files.len(), 1);
        let bob_key = bob.session.public_key();

        // Mallory signs a letter that says it is from Alice, with Mallory's key.
        let junk = upload(&mallory, "malware.exe", b"MZ").await;
        let (index, _) = load_index(&mallory).await.unwrap();
        let key = open_file_key(&mallory.session, &index.files[0])
            .await
            .unwrap();
        let forged = Letter {
            from: "alice".into(),
            files: vec![ShareLink {
                file: index.files[0].id,
                key: *key.as_bytes(),
                manifest: index.files[0].manifest.id,
                name: "invoice.pdf".into(),
                size: 2,
                expires_ms: None,
            }],
        };
        assert_eq!(junk.name, "malware.exe");
        let forged = seal_letter(
            &mallory.session,
            bob.session.account(),
            "bob",
            &bob_key,
            &forged,
            letter_seq(1, now_ms()),
        )
        .await
        .unwrap();
        net.put_record(forged).await.unwrap();
        let got = bob.shared_with_me().await.unwrap();
        assert_eq!(got.refused, 1, "Mallory's letter signed as Alice");
        assert_eq!(names(&got), [("alice".into(), "a.txt".into())]);

        // A letter with a signature that does not verify never gets past a holder.
        let mut bad = seal_letter(
            &alice.session,
            bob.session.account(),
            "bob",
            &bob_key,
            &Letter {
                from: "alice".into(),
                files: Vec::new(),
            },
            letter_seq(1, now_ms()),
        )
        .await
        .unwrap();
        bad.signature[10] ^= 1;
        assert!(net.put_record(bad).await.is_err());

        // A replay: Alice's first letter put back after holders lost her newer one.
        let first = net
            .get_record(dht_key(RecordKind::Letter, &bob.session.account()))
            .await;
        let first: VerifiedRecord = first
            .unwrap()
            .into_iter()
            .find(|l| l.owner() == &alice.session.public_key())
            .unwrap();
        let second = upload(&alice, "b.txt", b"second").await;
        alice.share_with(&second.id, "bob").await.unwrap();
        assert_eq!(bob.shared_with_me().await.unwrap().files.len(), 2);
        net.forget_letters();
        net.put_record(first.record().clone()).await.unwrap();
        let got = bob.shared_with_me().await.unwrap();
        assert_eq!(got.refused, 1, "an older letter than one read before");
        assert_eq!(got.files.len(), 2, "what Bob read stays");

        // Alice's key rotates (her password changed): a letter by the old key is refused.
        let next = PrivateKey::generate_bits(2048).unwrap();
        let link = alice.session.hand_over(&next.public());
        let rotated = SignedRecord::sign_with_history(
            RecordKind::PublicKey,
            alice.session.account(),
            2,
            &next,
            vec![link],
            Vec::new(),
        )
        .unwrap();
        net.put_record(rotated).await.unwrap();
        net.forget_letters();
        let third = upload(&alice, "c.txt", b"third").await;
        alice.share_with(&third.id, "bob").await.unwrap();
        let got = bob.shared_with_me().await.unwrap();
        assert_eq!(got.refused, 1, "signed by a key Alice rotated away from");
        assert_eq!(got.files.len(), 2, "c.txt is not shown");
    }

    #[tokio::test]
    async fn bad_recipients_are_named_and_change_nothing_and_hidden_files_stay_hidden() {
        let net = FakeNet::new(5, 64 * MIB).await;
        let (alice, bob) = (drive_of(&net, "alice").await, drive_of(&net, "bob").await);
        let file = upload(&alice, "a.txt", b"hello").await;
        assert!(matches!(
            alice.share_with(&file.id, "nobody-here").await,
            Err(FileError::UnknownUser(name)) if name == "nobody-here"
        ));
        assert!(matches!(
            alice.share_with(&file.id, "ALICE").await,
            Err(FileError::ShareWithSelf)
        ));
        assert!(matches!(
            alice.share_with(&file.id, "b o b").await,
            Err(FileError::BadUsername(_))
        ));
        assert!(matches!(
            alice.share_with("00", "bob").await,
            Err(FileError::NoSuchFile)
        ));
        assert!(alice.list().await.unwrap()[0].shared_with.is_empty());
        assert!(bob.shared_with_me().await.unwrap().files.is_empty());

        alice.share_with(&file.id, "bob").await.unwrap();
        let got = bob.shared_with_me().await.unwrap();
        bob.hide_shared("alice", &got.files[0].id).await.unwrap();
        assert!(bob.shared_with_me().await.unwrap().files.is_empty());
        assert!(matches!(
            bob.hide_shared("alice", "00").await,
            Err(FileError::NoSuchFile)
        ));
        // Letters are sent again at log-in; hidden stays hidden.
        assert_eq!(alice.send_all_letters().await.unwrap(), 1);
        assert!(bob.shared_with_me().await.unwrap().files.is_empty());
    }

    #[tokio::test]
    async fn a_share_whose_letter_may_have_landed_stands_and_one_never_sent_is_undone_unless_it_was_there(
    ) {
        let net = FakeNet::new(5, 64 * MIB).await;
        let (alice, bob) = (drive_of(&net, "alice").await, drive_of(&net, "bob").await);
        let shared_with = |id: String| {
            let alice = &alice;
            async move {
                let rows = alice.list().await.unwrap();
                rows.into_iter().find(|f| f.id == id).unwrap().shared_with
            }
        };
        // The letter lands, its acknowledgement is lost: Bob can open the file, and the index
        // says so (it once said "not shared").
        let landed = upload(&alice, "landed.txt", b"landed").await;
        net.unhear_letters(1);
        let shared = alice.share_with(&landed.id, "bob").await;
        assert!(
            matches!(&shared, Err(FileError::LetterUnconfirmed { user, .. }) if user == "bob"),
            "{shared:?}"
        );
        assert_eq!(shared_with(landed.id.clone()).await, ["bob"]);
        let got = bob.shared_with_me().await.unwrap();
        assert_eq!(open(&net, &got.files[0].token).await.unwrap(), b"landed");

        // The letter reaches no one: the share stands too (the sharer cannot tell the two
        // apart), and the next log-in delivers it.
        let lost = upload(&alice, "lost.txt", b"lost").await;
        net.lose_letters(1);
        assert!(matches!(
            alice.share_with(&lost.id, "bob").await,
            Err(FileError::LetterUnconfirmed { .. })
        ));
        assert_eq!(shared_with(lost.id.clone()).await, ["bob"]);
        assert_eq!(bob.shared_with_me().await.unwrap().files.len(), 1);
        assert_eq!(alice.send_all_letters().await.unwrap(), 1);
        assert_eq!(bob.shared_with_me().await.unwrap().files.len(), 2);

        // Stopping sharing takes back what the unconfirmed letter gave.
        let got = bob.shared_with_me().await.unwrap();
        let token = &got
            .files
            .iter()
            .find(|f| f.name == "landed.txt")
            .unwrap()
            .token;
        alice
            .unshare_with(&landed.id, "bob", |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        assert!(open(&net, token).await.is_err());

        // A letter too large for one record is refused before it goes out: that share is
        // undone, and Bob's letter still lists what it did.
        let long = |i: usize| format!("{i:03}{}", "n".repeat(252));
        let mut limit = None;
        for i in 0..60 {
            let file = upload(&alice, &long(i), b"x").await;
            match alice.share_with(&file.id, "bob").await {
                Ok(_) => {}
                Err(FileError::ShareLimit { user, files }) => {
                    assert_eq!(user, "bob");
                    limit = Some((file.id, files));
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let (refused, files) = limit.unwrap();
        assert!(shared_with(refused.clone()).await.is_empty());
        assert_eq!(bob.shared_with_me().await.unwrap().files.len(), files - 1);

        // Another browser has just shared the refused file and two more (its commit is in;
        // its letter, over the limit, not yet refused: three files over, whatever the
        // entries' sizes). Sharing again a file Bob already has is refused the same way, and
        // not undone: Bob holds its key.
        let mut more = vec![refused];
        for i in 100..102 {
            more.push(upload(&alice, &long(i), b"x").await.id);
        }
        commit_index(&alice, |index| {
            for entry in index
                .files
                .iter_mut()
                .filter(|f| more.contains(&f.id.to_hex()))
            {
                entry.shared_with.push("bob".into());
            }
        })
        .await
        .unwrap();
        let first = alice.list().await.unwrap();
        let first = first.iter().find(|f| f.name == long(0)).unwrap();
        let again = alice.share_with(&first.id, "bob").await;
        assert!(
            matches!(again, Err(FileError::ShareLimit { .. })),
            "{again:?}"
        );
        assert_eq!(shared_with(first.id.clone()).await, ["bob"]);
    }

    #[tokio::test]
    async fn a_letter_from_an_older_index_never_stands_over_a_newer_one_whatever_the_clocks() {
        // Alice's laptop and phone; the phone's clock runs an hour ahead.
        let net = FakeNet::new(6, 64 * MIB).await;
        let (laptop, bob) = (drive_of(&net, "alice").await, drive_of(&net, "bob").await);
        let phone = same_user_elsewhere(&laptop);
        let first = upload(&laptop, "first.txt", b"first").await;
        phone.share_with(&first.id, "bob").await.unwrap();
        // The phone seals a letter from the index as it reads it (Bob: first.txt)...
        let (account, key) = find_user(&phone, "bob").await.unwrap();
        let mut read = load_index(&phone).await.unwrap();
        let hour_ahead = now_ms() + 3_600_000;
        let late = phone
            .seal_from("bob", account, &key, &mut read, hour_ahead)
            .await
            .unwrap();
        // ...while the laptop shares a second file with Bob, and its letter goes out first.
        let second = upload(&laptop, "second.txt", b"second").await;
        laptop.share_with(&second.id, "bob").await.unwrap();
        // The phone's letter lands last, an hour newer by its clock: built from an older
        // index, it is refused (numbered by the clock alone, it replaced the laptop's and
        // Bob never saw second.txt).
        assert!(matches!(
            net.put_record(late).await,
            Err(NetError::Record(RecordError::Stale { .. }))
        ));
        let got = bob.shared_with_me().await.unwrap();
        let mut listed = names(&got);
        listed.sort();
        let alice = |name: &str| ("alice".to_string(), name.to_string());
        assert_eq!(listed, [alice("first.txt"), alice("second.txt")]);
        for (file, bytes) in [
            ("first.txt", b"first".as_slice()),
            ("second.txt", b"second"),
        ] {
            let token = &got.files.iter().find(|f| f.name == file).unwrap().token;
            assert_eq!(open(&net, token).await.unwrap(), bytes);
        }
    }

    #[tokio::test]
    async fn a_user_whose_letter_was_lost_when_a_file_was_deleted_or_unshared_is_told_at_the_next_log_in(
    ) {
        let net = FakeNet::new(6, 64 * MIB).await;
        let (alice, bob, carol) = (
            drive_of(&net, "alice").await,
            drive_of(&net, "bob").await,
            drive_of(&net, "carol").await,
        );
        let owed = |drive| async move { load_index(drive).await.unwrap().0.owed };
        // A delete whose letter goes owes nothing after it.
        let told = upload(&alice, "told.txt", b"told").await;
        alice.share_with(&told.id, "bob").await.unwrap();
        alice.delete(&told.id).await.unwrap();
        assert!(owed(&alice).await.is_empty());

        let gone = upload(&alice, "gone.txt", b"gone").await;
        alice.share_with(&gone.id, "bob").await.unwrap();
        // The delete's letter to Bob reaches no one (the tab closed, no peer took it).
        net.lose_letters(1);
        alice.delete(&gone.id).await.unwrap();
        let listed = bob.shared_with_me().await.unwrap();
        assert_eq!(names(&listed), [("alice".into(), "gone.txt".into())]);
        // Alice logs in again, in another browser, and that letter is lost too: Bob stays owed.
        let later = same_user_elsewhere(&alice);
        net.lose_letters(1);
        assert!(matches!(
            later.send_all_letters().await,
            Err(FileError::LetterUnconfirmed { .. })
        ));
        let before = owed(&later).await;
        assert_eq!(before.keys().collect::<Vec<_>>(), ["bob"]);
        // A letter that went, paid with the tag read before Bob was owed again (another
        // browser deleted another file shared with him meanwhile), leaves him owed.
        let again = upload(&alice, "again.txt", b"again").await;
        alice.share_with(&again.id, "bob").await.unwrap();
        net.lose_letters(1);
        alice.delete(&again.id).await.unwrap();
        later.pay(&before, &[("bob", Ok(()))]).await.unwrap();
        assert_eq!(owed(&later).await.keys().collect::<Vec<_>>(), ["bob"]);
        // The next log-in: Bob is owed a letter, though no file is shared with him now, and
        // gets one.
        assert_eq!(later.send_all_letters().await.unwrap(), 1);
        assert!(bob.shared_with_me().await.unwrap().files.is_empty());
        assert!(owed(&later).await.is_empty(), "paid");
        assert_eq!(later.send_all_letters().await.unwrap(), 0);

        // Unsharing: Bob's letter is lost, Carol's (the new key) goes.
        let kept = upload(&alice, "kept.txt", b"kept").await;
        for user in ["bob", "carol"] {
            alice.share_with(&kept.id, user).await.unwrap();
        }
        net.lose_letters(1);
        let unshared = alice.unshare_with(&kept.id, "bob", |_| ControlFlow::Continue(()));
        assert!(matches!(
            unshared.await,
            Err(FileError::LetterUnconfirmed { .. })
        ));
        let rows = alice.list().await.unwrap();
        assert_eq!(rows[0].shared_with, ["carol"]);
        let carols = carol.shared_with_me().await.unwrap();
        assert_eq!(open(&net, &carols.files[0].token).await.unwrap(), b"kept");
        assert_eq!(bob.shared_with_me().await.unwrap().files.len(), 1);
        // The next log-in tells Bob (and Carol again).
        assert_eq!(later.send_all_letters().await.unwrap(), 2);
        assert!(bob.shared_with_me().await.unwrap().files.is_empty());
        assert_eq!(carol.shared_with_me().await.unwrap().files.len(), 1);
        assert!(owed(&later).await.is_empty(), "paid");
    }
}
