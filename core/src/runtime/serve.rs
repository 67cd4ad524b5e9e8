//! A worker node: serving the cluster until the process is told to stop, and starting again as
//! a new node when the cluster declared it dead (fencing, see `runtime::fence`).

use crate::error::{Error, Result};

/// Blocks the calling thread until the process receives SIGINT or SIGTERM, then shuts Raya
/// down. This is what a worker node does: `RAYA_ROLE=worker` makes `raya::init` call it and
/// exit, so the user's binary, started with `RAYA_ADDRESS` and `RAYA_ROLE=worker`, serves the
/// cluster with the functions and actors it links.
///
/// A node that learns the head declared it dead (it stalled, or was cut off, for longer than
/// the node timeout, and the cluster moved its work elsewhere) drops everything it held and,
/// as [`Config::fenced`](crate::Config::fenced) says, joins again as a new node (a new identity,
/// a fresh session directory) and goes on serving, or stops with an error.
///
/// ```no_run
/// raya::init(raya::Config::default().address("127.0.0.1:6379")).unwrap();
/// raya::serve().unwrap(); // until Ctrl-C or `raya stop`
/// ```
pub fn serve() -> Result<()> {
    // First: a fence from here on is this loop's to act on.
    let _serving = crate::runtime::Serving::start();
    crate::runtime::current()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Node(format!("cannot wait for signals: {e}")))?;
    let (mut term, mut int) = rt
        .block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })
        .map_err(|e| Error::Node(format!("cannot wait for signals: {e}")))?;
    loop {
        let woken = rt.block_on(async {
            tokio::select! {
                _ = term.recv() => Err("SIGTERM"),
                _ = int.recv() => Err("SIGINT"),
                reason = crate::runtime::fenced() => Ok(reason),
            }
        });
        let reason = match woken {
            Err(signal) => {
                tracing::info!(signal, "stopping the node");
                crate::runtime::shutdown();
                return Ok(());
            }
            Ok(reason) => reason,
        };
        let then = crate::runtime::fenced_policy();
        if then == crate::config::Fenced::Stop {
            crate::runtime::end(format!(
                "declared dead by the cluster ({reason}) and stopped"
            ));
            return Err(Error::Node(format!(
                "this node was declared dead by the cluster ({reason}) and stopped"
            )));
        }
        crate::runtime::rejoin()?;
        tracing::info!(node = %crate::runtime::current()?.node, "rejoined the cluster as a new node");
    }
}
