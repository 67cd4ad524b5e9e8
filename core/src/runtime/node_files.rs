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
    if let Err(e) = raya_common::private_fs::create_dir(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot record the node for `raya stop`");
        return None;
    }
    let path = dir.join(std::process::id().to_string());
    let started = process_start(std::process::id()).unwrap_or(0);
    let record = format!("{role}\n{address}\nstarted {started}\n");
    match raya_common::private_fs::write(&path, record.as_bytes()) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot record the node for `raya stop`");
            None
        }
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`, field 22): with
/// the pid, what tells a process apart from a later one that reused its pid.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `record`, the content of a file of [`nodes_dir`] named after `pid`, describes the
/// process running as `pid` now: the same pid and the same start time. A record of a node
/// that exited, whose pid another process took since, does not.
pub fn record_matches_process(pid: u32, record: &str) -> bool {
    let recorded = record
        .lines()
        .find_map(|l| l.strip_prefix("started "))
        .and_then(|s| s.trim().parse::<u64>().ok());
    match (recorded, process_start(pid)) {
        (Some(a), Some(b)) => a == b && a != 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_matches_only_the_process_that_wrote_it() {
        let me = std::process::id();
        let started = process_start(me).expect("this process has a start time");
        assert!(record_matches_process(
            me,
            &format!("node\naddr\nstarted {started}\n")
        ));
        // Another start time: the pid was reused by another process.
        assert!(!record_matches_process(
            me,
            &format!("node\naddr\nstarted {}\n", started + 1)
        ));
        // A record without a start time is not trusted.
        assert!(!record_matches_process(me, "node\naddr\n"));
    }
}
