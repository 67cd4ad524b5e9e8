//! Remote functions: submission, arguments, results, errors, retries, cancellation, resources.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use raya::prelude::*;
use raya::{Error, TaskErrorKind};
use raya_integration_tests::{config, eventually, with_raya};

#[raya::remote]
fn square(x: i64) -> i64 {
    x * x
}

#[raya::remote]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[raya::remote]
fn concat(words: Vec<String>, sep: String) -> String {
    words.join(&sep)
}

#[raya::remote]
fn nothing() {}

#[raya::remote(num_returns = 2)]
fn div_mod(a: u64, b: u64) -> (u64, u64) {
    (a / b, a % b)
}

#[raya::remote]
fn digits(n: u64) -> Vec<u64> {
    n.to_string()
        .chars()
        .map(|c| c as u64 - '0' as u64)
        .collect()
}

#[raya::remote]
async fn async_double(x: u32) -> u32 {
    x * 2
}

#[raya::remote]
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = fib::remote(n - 1);
    let b = fib::remote(n - 2);
    raya::get(&a).unwrap() + raya::get(&b).unwrap()
}

#[raya::remote]
fn sum_of_squares(n: i64) -> raya::Result<i64> {
    let refs: Vec<ObjectRef<i64>> = (0..n).map(square::remote).collect();
    Ok(raya::get_all(&refs)?.into_iter().sum())
}

#[derive(Debug)]
struct MyError(String);
impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "my error: {}", self.0)
    }
}

#[raya::remote]
fn fails(msg: String) -> Result<u32, MyError> {
    Err(MyError(msg))
}

#[raya::remote(max_retries = 0)]
fn panics(msg: String) -> u32 {
    panic!("{msg}")
}

#[raya::remote]
fn plus_one(x: u32) -> u32 {
    x + 1
}

#[raya::remote]
fn add_u64(a: u64, b: u64) -> u64 {
    a + b
}

#[raya::remote]
fn relay(x: ObjectRef<u32>) -> raya::Result<u32> {
    raya::get(&x)
}

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[raya::remote(max_retries = 3, retry_exceptions = true)]
fn flaky_with_retries() -> Result<usize, String> {
    let n = FLAKY_CALLS.fetch_add(1, Ordering::SeqCst);
    if n < 2 {
        Err(format!("attempt {n} failed"))
    } else {
        Ok(n)
    }
}

static FLAKY_NO_RETRY: AtomicUsize = AtomicUsize::new(0);

#[raya::remote(max_retries = 3)]
fn flaky_without_retry_exceptions() -> Result<usize, String> {
    let n = FLAKY_NO_RETRY.fetch_add(1, Ordering::SeqCst);
    Err(format!("attempt {n} failed"))
}

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MAX_RUNNING: AtomicUsize = AtomicUsize::new(0);

#[raya::remote]
/// Runs until `target` tasks have been running at once (or 10 s pass), so that the highest
/// concurrency the scheduler allows is observed whatever the machine's load.
fn occupy(target: usize) {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_RUNNING.fetch_max(now, Ordering::SeqCst);
    let mut waited = 0;
    while MAX_RUNNING.load(Ordering::SeqCst) < target && waited < 10_000 {
        std::thread::sleep(Duration::from_millis(1));
        waited += 1;
    }
    std::thread::sleep(Duration::from_millis(2));
    RUNNING.fetch_sub(1, Ordering::SeqCst);
}

#[raya::remote]
fn sleeper(ms: u64) -> u64 {
    let mut slept = 0;
    while slept < ms && !raya::is_cancelled() {
        std::thread::sleep(Duration::from_millis(5));
        slept += 5;
    }
    slept
}

#[raya::remote]
fn whoami() -> (Option<raya::TaskId>, Option<raya::WorkerId>) {
    let ctx = raya::runtime_context().unwrap();
    (ctx.task_id, ctx.worker_id)
}

