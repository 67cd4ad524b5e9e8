//! The cluster's pre-shared key: 256 bits every member holds, with which libp2p's private
//! network layer (`pnet`) wraps each TCP connection before the Noise handshake. A host without
//! the key cannot finish a handshake with any node, so it never reaches a protocol.
//!
//! On disk the key uses the `swarm.key` format libp2p and IPFS share:
//!
//! ```text
//! /key/swarm/psk/1.0.0/
//! /base16/
//! <64 hexadecimal digits>
//! ```
//!
//! The bare 64 digits (as in `RAYA_CLUSTER_KEY`) are accepted too.

use std::path::Path;

use libp2p::pnet::PreSharedKey;

/// The key is missing, malformed or cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ClusterKeyError {
    /// Reading or writing the key file failed.
    #[error("cluster key {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a key.
    #[error("not a cluster key: {0} (expected 64 hexadecimal digits, or a swarm.key file)")]
    Malformed(String),
}

/// A cluster's 256-bit pre-shared key. Its `Debug` form shows only a fingerprint.
///
/// ```
/// use raya_cluster::transport::ClusterKey;
///
/// let key = ClusterKey::generate();
/// let again: ClusterKey = key.to_hex().parse().unwrap();
/// assert_eq!(key, again);
/// assert!("not a key".parse::<ClusterKey>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClusterKey([u8; 32]);

impl ClusterKey {
    /// A new random key.
    pub fn generate() -> ClusterKey {
        ClusterKey(rand::random())
    }

    /// The key as 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a key file (either format).
    pub fn read(path: &Path) -> Result<ClusterKey, ClusterKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterKeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        text.parse()
    }

    /// Writes the key to `path` in the `swarm.key` format, readable by the owner only.
    pub fn write(&self, path: &Path) -> Result<(), ClusterKeyError> {
        let text = format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", self.to_hex());
        raya_common::private_fs::write(path, text.as_bytes()).map_err(|source| {
            ClusterKeyError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// The key in the form libp2p's `pnet` takes.
    pub(crate) fn psk(&self) -> PreSharedKey {
        PreSharedKey::new(self.0)
    }

    /// A short public fingerprint (libp2p's, of the key's hash), safe to log.
    pub fn fingerprint(&self) -> String {
        self.psk().fingerprint().to_string()
    }
}

impl std::str::FromStr for ClusterKey {
    type Err = ClusterKeyError;

    fn from_str(s: &str) -> Result<ClusterKey, ClusterKeyError> {
        let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let hex = match lines.as_slice() {
            [hex] => *hex,
            ["/key/swarm/psk/1.0.0/", "/base16/", hex] => *hex,
            _ => return Err(ClusterKeyError::Malformed("unexpected layout".into())),
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ClusterKeyError::Malformed(format!(
                "{} characters of which not all are hexadecimal digits",
                hex.len()
            )));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|e| ClusterKeyError::Malformed(e.to_string()))?;
        }
        Ok(ClusterKey(key))
    }
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClusterKey")
            .field(&self.fingerprint())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips_and_is_private() {
        let dir = std::env::temp_dir().join(format!("raya-cluster-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        raya_common::private_fs::create_dir(&dir).unwrap();
        let path = dir.join("cluster_key");
        let key = ClusterKey::generate();
        key.write(&path).unwrap();
        assert_eq!(ClusterKey::read(&path).unwrap(), key);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // libp2p reads the same file.
        let text = std::fs::read_to_string(&path).unwrap();
        let theirs: PreSharedKey = text.parse().unwrap();
        assert_eq!(
            theirs.fingerprint().to_string(),
            key.psk().fingerprint().to_string()
        );
        assert!(!format!("{key:?}").contains(&key.to_hex()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "abc",
            &"g".repeat(64),
            &"a".repeat(63),
            &"a".repeat(65),
            "/key/swarm/psk/1.0.0/\n/base64/\nAAAA",
        ] {
            assert!(bad.parse::<ClusterKey>().is_err(), "{bad:?} was taken");
        }
        let hex = "ab".repeat(32);
        assert!(hex.parse::<ClusterKey>().is_ok());
        assert!(format!("  {hex}\n").parse::<ClusterKey>().is_ok());
    }
}
