//! A worker node: serving the cluster until the process is told to stop.

use crate::error::{Error, Result};

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