#[raya::remote(resources(sensor = 1))]
fn read_sensor() -> u32 {
    7
}

#[raya::remote]
fn trivial() -> u8 {
    1
}

#[test]
fn tasks_return_values_and_accept_refs() {
    with_raya(config(2), || {
        assert_eq!(square::remote(4).get().unwrap(), 16);
        let three = raya::put(3i64).unwrap();
        assert_eq!(raya::get(&add::remote(&three, 4)).unwrap(), 7);
        // Chained without waiting: the second task runs when the first one's result is ready.
        let chained = add::remote(square::remote(3), square::remote(4));
        assert_eq!(raya::get(&chained).unwrap(), 25);
        let words = vec!["a".to_string(), "b".to_string()];
        assert_eq!(raya::get(&concat::remote(words, "-")).unwrap(), "a-b");
        raya::get(&nothing::remote()).unwrap();
    });
}

#[test]
fn multiple_returns_and_splits() {
    with_raya(config(2), || {
        let (q, r) = div_mod::remote(17, 5);
        assert_eq!((q.get().unwrap(), r.get().unwrap()), (3, 2));
        let whole = digits::remote(405);
        assert_eq!(whole.get().unwrap(), vec![4, 0, 5]);
        let parts = digits::remote_split(3, 405);
        assert_eq!(raya::get_all(&parts).unwrap(), vec![4, 0, 5]);
        let wrong = digits::remote_split(2, 405);
        let e = raya::get(&wrong[0]).unwrap_err();
        assert!(e.to_string().contains("asked for 2 returns"), "{e}");
    });
}

#[test]
fn async_functions_run_as_tasks() {
    with_raya(config(2), || {
        let refs: Vec<_> = (0..20).map(async_double::remote).collect();
        assert_eq!(
            raya::get_all(&refs).unwrap(),
            (0..20).map(|x| x * 2).collect::<Vec<_>>()
        );
    });
}

#[test]
fn nested_fan_out_does_not_deadlock_on_two_cpus() {
    with_raya(config(2), || {
        // fib(15) submits about 2,000 tasks, most of them blocked in `get` on their children.
        assert_eq!(raya::get(&fib::remote(15)).unwrap(), 610);
        assert_eq!(
            raya::get(&sum_of_squares::remote(50)).unwrap(),
            // The sum's type is spelled out: the wire format's rkyv brings `rend`, whose
            // `PartialEq<i64_le> for i64` leaves `i64 == <inferred>` ambiguous.
            (0..50).map(|x| x * x).sum::<i64>()
        );
    });
}

#[test]
fn errors_are_values_with_a_chain() {
    with_raya(config(2), || {
        let e = raya::get(&fails::remote("bad input")).unwrap_err();
        let te = e.task_error().expect("a task error");
        assert_eq!(te.kind, TaskErrorKind::Application);
        assert_eq!(te.message, "my error: bad input");
        assert!(te.chain[0].function.ends_with("tasks::fails"));

        let p = panics::remote("boom");
        let e = raya::get(&p).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::Panic));
        assert!(e.to_string().contains("boom"), "{e}");

        // A dependent fails with the same error, its frame appended.
        let dep = plus_one::remote(p.clone());
        let dep2 = plus_one::remote(dep);
        let e = raya::get(&dep2).unwrap_err();
        let te = e.task_error().unwrap();
        assert_eq!(te.kind, TaskErrorKind::Panic);
        let chain: Vec<&str> = te
            .chain
            .iter()
            .map(|f| f.function.rsplit("::").next().unwrap())
            .collect();
        assert_eq!(chain, ["panics", "plus_one", "plus_one"]);
        // A task that reads the failed object itself passes the chain on too.
        let e = raya::get(&relay::remote(p)).unwrap_err();
        let chain: Vec<&str> = e
            .task_error()
            .unwrap()
            .chain
            .iter()
            .map(|f| f.function.rsplit("::").next().unwrap())
            .collect();
        assert_eq!(chain, ["panics", "relay"]);
    });
}

