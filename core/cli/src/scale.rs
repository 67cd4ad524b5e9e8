//! `raya scale`: a million queued trivial tasks and a hundred thousand actors on one node, with
//! the memory each costs.

use std::time::Instant;

use raya::prelude::*;
use serde::Serialize;

#[raya::remote]
fn tiny() -> u8 {
    1
}

#[raya::actor]
pub(crate) struct Idle {
    calls: u32,
}

#[raya::actor]
impl Idle {
    fn new() -> Self {
        Idle { calls: 0 }
    }
    fn touch(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }
}

/// Resident and peak resident memory of the process, in bytes (from /proc/self/status).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What the scale run found.
#[derive(Debug, Serialize)]
pub(crate) struct ScaleReport {
    /// Tasks submitted at once.
    pub tasks: usize,
    /// Seconds to submit them.
    pub submit_secs: f64,
    /// Seconds until every one finished.
    pub tasks_secs: f64,
    /// Tasks still queued when the last was submitted.
    pub queued_at_peak: usize,
    /// Resident memory added per task while they were queued (bytes).
    pub bytes_per_queued_task: f64,
    /// Actors created.
    pub actors: usize,
    /// Seconds until every actor was constructed.
    pub actors_secs: f64,
    /// Seconds for every actor to answer one call.
    pub calls_secs: f64,
    /// Resident memory added per live actor (bytes).
    pub bytes_per_actor: f64,
    /// Peak resident memory of the whole run (bytes).
    pub peak_rss: u64,
}

/// Runs the scale test.
pub(crate) fn run(tasks: usize, actors: usize) -> raya::Result<ScaleReport> {
    let (base, _) = memory();
    let start = Instant::now();
    let refs: Vec<ObjectRef<u8>> = (0..tasks).map(|_| tiny::remote()).collect();
    let submit_secs = start.elapsed().as_secs_f64();
    let (queued_rss, _) = memory();
    let done = refs
        .iter()
        .filter(|r| {
            raya::wait(std::slice::from_ref(*r), 1, Some(std::time::Duration::ZERO))
                .is_ok_and(|w| !w.0.is_empty())
        })
        .count();
    let queued_at_peak = tasks - done;
    let all: u64 = raya::get_all(&refs)?.into_iter().map(u64::from).sum();
    assert_eq!(all as usize, tasks, "every task ran once");
    let tasks_secs = start.elapsed().as_secs_f64();
    println!(
        "{tasks} tasks: submitted in {submit_secs:.2} s ({queued_at_peak} still queued then), all done in {tasks_secs:.2} s"
    );
    let bytes_per_queued_task = queued_rss.saturating_sub(base) as f64 / tasks.max(1) as f64;
    println!("memory per queued task: {bytes_per_queued_task:.0} bytes");
    drop(refs);

    let (base, _) = memory();
    let start = Instant::now();
    let handles: Vec<ActorHandle<Idle>> = (0..actors).map(|_| Idle::remote()).collect();
    let ready: Vec<ObjectRef<()>> = handles.iter().map(|h| h.ready()).collect();
    raya::get_all(&ready)?;
    let actors_secs = start.elapsed().as_secs_f64();
    let (actors_rss, _) = memory();
    let start = Instant::now();
    let calls: Vec<ObjectRef<u32>> = handles.iter().map(|h| h.touch()).collect();
    assert!(
        raya::get_all(&calls)?.iter().all(|c| *c == 1),
        "every actor answered once"
    );
    let calls_secs = start.elapsed().as_secs_f64();
    let bytes_per_actor = actors_rss.saturating_sub(base) as f64 / actors.max(1) as f64;
    println!(
        "{actors} actors: constructed in {actors_secs:.2} s, each answered a call in {calls_secs:.2} s; memory per actor: {bytes_per_actor:.0} bytes"
    );
    let (_, peak_rss) = memory();
    println!(
        "peak resident memory: {:.1} MiB",
        peak_rss as f64 / (1 << 20) as f64
    );
    Ok(ScaleReport {
        tasks,
        submit_secs,
        tasks_secs,
        queued_at_peak,
        bytes_per_queued_task,
        actors,
        actors_secs,
        calls_secs,
        bytes_per_actor,
        peak_rss,
    })
}
