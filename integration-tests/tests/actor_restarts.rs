//! Actor restarts on one node, as Ray's `test_actor_restart_with_retry`,
//! `test_named_actor_max_task_retries` and `test_actor_creation_task_crash` check them: calls
//! queued behind a crash run on the new instance, a call running when the actor restarts runs
//! again when `max_task_retries` allows, a constructor that panics is a crash retried while
//! `max_restarts` allows (the first construction too), and names and namespaces Ray refuses are
//! refused.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use raya::prelude::*;
use raya::{Error, TaskErrorKind};
use raya_integration_tests::{config, eventually, with_raya};

static CRASHED: AtomicBool = AtomicBool::new(false);
static PAUSES: AtomicUsize = AtomicUsize::new(0);

/// Counts calls since it was (re)constructed; `crash_once` panics the first time it runs.
#[raya::actor(max_restarts = -1, max_task_retries = -1)]
struct Resilient {
    calls: u32,
}

#[raya::actor]
impl Resilient {
    fn new() -> Self {
        Resilient { calls: 0 }
    }
    fn work(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }
    fn crash_once(&mut self) -> u32 {
        if !CRASHED.swap(true, Ordering::SeqCst) {
            panic!("crashed once");
        }
        self.calls += 1;
        self.calls
    }
    fn pause(&self, ms: u64) -> u32 {
        PAUSES.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(ms));
        self.calls
    }
}

static SLOW_STARTS: AtomicUsize = AtomicUsize::new(0);
static BOOMED: AtomicBool = AtomicBool::new(false);

/// An async actor: `slow` awaits while `boom_once` crashes the actor.
#[raya::actor(max_restarts = 1, max_task_retries = -1, max_concurrency = 4)]
struct Waiter {
    incarnation: usize,
}

#[raya::actor]
impl Waiter {
    fn new() -> Self {
        Waiter {
            incarnation: SLOW_STARTS.load(Ordering::SeqCst),
        }
    }
    async fn slow(&self, ms: u64) -> usize {
        SLOW_STARTS.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.incarnation
    }
    async fn boom_once(&self) -> u8 {
        if !BOOMED.swap(true, Ordering::SeqCst) {
            panic!("boom");
        }
        1
    }
}

static CTOR_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

/// Its constructor panics its first `panics` times.
#[raya::actor]
struct ShakyStart;

#[raya::actor]
impl ShakyStart {
    fn new(panics: usize) -> Self {
        if CTOR_ATTEMPTS.fetch_add(1, Ordering::SeqCst) < panics {
            panic!("the constructor panicked");
        }
        ShakyStart
    }
    fn ping(&self) -> u8 {
        1
    }
}

#[test]
fn calls_queued_behind_a_crash_run_on_the_new_instance() {
    with_raya(config(2), || {
        CRASHED.store(false, Ordering::SeqCst);
        let a = Resilient::remote();
        // The first call holds the actor while the rest queue behind it.
        let first = a.pause(200);
        let calls = [a.work(), a.crash_once(), a.work(), a.work()];
        assert_eq!(raya::get(&first).unwrap(), 0);
        let got: Vec<u32> = calls.iter().map(|c| raya::get(c).unwrap()).collect();
        // `crash_once` crashed the first instance (after one `work`) and ran again first on
        // the new one; the calls queued behind it ran there, none failed.
        assert_eq!(got, vec![1, 1, 2, 3]);
    });
}

#[test]
fn a_call_running_when_the_actor_restarts_runs_again() {
    with_raya(config(2), || {
        SLOW_STARTS.store(0, Ordering::SeqCst);
        BOOMED.store(false, Ordering::SeqCst);
        let w = Waiter::remote();
        let slow = w.slow(2000);
        assert!(eventually(Duration::from_secs(30), || SLOW_STARTS
            .load(Ordering::SeqCst)
            > 0));
        // Crashes the actor while `slow` awaits: `slow` runs again on the new instance.
        assert_eq!(raya::get(&w.boom_once()).unwrap(), 1);
        assert_eq!(
            raya::get(&slow).unwrap(),
            1,
            "slow answered from the new instance"
        );
        assert_eq!(SLOW_STARTS.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_running_call_restarted_by_kill_runs_again_or_finishes() {
    with_raya(config(2), || {
        let a = Resilient::remote();
        assert_eq!(raya::get(&a.work()).unwrap(), 1);
        // A synchronous call cannot be stopped on its thread: it finishes there, and the
        // calls queued behind it run on the new instance.
        let pauses = PAUSES.load(Ordering::SeqCst);
        let running = a.pause(300);
        let after = a.work();
        assert!(eventually(Duration::from_secs(30), || PAUSES
            .load(Ordering::SeqCst)
            > pauses));
        raya::kill_with(&a, true).unwrap();
        assert_eq!(raya::get(&running).unwrap(), 1);
        assert_eq!(raya::get(&after).unwrap(), 1, "ran on the new instance");
    });
}

#[test]
fn a_constructor_that_panics_is_retried_while_restarts_allow() {
    with_raya(config(2), || {
        CTOR_ATTEMPTS.store(0, Ordering::SeqCst);
        let a = ShakyStart::options().max_restarts(2).remote(2).unwrap();
        assert_eq!(raya::get(&a.ping()).unwrap(), 1);
        assert_eq!(CTOR_ATTEMPTS.load(Ordering::SeqCst), 3);

        CTOR_ATTEMPTS.store(0, Ordering::SeqCst);
        let b = ShakyStart::options().max_restarts(1).remote(2).unwrap();
        let e = raya::get_timeout(&b.ready(), Duration::from_secs(30)).unwrap_err();
        assert!(e.to_string().contains("the constructor panicked"), "{e}");
        let e = raya::get(&b.ping()).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::ActorDied), "{e}");
        assert_eq!(CTOR_ATTEMPTS.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn names_and_namespaces_ray_refuses_are_refused() {
    with_raya(config(1), || {
        let refused = |r: raya::Result<ActorHandle<ShakyStart>>| {
            assert!(matches!(r, Err(Error::InvalidArgument(_))), "accepted");
        };
        refused(ShakyStart::options().name("").remote(0));
        refused(ShakyStart::options().name("a").namespace("").remote(0));
        refused(raya::get_actor::<ShakyStart>(""));
        refused(raya::get_actor_in::<ShakyStart>("a", ""));
        // A valid name still works.
        let named = ShakyStart::options().name("shaky").remote(0).unwrap();
        assert_eq!(raya::get(&named.ping()).unwrap(), 1);
        assert!(raya::get_actor::<ShakyStart>("shaky").is_ok());
    });
    // A job's namespace is refused empty too, before the node starts.
    let _turn = raya_integration_tests::turn();
    match raya::init(config(1).namespace("")) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("namespace"), "{m}"),
        other => panic!("expected a clear error, got {other:?}"),
    }
    assert!(!raya::is_initialized());
}
