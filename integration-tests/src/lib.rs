//! Helpers shared by the integration tests.

use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Stop;

impl Drop for Stop {
    fn drop(&mut self) {
        raya::shutdown();
    }
}

/// Runs `f` with Raya started on `config`, then shuts Raya down (even when `f` panics). Tests of
/// one binary take turns: a process runs one Raya at a time.
pub fn with_raya<R>(config: raya::Config, f: impl FnOnce() -> R) -> R {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let _turn = turn();
    raya::init(config).expect("raya::init");
    let _stop = Stop;
    f()
}

/// Waits for this process's turn to run a Raya (for a test that calls `raya::init` itself).
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A configuration with `cpus` CPUs and a small object store, for tests.
pub fn config(cpus: usize) -> raya::Config {
    raya::Config::default()
        .num_cpus(cpus)
        .object_store_memory(1 << 30)
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held. For conditions that
/// become true asynchronously (a heartbeat, a flush), not as a timing assertion.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
