//! The page's TypeScript types, generated from the Rust types the bindings hand to JavaScript
//! (with ts-rs) and from the error codes ([`AccountError::CODES`], [`FileError::CODES`]), so a
//! field renamed in Rust cannot leave the page's types behind. `bindings/mod.rs` emits
//! `src/bindings.d.ts` with the wasm module; this test fails when that file is not what the
//! Rust types say. To write it anew after changing a type:
//!
//! ```text
//! JELLYFISH_WRITE_TS=1 cargo test --release -p jellyfish-peer --lib ts_types
//! ```

use ts_rs::{Config, TS};

use crate::{
    account::{AccountError, AccountInfo, PasswordStrength},
    audit,
    files::{FileError, FileInfo, LinkInfo, Quota, SharedFile, SharedWithMe, UploadReport},
    net::{direct::Link, Event, HelloReply, KnownPeer, PeerInfo, RelayState, Status},
    store::{StorageInfo, Usage},
};

/// Where the generated declarations live, beside the bindings that include them.
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bindings.d.ts");

fn declare<T: TS>(cfg: &Config) -> String {
    // ts-rs ends some lines in a space; a committed file should not.
    let decl = T::decl(cfg);
    let lines: Vec<&str> = decl.lines().map(str::trim_end).collect();
    format!("export {}\n", lines.join("\n"))
}

fn union(codes: &[&str]) -> String {
    codes
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The whole of `bindings.d.ts`.
fn generate() -> String {
    // serde-wasm-bindgen sends u64 as a JavaScript number.
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types by src/ts_types.rs: do not edit by hand.\n\
         // JELLYFISH_WRITE_TS=1 cargo test --release -p jellyfish-peer --lib ts_types\n",
    );
    for decl in [
        declare::<Link>(&cfg),
        declare::<RelayState>(&cfg),
        declare::<Status>(&cfg),
        declare::<KnownPeer>(&cfg),
        declare::<HelloReply>(&cfg),
        declare::<Event>(&cfg),
        declare::<PeerInfo>(&cfg),
        declare::<PasswordStrength>(&cfg),
        declare::<AccountInfo>(&cfg),
        declare::<Usage>(&cfg),
        declare::<StorageInfo>(&cfg),
        declare::<audit::Failure>(&cfg),
        declare::<audit::Report>(&cfg),
        declare::<FileInfo>(&cfg),
        declare::<UploadReport>(&cfg),
        declare::<LinkInfo>(&cfg),
        declare::<SharedFile>(&cfg),
        declare::<SharedWithMe>(&cfg),
        declare::<Quota>(&cfg),
        declare::<crate::holder::RepairLog>(&cfg),
    ] {
        out.push_str(&decl);
    }
    out.push_str(&format!(
        "/** How sign_up, log_in and change_password reject: switch on `code`, show `message`. */\n\
         export interface AccountFailure extends Error {{\n  code: {};\n  \
         /** With network_unreachable from a lookup: peers heard, and peers needed. */\n  \
         heard?: number; needed?: number;\n}}\n",
        union(AccountError::CODES)
    ));
    out.push_str(&format!(
        "/** How upload, download, list_files, delete_file, audit and quota reject once logged in\n \
         * (before log-in they reject with a plain Error, \"log in first\"). */\n\
         export interface FileFailure extends Error {{\n  code: {};\n  \
         /** With over_quota, in bytes: the upload's size, what is used, what is allowed. */\n  \
         size?: number; used?: number; quota?: number;\n}}\n",
        union(FileError::CODES)
    ));
    out
}

#[test]
fn bindings_d_ts_is_what_the_rust_types_say() {
    let generated = generate();
    if std::env::var_os("JELLYFISH_WRITE_TS").is_some() {
        std::fs::write(PATH, &generated).unwrap_or_else(|e| panic!("cannot write {PATH}: {e}"));
        return;
    }
    let committed = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "{PATH} is stale; write it anew with JELLYFISH_WRITE_TS=1 cargo test --release -p \
         jellyfish-peer --lib ts_types\n--- generated:\n{generated}"
    );
}

#[test]
fn every_error_code_is_declared_once() {
    use crate::net::NetError;
    for codes in [AccountError::CODES, FileError::CODES] {
        let mut sorted = codes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len(), "a code listed twice: {codes:?}");
    }
    let account = [
        AccountError::BadUsername,
        AccountError::NameTaken,
        AccountError::UnknownUser,
        AccountError::WrongPassword,
        AccountError::Damaged(String::new()),
        AccountError::NotHeldElsewhere,
        AccountError::Network(NetError::Stopped),
        AccountError::Unreachable {
            heard: 0,
            needed: 3,
        },
        AccountError::WeakPassword {
            warning: String::new(),
            advice: String::new(),
        },
        AccountError::PasswordCheck(String::new()),
    ];
    for e in &account {
        assert!(AccountError::CODES.contains(&e.code()), "{e:?}");
    }
    let files = [
        FileError::NoHolder {
            index: 0,
            attempts: Default::default(),
        },
        FileError::Unavailable {
            name: String::new(),
            index: 0,
            attempts: Default::default(),
        },
        FileError::IndexUnavailable(Default::default()),
        FileError::OverQuota {
            size: 1,
            used: 0,
            quota: 0,
        },
        FileError::Cancelled,
        FileError::NoSuchFile,
        FileError::BadName,
        FileError::Read(String::new()),
        FileError::Damaged(String::new()),
        FileError::Net(NetError::Stopped),
        FileError::Net(NetError::TooFewPeers {
            heard: 0,
            needed: 3,
        }),
        FileError::LetterUnconfirmed {
            user: String::new(),
            source: Box::new(NetError::Stopped),
        },
    ];
    for e in &files {
        assert!(FileError::CODES.contains(&e.code()), "{e:?}");
    }
}
