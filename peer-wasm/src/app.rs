//! The peer as the page drives it: a running node, who is logged in on it, and that user's
//! [`Drive`]. Plain Rust on both targets, so `cargo test` drives sign-up -> upload ->
//! download -> log-out exactly as the page does; `bindings` only translates to and from
//! JavaScript (and keeps what only a browser has: `localStorage`, `Blob`s, `AbortSignal`s).

use std::{sync::Mutex, time::Duration};

use libp2p::identity::Keypair;

use crate::{
    account::{self, AccountError, Session},
    files::{self, Donation, Drive, IndexCache, UploadJournal},
    net::Client,
    platform::{self, Shared},
    store::{BlockStore, StoreError},
};

/// The tuning of the logged-in layer, with the files' own.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How files are stored and fetched.
    pub files: files::Settings,
    /// Size of a new account's RSA key: 3,072 bits ([`crate::crypto::rsa_keys::RSA_BITS`],
    /// 128-bit security, NIST SP 800-57). Native tests use 2,048 to run fast.
    pub rsa_bits: usize,
    /// Pause between attempts to publish the first account on an empty network
    /// ([`App::sign_up_alone`]): 2 s, so it is out within seconds of a second tab appearing
    /// and costs nothing while none does (one local DHT walk per attempt).
    pub publish_retry: Duration,
    /// Share of the browser's storage quota a new browser proposes to donate: 10 %.
    pub donation_share: f64,
    /// Bounds of the proposed donation: 64 MiB (enough for a few photos' worth of other
    /// people's blocks) to 5 GiB (a large share of a laptop's free disk).
    pub donation_bounds: (u64, u64),
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            files: files::Settings::default(),
            rsa_bits: crate::crypto::rsa_keys::RSA_BITS,
            publish_retry: Duration::from_secs(2),
            donation_share: 0.10,
            donation_bounds: (64 << 20, 5 << 30),
        }
    }
}

impl Settings {
    /// The donation to propose in a browser whose storage quota is `browser_quota` bytes (if
    /// it says): [`Settings::donation_share`] of it within [`Settings::donation_bounds`].
    pub fn suggested_donation(&self, browser_quota: Option<f64>) -> u64 {
        let (min, max) = self.donation_bounds;
        browser_quota.map_or(min, |q| ((q * self.donation_share) as u64).clamp(min, max))
    }
}

/// Why the app could not do what was asked (account and file operations have their own
/// errors: [`AccountError`], [`files::FileError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// Nobody is logged in.
    #[error("log in first")]
    LoggedOut,
    /// This browser's donation could not be read or set.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An account operation failed.
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// Who is logged in.
#[derive(Default)]
struct Login {
    session: Option<Shared<Session>>,
    /// Counts log-ins and log-outs, so that a background task can tell whether the session it
    /// works for is still the one logged in without holding its keys.
    generation: u64,
    /// The session was made by [`App::sign_up_alone`] and no other peer holds its records yet.
    alone: bool,
}

/// A running peer and who is logged in on it.
pub struct App {
    /// This peer's key: signs its pledges.
    keypair: Keypair,
    client: Client,
    store: Shared<BlockStore>,
    settings: Settings,
    login: Shared<Mutex<Login>>,
    /// Where this browser's uploads note their blocks until they are in the index.
    journal: Option<Shared<UploadJournal>>,
    /// The index pages this tab has opened or sealed, kept from one drive to the next.
    index_cache: Shared<IndexCache>,
}

impl App {
    /// An app over a started peer ([`crate::node::start`]) with nobody logged in.
    pub fn new(
        keypair: Keypair,
        client: Client,
        store: Shared<BlockStore>,
        settings: Settings,
    ) -> Self {
        Self {
            keypair,
            client,
            store,
            settings,
            login: Shared::new(Mutex::new(Login::default())),
            journal: None,
            index_cache: Shared::default(),
        }
    }