#[test]
fn application_errors_are_retried_only_with_retry_exceptions() {
    with_raya(config(2), || {
        assert_eq!(raya::get(&flaky_with_retries::remote()).unwrap(), 2);
        assert_eq!(FLAKY_CALLS.load(Ordering::SeqCst), 3);
        let e = raya::get(&flaky_without_retry_exceptions::remote()).unwrap_err();
        assert!(e.to_string().contains("attempt 0 failed"), "{e}");
        assert_eq!(
            FLAKY_NO_RETRY.load(Ordering::SeqCst),
            1,
            "no retry without retry_exceptions"
        );
        // Per call: retry_exceptions switched on.
        FLAKY_NO_RETRY.store(0, Ordering::SeqCst);
        let r = flaky_without_retry_exceptions::options()
            .retry_exceptions(true)
            .max_retries(2)
            .remote();
        let e = raya::get(&r).unwrap_err();
        assert!(e.to_string().contains("attempt 2 failed"), "{e}");
        assert_eq!(FLAKY_NO_RETRY.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn resources_limit_concurrency() {
    with_raya(config(2), || {
        RUNNING.store(0, Ordering::SeqCst);
        MAX_RUNNING.store(0, Ordering::SeqCst);
        let refs: Vec<_> = (0..8).map(|_| occupy::remote(2)).collect();
        raya::get_all(&refs).unwrap();
        assert_eq!(
            MAX_RUNNING.load(Ordering::SeqCst),
            2,
            "two CPUs, one CPU per task"
        );

        MAX_RUNNING.store(0, Ordering::SeqCst);
        let refs: Vec<_> = (0..4)
            .map(|_| occupy::options().num_cpus(2.0).remote(1))
            .collect();
        raya::get_all(&refs).unwrap();
        assert_eq!(
            MAX_RUNNING.load(Ordering::SeqCst),
            1,
            "2-CPU tasks run one at a time"
        );

        MAX_RUNNING.store(0, Ordering::SeqCst);
        let refs: Vec<_> = (0..6)
            .map(|_| occupy::options().num_cpus(0.5).remote(4))
            .collect();
        raya::get_all(&refs).unwrap();
        assert_eq!(
            MAX_RUNNING.load(Ordering::SeqCst),
            4,
            "half-CPU tasks run four at a time"
        );
    });
}

#[test]
fn a_hard_node_affinity_that_cannot_be_met_is_unschedulable_and_a_soft_one_runs_here() {
    with_raya(config(2), || {
        let me = raya::runtime_context().unwrap().node_id;
        let gone: raya::NodeId = raya::NodeId::random();
        let on = |node, soft| raya::SchedulingStrategy::NodeAffinity { node, soft };
        let hard = square::options()
            .scheduling_strategy(on(gone, false))
            .remote(3);
        let e = raya::get_timeout(&hard, Duration::from_secs(30)).unwrap_err();
        assert_eq!(
            e.task_error_kind(),
            Some(TaskErrorKind::Unschedulable),
            "{e}"
        );
        assert!(e.to_string().contains(&gone.to_string()), "{e}");
        // On this node, but more than it can ever fit: unschedulable too, saying what it has.
        let too_big = square::options()
            .num_cpus(3.0)
            .scheduling_strategy(on(me, false))
            .remote(3);
        let e = raya::get_timeout(&too_big, Duration::from_secs(30)).unwrap_err();
        assert_eq!(
            e.task_error_kind(),
            Some(TaskErrorKind::Unschedulable),
            "{e}"
        );
        let soft = square::options()
            .scheduling_strategy(on(gone, true))
            .remote(3);
        assert_eq!(raya::get(&soft).unwrap(), 9);
        // On one node, Spread runs here.
        let spread = square::options()
            .scheduling_strategy(raya::SchedulingStrategy::Spread)
            .remote(4);
        assert_eq!(raya::get(&spread).unwrap(), 16);
    });
}

#[test]
fn label_selectors_match_the_nodes_labels_and_bad_ones_are_refused() {
    with_raya(config(2).label("region", "us-west"), || {
        let here = square::options()
            .label_selector("region", "in(us-west,us-east)")
            .remote(5);
        assert_eq!(raya::get(&here).unwrap(), 25);
        let elsewhere = square::options()
            .label_selector("region", "!us-west")
            .remote(5);
        let e = raya::get_timeout(&elsewhere, Duration::from_secs(30)).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::Infeasible), "{e}");
        assert!(e.to_string().contains("region!=us-west"), "{e}");
        let malformed = square::options().label_selector("region", "in()").remote(5);
        let e = raya::get(&malformed).unwrap_err();
        assert_eq!(
            e.task_error_kind(),
            Some(TaskErrorKind::InvalidOptions),
            "{e}"
        );
    });
    let e = raya::init(config(1).label("bad key", "v")).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(!raya::is_initialized());
}

#[test]
fn infeasible_requests_fail_with_a_clear_error() {
    with_raya(config(2).resource("sensor", 1.0), || {
        let too_big = square::options().num_cpus(3.0).remote(2);
        let e = raya::get_timeout(&too_big, Duration::from_secs(30)).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::Infeasible), "{e}");
        assert!(e.to_string().contains("CPU short by 1"), "{e}");

        let gpu = square::options().num_gpus(1.0).remote(2);
        let e = raya::get_timeout(&gpu, Duration::from_secs(30)).unwrap_err();
        assert!(e.to_string().contains("GPU"), "{e}");

        let unknown = square::options().resource("tpu", 1.0).remote(2);
        let e = raya::get_timeout(&unknown, Duration::from_secs(30)).unwrap_err();
        assert!(e.to_string().contains("tpu"), "{e}");

        assert_eq!(
            raya::get(&read_sensor::remote()).unwrap(),
            7,
            "a custom resource the node has"
        );
        let bad = square::options().num_cpus(-1.0).remote(2);
        let e = raya::get(&bad).unwrap_err();
        assert_eq!(
            e.task_error_kind(),
            Some(TaskErrorKind::InvalidOptions),
            "{e}"
        );
    });
}

