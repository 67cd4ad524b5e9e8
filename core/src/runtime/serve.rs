//! Running a cluster node until it is told to stop, and the registry of running nodes that
//! `raya stop` reads.

use std::path::PathBuf;

use crate::error::{Error, Result};

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

/// Blocks the calling thread until the process receives SIGINT or SIGTERM, then shuts Raya
/// down. This is what a worker node does: `RAYA_ROLE=worker` makes `raya::init` call it and
/// exit, so the user's binary, started with `RAYA_ADDRESS` and `RAYA_ROLE=worker`, serves the
/// cluster with the functions and actors it links.
///
/// ```no_run
/// raya::init(raya::Config::default().address("127.0.0.1:6379")).unwrap();
/// raya::serve().unwrap(); // until Ctrl-C or `raya stop`
/// ```
pub fn serve() -> Result<()> {
    crate::runtime::current()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Node(format!("cannot wait for signals: {e}")))?;
    let signal = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => Ok::<_, std::io::Error>("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    });
    match signal {
        Ok(s) => tracing::info!(signal = s, "stopping the node"),
        Err(e) => return Err(Error::Node(format!("cannot wait for signals: {e}"))),
    }
    crate::runtime::shutdown();
    Ok(())
}