    /// This app, noting uploads in `journal` (this browser's): an upload cut short by a
    /// closed tab is freed at the account's next log-in here.
    pub fn with_journal(mut self, journal: Shared<UploadJournal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The network handle.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What this peer holds for others.
    pub fn store(&self) -> &Shared<BlockStore> {
        &self.store
    }

    /// The settings it works with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The logged-in session, if any.
    pub fn session(&self) -> Option<Shared<Session>> {
        self.with_login(|login| login.session.clone())
    }

    /// Whether the logged-in account was signed up alone and no other peer holds it yet
    /// (closing this tab for good would lose it).
    pub fn alone(&self) -> bool {
        self.with_login(|login| login.session.is_some() && login.alone)
    }

    fn with_login<T>(&self, f: impl FnOnce(&mut Login) -> T) -> T {
        // A task that panicked while holding the lock left a whole `Login` behind (every
        // change below is one assignment): carry on with it.
        let mut login = self.login.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut login)
    }

    /// Makes `session` the logged-in one; returns its generation.
    fn enter(&self, session: Shared<Session>, alone: bool) -> u64 {
        self.with_login(|login| {
            login.generation += 1;
            login.session = Some(session);
            login.alone = alone;
            login.generation
        })
    }

    /// Creates an account and logs in to it; done only once other peers hold its records.
    pub async fn sign_up(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Shared<Session>, AccountError> {
        let new = account::sign_up_with_key_bits(
            &self.client,
            username,
            password,
            self.settings.rsa_bits,
        )
        .await?;
        let new = Shared::new(new);
        self.enter(new.clone(), false);
        Ok(new)
    }

    /// Signs up the first person on a network with no other peer yet: the records stay here
    /// and go out, read back from the first peers that appear, every
    /// [`Settings::publish_retry`] while this account stays logged in (after a log-out or a
    /// reload, its next log-in publishes them). Until then [`App::alone`] says so.
    pub async fn sign_up_alone(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Shared<Session>, AccountError> {
        let (new, unpublished) =
            account::sign_up_alone(&self.client, username, password, self.settings.rsa_bits)
                .await?;
        let session = Shared::new(new);
        let mine = self.enter(session.clone(), true);
        let (client, login, retry) = (
            self.client.clone(),
            self.login.clone(),
            self.settings.publish_retry,
        );
        // Only the generation here, not the session: a log-out wipes the keys at once.
        platform::spawn(async move {
            let still_in = || {
                let login = login.lock().unwrap_or_else(|e| e.into_inner());
                login.generation == mine && login.session.is_some()
            };
            while still_in() {
                match unpublished.publish(&client).await {
                    Ok(()) => {
                        tracing::info!("the first account is now held by other peers");
                        let mut login = login.lock().unwrap_or_else(|e| e.into_inner());
                        if login.generation == mine {
                            login.alone = false;
                        }
                        return;
                    }
                    Err(e) => tracing::debug!("first account not yet published: {e}"),
                }
                futures_timer::Delay::new(retry).await;
            }
        });
        Ok(session)
    }

    /// Logs in from the records in the network (whoever was logged in is logged out first,
    /// and nobody is after a failure). A password change cut short before the files were
    /// re-sealed under the new keys finishes here, before the session is handed out: no
    /// upload may write an index under the new key meanwhile, or its files would never be
    /// marked for [`Drive::move_claims`].
    pub async fn log_in(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Shared<Session>, AccountError> {
        self.log_out();
        let opened = Shared::new(account::log_in(&self.client, username, password).await?);
        if !opened.history().is_empty() {
            self.finish_rotation(&opened).await;
        }
        self.enter(opened.clone(), false);
        // Uploads this browser left unfinished (a tab closed mid-upload) are freed in the
        // background: the person is in at once.
        let drive = self.drive_of(opened.clone());
        platform::spawn(async move {
            if let Err(e) = drive.finish_uploads().await {
                tracing::warn!("unfinished uploads not freed yet (next log-in tries again): {e}");
            }
        });
        Ok(opened)
    }

    /// Changes the logged-in account's password (the current one confirms it): the keys
    /// rotate, and the file index and file keys are re-sealed under the new ones.
    pub async fn change_password(
        &self,
        current_password: &str,
        new_password: &str,
    ) -> Result<Shared<Session>, AppError> {
        let open = self.session().ok_or(AppError::LoggedOut)?;
        let rotated =
            account::change_password(&self.client, &open, current_password, new_password).await?;
        // In at once (the old keys open nothing new from now on), then the files follow.
        let rotated = Shared::new(rotated);
        self.enter(rotated.clone(), false);
        self.finish_rotation(&rotated).await;
        Ok(rotated)
    }

    /// Logs out: the account's keys are wiped from memory once the last task using them ends.
    pub fn log_out(&self) {
        self.with_login(|login| {
            login.generation += 1;
            login.session = None;
            login.alone = false;
        });
    }

    /// The logged-in user's files, to read, download, delete or audit.
    pub fn drive(&self) -> Result<Drive, AppError> {
        let session = self.session().ok_or(AppError::LoggedOut)?;
        Ok(self.drive_of(session))
    }

    /// The logged-in user's files, pledging this browser's current donation: to upload, or to
    /// tell the quota as the next upload will count it.
    pub async fn pledging_drive(&self) -> Result<Drive, AppError> {
        let session = self.session().ok_or(AppError::LoggedOut)?;
        self.pledging(self.drive_of(session)).await
    }

    fn drive_of(&self, session: Shared<Session>) -> Drive {
        let drive = Drive::new(self.client.clone(), session, self.settings.files.clone())
            .with_index_cache(self.index_cache.clone());
        match &self.journal {
            Some(journal) => drive.journaling(journal.clone()),
            None => drive,
        }
    }

    async fn pledging(&self, drive: Drive) -> Result<Drive, AppError> {
        let donation = Donation {
            keypair: self.keypair.clone(),
            bytes: self.store.usage().await?.capacity,
        };
        Ok(drive.donating(donation))
    }

    /// Sets how many bytes this peer donates. What it holds already stays.
    pub async fn set_donation(&self, bytes: u64) -> Result<(), AppError> {
        Ok(self.store.set_capacity(bytes).await?)
    }

    /// Re-seals the file index under a rotated account's new keys
    /// ([`Drive::finish_rotation`]), then in the background re-signs the letters to the users
    /// files are shared with ([`Drive::send_all_letters`]) and moves the claims on every block
    /// to the new key ([`Drive::move_claims`]). The password change itself is done whatever
    /// happens here: until this succeeds the index opens with the earlier user key the
    /// session keeps, and the next log-in tries again.
    async fn finish_rotation(&self, session: &Shared<Session>) {
        let drive = match self.pledging(self.drive_of(session.clone())).await {
            Ok(drive) => drive,
            Err(e) => {
                tracing::warn!("file index not re-sealed yet (next log-in tries again): {e}");
                return;
            }
        };
        let resealed = match drive.finish_rotation().await {
            Ok(resealed) => resealed,
            Err(e) => {
                tracing::warn!("file index not re-sealed yet (next log-in tries again): {e}");
                return;
            }
        };
        if resealed {
            tracing::info!("file index re-sealed under the account's new keys");
        }
        // It asks every holder of every file's blocks; a log-out meanwhile wipes the keys once
        // it ends.
        platform::spawn(async move {
            // Users the files are shared with refuse letters signed by the earlier key: they
            // get new ones (the page sends them again at every log-in too).
            if resealed {
                if let Err(e) = drive.send_all_letters().await {
                    tracing::warn!("shares not yet re-signed (next log-in tries again): {e}");
                }
            }
            match drive.move_claims().await {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} files' blocks now claimed by the account's new key"),
                Err(e) => tracing::warn!("claims not moved yet (next log-in tries again): {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proposed_donation_is_a_share_of_the_quota_within_bounds() {
        let settings = Settings::default();
        let (min, max) = settings.donation_bounds;
        assert_eq!(settings.suggested_donation(None), min);
        assert_eq!(settings.suggested_donation(Some(100e6)), min);
        assert_eq!(settings.suggested_donation(Some(10e9)), 1_000_000_000);
        assert_eq!(settings.suggested_donation(Some(1e15)), max);
    }
}