#[test]
fn cancelling_reports_cancellation_to_dependents() {
    with_raya(config(1), || {
        // One CPU: the first sleeper runs, the second waits in the queue.
        let running = sleeper::remote(10_000);
        let queued = sleeper::remote(10_000);
        assert!(eventually(Duration::from_secs(10), || {
            raya::available_resources()
                .unwrap()
                .get("CPU")
                .copied()
                .unwrap_or(0.0)
                == 0.0
        }));
        let after = add_u64::remote(queued.clone(), 1);
        raya::cancel(&queued, false).unwrap();
        let e = raya::get(&queued).unwrap_err();
        assert!(e.is_cancelled(), "{e}");
        let e = raya::get(&after).unwrap_err();
        assert!(
            e.is_cancelled(),
            "a dependent of a cancelled task reports cancellation: {e}"
        );
        // A running task sees the flag and its result is reported as cancelled at once, with
        // its frame; a dependent adds its own.
        let dependent = add_u64::remote(running.clone(), 1);
        raya::cancel(&running, true).unwrap();
        let e = raya::get(&running).unwrap_err();
        assert!(e.is_cancelled(), "{e}");
        let frames = |e: &raya::Error| -> Vec<String> {
            e.task_error()
                .unwrap()
                .chain
                .iter()
                .map(|f| f.function.rsplit("::").next().unwrap().to_string())
                .collect()
        };
        assert_eq!(frames(&e), ["sleeper"]);
        let e = raya::get(&dependent).unwrap_err();
        assert!(e.is_cancelled(), "{e}");
        assert_eq!(frames(&e), ["sleeper", "add_u64"]);
        // The task records say so.
        let running_id = running.id().task;
        assert!(eventually(Duration::from_secs(10), || {
            raya::list_tasks(1000)
                .unwrap()
                .iter()
                .any(|t| t.task_id == running_id && t.state == raya::TaskState::Cancelled)
        }));
        // Cancelling a finished task changes nothing.
        let done = square::remote(2);
        assert_eq!(raya::get(&done).unwrap(), 4);
        raya::cancel(&done, false).unwrap();
        assert_eq!(raya::get(&done).unwrap(), 4);
        // A put is not a task.
        assert!(matches!(
            raya::cancel(&raya::put(1u8).unwrap(), false),
            Err(Error::InvalidArgument(_))
        ));
    });
}

