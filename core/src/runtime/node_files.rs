//! The machine's registry of running cluster nodes, which `raya stop` and `raya status` read:
//! one file per node process, and the address of the head started last.

use std::path::PathBuf;

/// The directory where each running cluster node of this machine keeps a file named after its
/// process id (`raya stop` stops them).
pub fn nodes_dir() -> PathBuf {
    std::env::temp_dir().join("raya").join("nodes")
}

/// The file holding the address of the head this machine started last (`raya status` and
/// `RAYA_ADDRESS=auto` read it).
pub fn current_cluster_file() -> PathBuf {
    std::env::temp_dir().join("raya").join("current_cluster")
}

/// Records this process as a running node; the file is removed at shutdown.
pub(crate) fn register_process(role: &str, address: &str) -> Option<PathBuf> {
    let dir = nodes_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot record the node for `raya stop`");
        return None;
    }
    let path = dir.join(std::process::id().to_string());
    match std::fs::write(&path, format!("{role}\n{address}\n")) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot record the node for `raya stop`");
            None
        }
    }
}
