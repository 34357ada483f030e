//! The relay's libp2p identity, persisted so that its peer id (which pages and peers hold)
//! survives restarts. This key is the only thing the relay writes to disk.

use std::{fs, io::Write, path::Path};

use libp2p::identity::Keypair;

use crate::RelayError;

const KEY_FILE: &str = "identity.key";

/// Reads `<data_dir>/identity.key`, or makes a new Ed25519 key and writes it there (mode 0600).
pub(crate) fn load_or_create(data_dir: &Path) -> Result<Keypair, RelayError> {
    let path = data_dir.join(KEY_FILE);
    let io_err = |source| RelayError::DataDir {
        path: path.clone(),
        source,
    };
    match fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| RelayError::BadKey {
            path: path.clone(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(data_dir).map_err(io_err)?;
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .map_err(|e| RelayError::Network(e.to_string()))?;
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).map_err(io_err)?;
            file.write_all(&bytes).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            tracing::info!(path = %path.display(), "created a new relay identity");
            Ok(keypair)
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_same_key_comes_back_and_garbage_is_refused() {
        let dir = std::env::temp_dir().join(format!("jf-relay-id-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = load_or_create(&dir).unwrap();
        let again = load_or_create(&dir).unwrap();
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());

        fs::write(dir.join(KEY_FILE), b"not a key").unwrap();
        assert!(matches!(
            load_or_create(&dir),
            Err(RelayError::BadKey { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