#[test]
fn functions_can_be_called_by_name() {
    with_raya(config(2), || {
        let r: ObjectRef<i64> = raya::FunctionCall::new(square::NAME)
            .arg(5i64)
            .remote()
            .unwrap();
        assert_eq!(raya::get(&r).unwrap(), 25);
        let e = raya::FunctionCall::new("nope::missing")
            .arg(5i64)
            .remote::<i64>()
            .unwrap_err();
        assert_eq!(e, Error::UnknownFunction("nope::missing".into()));
        assert!(e.to_string().contains("nope::missing"));
        // Extra arguments are an error, as are missing ones.
        let r: ObjectRef<i64> = raya::FunctionCall::new(square::NAME)
            .arg(5i64)
            .arg(6i64)
            .remote()
            .unwrap();
        let e = raya::get(&r).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::ArgumentType));
        assert!(e.to_string().contains("takes 1 argument, 2 given"), "{e}");
        // The wrong argument type is caught when the task runs.
        let r: ObjectRef<i64> = raya::FunctionCall::new(square::NAME)
            .arg(5i32)
            .remote()
            .unwrap();
        let e = raya::get(&r).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::ArgumentType));
        assert!(e.to_string().contains("expected i64, found i32"), "{e}");
        // The wrong result type is caught when it is read.
        let r: ObjectRef<String> = raya::FunctionCall::new(square::NAME)
            .arg(5i64)
            .remote()
            .unwrap();
        assert!(matches!(raya::get(&r), Err(Error::TypeMismatch { .. })));
    });
}

#[test]
fn a_task_making_more_values_than_asked_for_fails_as_an_application_error() {
    // `div_mod` makes two values; called by name it is asked for one. The same rule holds for
    // actor calls: one execution path stores results for both.
    with_raya(config(1), || {
        let r: ObjectRef<u64> = raya::FunctionCall::new(div_mod::NAME)
            .arg(17u64)
            .arg(5u64)
            .max_retries(0)
            .remote()
            .unwrap();
        let e = raya::get(&r).unwrap_err();
        assert_eq!(e.task_error_kind(), Some(TaskErrorKind::Application), "{e}");
        assert!(e.to_string().contains("returned 2 values but 1"), "{e}");
    });
}

#[test]
fn tasks_see_their_runtime_context() {
    with_raya(config(2), || {
        let r = whoami::remote();
        let (task, worker) = raya::get(&r).unwrap();
        assert_eq!(task, Some(r.id().task));
        assert!(worker.is_some());
        let ctx = raya::runtime_context().unwrap();
        assert_eq!(ctx.task_id, None);
        assert!(ctx.namespace.starts_with("anonymous-job-"));
    });
}

#[test]
fn a_hundred_thousand_tasks_submitted_at_once_complete() {
    with_raya(config(2), || {
        let refs: Vec<ObjectRef<u8>> = (0..100_000).map(|_| trivial::remote()).collect();
        let results = raya::get_all(&refs).unwrap();
        assert_eq!(results.len(), 100_000);
        assert!(results.iter().all(|r| *r == 1));
    });
}

