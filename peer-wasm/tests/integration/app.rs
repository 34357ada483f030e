//! The app as the page drives it ([`App`]), over 8 native peers: sign-up -> upload ->
//! download -> log-out in one browser, log-in and the same file in another, a password change
//! that re-seals the files, and nothing done for whoever is logged out.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;

use jellyfish_peer::{
    account::AccountError,
    app::{App, AppError, Settings},
    files::FileError,
    node::Node,
};

use crate::common::{self, pattern};

const PASSWORD: &str = "violet tractor sings under seven moons";
const NEW_PASSWORD: &str = "quiet harbour lanterns drift past midnight";
const MIB: u64 = 1024 * 1024;

/// An app over `node`, as `bindings::start` makes one (with small RSA keys, to run fast).
fn app(node: &Node) -> App {
    let settings = Settings {
        rsa_bits: 2048,
        ..Settings::default()
    };
    App::new(
        node.keypair.clone(),
        node.client.clone(),
        node.store.clone(),
        settings,
    )
}

async fn download(app: &App, id: &str) -> Result<Vec<u8>, FileError> {
    let mut out = Vec::new();
    let drive = app.drive().unwrap();
    drive
        .download(id, |block| {
            out.extend_from_slice(&block);
            ControlFlow::Continue(())
        })
        .await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_upload_download_log_out_and_back_in_elsewhere() {
    let nodes = common::cluster(8, |_| 64 * MIB).await;
    let (first, second) = (app(&nodes[1]), app(&nodes[2]));

    // Nobody logged in: nothing to do files with.
    assert!(matches!(first.drive(), Err(AppError::LoggedOut)));
    let session = first.sign_up("alice", PASSWORD).await.unwrap();
    assert_eq!(session.username(), "alice");
    assert!(!first.alone());

    // Upload 2.5 MiB through the app's drive: its donation counts towards the quota.
    let bytes = pattern((2 * MIB + MIB / 2) as usize, 5);
    let drive = first.pledging_drive().await.unwrap();
    let quota = drive.quota().await.unwrap();
    assert_eq!(quota.used, 0);
    assert_eq!(
        quota.quota,
        64 * MIB / 3,
        "this browser's 64 MiB over 3 copies"
    );
    let report = drive
        .upload("photo.jpg", bytes.as_slice(), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert!(report.complete, "{report:?}");
    assert_eq!(download(&first, &report.file.id).await.unwrap(), bytes);

    // Log out: the session is gone and nothing works without one.
    first.log_out();
    assert!(first.session().is_none());
    assert!(matches!(first.drive(), Err(AppError::LoggedOut)));
    assert!(matches!(
        first.change_password(PASSWORD, NEW_PASSWORD).await,
        Err(AppError::LoggedOut)
    ));
    // The drive taken before still holds its session (as an operation in flight would), but
    // the app hands out no new one.
    drop(drive);

    // Another browser: a wrong password keeps nobody logged in; the right one shows the file.
    let wrong = second.log_in("alice", "not the password at all").await;
    assert!(
        matches!(wrong, Err(AccountError::WrongPassword)),
        "{wrong:?}"
    );
    assert!(second.session().is_none());
    second.log_in("alice", PASSWORD).await.unwrap();
    let listed = second.drive().unwrap().list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "photo.jpg");
    assert_eq!(download(&second, &report.file.id).await.unwrap(), bytes);

    // A password change through the app re-seals the index under the new keys before it
    // returns: the first browser logs in with the new password and reads the file.
    second
        .change_password(PASSWORD, NEW_PASSWORD)
        .await
        .unwrap();
    let wrong = first.log_in("alice", PASSWORD).await;
    assert!(
        matches!(wrong, Err(AccountError::WrongPassword)),
        "{wrong:?}"
    );
    first.log_in("alice", NEW_PASSWORD).await.unwrap();
    assert_eq!(download(&first, &report.file.id).await.unwrap(), bytes);
    // Delete through the app: gone for both browsers.
    let freed = first
        .drive()
        .unwrap()
        .delete(&report.file.id)
        .await
        .unwrap();
    assert!(freed >= 3, "{freed} copies freed");
    assert!(second.drive().unwrap().list().await.unwrap().is_empty());
}

/// Sharing with users over real peers: two sharers' letters to one recipient meet at the same
/// holders (bundles merged per sharer), the recipient reads both in another browser, a
/// password change re-signs the sharer's letter, and unsharing ends what was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_shared_with_a_user_who_is_away_reach_them_in_any_browser() {
    let nodes = common::cluster(8, |_| 64 * MIB).await;
    let (alice, carol, bob) = (app(&nodes[1]), app(&nodes[2]), app(&nodes[3]));
    bob.sign_up("bob", PASSWORD).await.unwrap();
    bob.log_out();
    alice.sign_up("alice", PASSWORD).await.unwrap();
    carol.sign_up("carol", PASSWORD).await.unwrap();
    let (from_alice, from_carol) = (pattern((MIB + 5) as usize, 1), pattern(4000, 2));
    let mut shared = Vec::new();
    for (app, name, bytes) in [
        (&alice, "a.bin", &from_alice),
        (&carol, "c.bin", &from_carol),
    ] {
        let drive = app.pledging_drive().await.unwrap();
        let report = drive
            .upload(name, bytes.as_slice(), |_| ControlFlow::Continue(()))
            .await
            .unwrap();
        let file = drive.share_with(&report.file.id, "bob").await.unwrap();
        assert_eq!(file.shared_with, ["bob"]);
        shared.push(report.file.id);
    }

    // Bob logs in in another browser: both letters are there, each file opens bit-exact.
    let elsewhere = app(&nodes[6]);
    elsewhere.log_in("bob", PASSWORD).await.unwrap();
    let drive = elsewhere.pledging_drive().await.unwrap();
    let got = drive.shared_with_me().await.unwrap();
    assert_eq!((got.refused, got.fresh), (0, true));
    let mut names: Vec<(&str, &str)> = got
        .files
        .iter()
        .map(|f| (f.from.as_str(), f.name.as_str()))
        .collect();
    names.sort_unstable();
    assert_eq!(names, [("alice", "a.bin"), ("carol", "c.bin")]);
    let read = |token: String| {
        let client = elsewhere.client().clone();
        async move {
            let link = jellyfish_peer::files::ShareLink::from_token(&token).unwrap();
            let mut out = Vec::new();
            jellyfish_peer::files::download_link(&client, &Default::default(), &link, |b| {
                out.extend_from_slice(&b);
                ControlFlow::Continue(())
            })
            .await
            .map(|()| out)
        }
    };
    let token_of = |got: &jellyfish_peer::files::SharedWithMe, from: &str| {
        got.files
            .iter()
            .find(|f| f.from == from)
            .unwrap()
            .token
            .clone()
    };
    assert_eq!(read(token_of(&got, "alice")).await.unwrap(), from_alice);
    assert_eq!(read(token_of(&got, "carol")).await.unwrap(), from_carol);

    // Alice changes her password: her letter is signed again by her new key, and Bob still
    // reads it (a letter by her old key would be refused).
    alice.change_password(PASSWORD, NEW_PASSWORD).await.unwrap();
    let mut got = drive.shared_with_me().await.unwrap();
    for _ in 0..50 {
        if got.refused == 0 && got.files.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        got = drive.shared_with_me().await.unwrap();
    }
    assert_eq!((got.refused, got.files.len()), (0, 2), "{got:?}");

    // Carol stops sharing: what Bob was given opens nothing more, and the list drops it.
    let old = token_of(&got, "carol");
    carol
        .drive()
        .unwrap()
        .unshare_with(&shared[1], "bob", |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    let got = drive.shared_with_me().await.unwrap();
    assert_eq!(got.files.len(), 1);
    assert!(matches!(read(old).await, Err(FileError::LinkGone(_))));
}
