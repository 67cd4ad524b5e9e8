//! The node's ed25519 identity, kept in its session directory.

use std::fs;
use std::io::Write;
use std::path::Path;

use libp2p_identity::Keypair;

/// The identity file could not be read or written, or is corrupt.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("node identity {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file does not hold a valid key.
    #[error("node identity {path} is corrupt: {reason}")]
    Corrupt {
        /// The key file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Loads the ed25519 key in `dir/node_key`, creating it (readable by the owner only) when
/// absent. The node id is the key's libp2p peer id.
pub fn load_or_create(dir: &Path) -> Result<Keypair, IdentityError> {
    let path = dir.join("node_key");
    let io_err = |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    };
    match fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| IdentityError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            raya_common::private_fs::create_dir(dir).map_err(io_err)?;
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| IdentityError::Corrupt {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            let tmp = dir.join("node_key.tmp");
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(io_err)?;
            f.write_all(&bytes).map_err(io_err)?;
            f.sync_all().map_err(io_err)?;
            fs::rename(&tmp, &path).map_err(io_err)?;
            Ok(key)
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_across_loads_and_corruption_is_reported() {
        let dir = std::env::temp_dir().join(format!("raya-identity-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let a = load_or_create(&dir).unwrap();
        let b = load_or_create(&dir).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        fs::write(dir.join("node_key"), b"garbage").unwrap();
        assert!(matches!(
            load_or_create(&dir),
            Err(IdentityError::Corrupt { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
