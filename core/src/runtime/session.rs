//! The node's session directory: its identity key, GCS tables and spilled objects.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, Result};

/// Where the node keeps its files; a temporary one is removed at shutdown.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) dir: PathBuf,
    pub(super) temporary: bool,
}

impl Session {
    /// The configured directory, or a fresh temporary one.
    pub(super) fn open(config: &Config) -> Result<Session> {
        let (dir, temporary) = match &config.session_dir {
            Some(d) => (d.clone(), false),
            None => {
                let stamp = raya_common::time::now_ms();
                let tag: u32 = rand::random();
                (
                    std::env::temp_dir()
                        .join("raya")
                        .join(format!("session_{stamp}_{}_{tag:08x}", std::process::id())),
                    true,
                )
            }
        };
        raya_common::private_fs::create_dir(&dir)
            .map_err(|e| Error::Node(format!("session directory {}: {e}", dir.display())))?;
        Ok(Session { dir, temporary })
    }

    /// Removes the directory when it is temporary.
    pub(super) fn remove_if_temporary(&self) {
        if self.temporary
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the session directory");
        }
    }
}
