//! Which cluster key a node uses (see [`raya_cluster::transport::ClusterKey`]), in this order:
//!
//! 1. none, when the config opts out ([`Config::insecure_no_cluster_key`]) — logged as a
//!    warning, since anyone who can reach the port may then join;
//! 2. the config's key, then the config's key file (`raya start --cluster-key-file`);
//! 3. `RAYA_CLUSTER_KEY` (64 hexadecimal digits);
//! 4. a head: the key in its session directory, created there the first time (so a head
//!    restarted on the same directory keeps it);
//! 5. a joining node: the key of the head this machine started last
//!    ([`current_cluster_key_file`]).
//!
//! A joining node that finds none fails to start with an error saying where to put one.

use std::path::{Path, PathBuf};

use raya_cluster::transport::ClusterKey;

use crate::config::Config;
use crate::error::{Error, Result};

/// The file holding the cluster key of the head this machine started last (0600; written next
/// to [`super::node_files::current_cluster_file`], read by nodes and drivers joining it).
pub fn current_cluster_key_file() -> PathBuf {
    std::env::temp_dir()
        .join("raya")
        .join("current_cluster_key")
}

/// The key a head keeps in its session directory.
pub(super) fn session_key_file(session: &Path) -> PathBuf {
    session.join("cluster_key")
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(what.to_string())
}

/// The key given explicitly: the config's, its key file's, or `RAYA_CLUSTER_KEY`.
fn explicit_cluster_key(
    key: Option<ClusterKey>,
    file: Option<&Path>,
) -> Result<Option<ClusterKey>> {
    if let Some(k) = key {
        return Ok(Some(k));
    }
    if let Some(f) = file {
        return ClusterKey::read(f).map(Some).map_err(bad);
    }
    match std::env::var("RAYA_CLUSTER_KEY") {
        Ok(v) if !v.trim().is_empty() => v
            .parse()
            .map(Some)
            .map_err(|e| bad(format!("RAYA_CLUSTER_KEY: {e}"))),
        _ => Ok(None),
    }
}

/// The key a node joining a cluster uses: the explicit one, else the recorded head's.
pub fn joining_cluster_key(key: Option<ClusterKey>, file: Option<&Path>) -> Result<ClusterKey> {
    if let Some(k) = explicit_cluster_key(key, file)? {
        return Ok(k);
    }
    let recorded = current_cluster_key_file();
    match ClusterKey::read(&recorded) {
        Ok(k) => Ok(k),
        Err(_) => Err(bad(format!(
            "no cluster key: pass --cluster-key-file (the head's session directory holds \
             `cluster_key`), set RAYA_CLUSTER_KEY, or join from the machine whose head wrote \
             {}; to join a cluster run without a key, opt out with --insecure-no-cluster-key",
            recorded.display()
        ))),
    }
}

/// The key this node's network uses, or `None` when the config opts out.
pub(super) fn resolve(config: &Config, session: &Path) -> Result<Option<ClusterKey>> {
    if config.insecure_no_cluster_key {
        tracing::warn!(
            "running WITHOUT a cluster key: any host that can reach this node's port can join \
             the cluster and act as any node"
        );
        return Ok(None);
    }
    if !config.head {
        return joining_cluster_key(config.cluster_key, config.cluster_key_file.as_deref())
            .map(Some);
    }
    if let Some(k) = explicit_cluster_key(config.cluster_key, config.cluster_key_file.as_deref())? {
        return Ok(Some(k));
    }
    let file = session_key_file(session);
    if file.exists() {
        return ClusterKey::read(&file).map(Some).map_err(bad);
    }
    let key = ClusterKey::generate();
    key.write(&file).map_err(|e| Error::Node(e.to_string()))?;
    tracing::info!(file = %file.display(), fingerprint = %key.fingerprint(), "created the cluster key");
    Ok(Some(key))
}
