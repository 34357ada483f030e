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