#[test]
fn task_records_reach_the_gcs() {
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    with_raya(config(2), || {
        raya::get(&square::remote(9)).unwrap();
        let _ = raya::get(&panics::remote("recorded"));
        assert!(
            eventually(Duration::from_secs(10), || {
                let tasks = raya::list_tasks(1000).unwrap();
                let finished = tasks
                    .iter()
                    .any(|t| t.name.ends_with("::square") && t.state == raya::TaskState::Finished);
                let failed = tasks.iter().any(|t| {
                    t.name.ends_with("::panics")
                        && t.state == raya::TaskState::Failed
                        && t.error.as_deref().is_some_and(|e| e.contains("recorded"))
                });
                *SEEN.lock().unwrap() = tasks
                    .iter()
                    .map(|t| format!("{} {:?}", t.name, t.state))
                    .collect();
                finished && failed
            }),
            "{:?}",
            SEEN.lock().unwrap()
        );
    });
}

/// A result whose registered size measure panics: the worker storing it dies outside the
/// task's own panic guard.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Spiky(u32);

#[raya::remote]
fn spiky(v: u32) -> Spiky {
    Spiky(v)
}

/// An argument that panics when dropped, after the task ran.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct DropBomb(u32);

impl Drop for DropBomb {
    fn drop(&mut self) {
        if self.0 == 13 && !std::thread::panicking() {
            panic!("DropBomb went off");
        }
    }
}

impl Clone for DropBomb {
    fn clone(&self) -> Self {
        DropBomb(self.0)
    }
}

#[raya::remote]
fn takes_bomb(b: DropBomb) -> u32 {
    b.0 + 1
}

static BOMB_HELD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[raya::remote]
async fn holds_bomb_forever(b: DropBomb) -> u32 {
    BOMB_HELD.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    b.0
}

#[test]
fn a_worker_that_dies_outside_the_panic_guard_fails_its_task_and_is_replaced() {
    with_raya(config(1), || {
        raya::register_heap_size::<Spiky>(|_| panic!("size measure panicked"));
        // No retries: the task fails, saying its worker died.
        let r = spiky::options().max_retries(0).remote(1);
        let e = raya::get_timeout(&r, Duration::from_secs(600)).unwrap_err();
        assert!(!e.is_timeout(), "{e}");
        assert!(e.to_string().contains("size measure panicked"), "{e}");
        // Its CPU came back and a worker replaced the dead one: the one-CPU node runs on.
        assert_eq!(raya::get(&plus_one::remote(1)).unwrap(), 2);
        // With retries, each attempt fails the same way, and the last error is reported.
        let r = spiky::options().max_retries(2).remote(2);
        let e = raya::get_timeout(&r, Duration::from_secs(600)).unwrap_err();
        assert!(e.to_string().contains("size measure panicked"), "{e}");
        // An argument that panics as it is dropped after the task ran.
        let r = takes_bomb::options().max_retries(0).remote(DropBomb(13));
        match raya::get_timeout(&r, Duration::from_secs(600)) {
            // The result was stored before the argument went off: it stands.
            Ok(v) => assert_eq!(v, 14),
            Err(e) => assert!(e.to_string().contains("DropBomb went off"), "{e}"),
        }
        assert_eq!(raya::get(&plus_one::remote(2)).unwrap(), 3);
        // A force-cancelled async task whose future goes off as it is dropped: the panic
        // unwinds out of the worker's event loop and kills its thread; another takes its place.
        let r = holds_bomb_forever::remote(DropBomb(13));
        assert!(eventually(Duration::from_secs(600), || BOMB_HELD
            .load(Ordering::SeqCst)));
        raya::cancel(&r, true).unwrap();
        assert!(raya::get(&r).unwrap_err().is_cancelled());
        for i in 0..4 {
            assert_eq!(raya::get(&plus_one::remote(i)).unwrap(), i + 1);
        }
    });
}
