//! Objects: put/get/wait, timeouts, reference counting, values that are never serialized, large
//! objects.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use raya::Error;
use raya::prelude::*;
use raya_integration_tests::{config, eventually, with_raya};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[raya::remote]
fn slow_value(ms: u64, v: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    v
}

/// Held shut until a test opens it; `gated` waits behind it.
static GATE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static GATE_OPENED: std::sync::Condvar = std::sync::Condvar::new();
static GATED_RUNNING: AtomicUsize = AtomicUsize::new(0);

#[raya::remote]
fn gated() -> u32 {
    GATED_RUNNING.fetch_add(1, Ordering::SeqCst);
    let mut open = GATE.lock().unwrap();
    while !*open {
        open = GATE_OPENED.wait(open).unwrap();
    }
    1
}

#[raya::remote]
fn make_refs(n: u32) -> Vec<ObjectRef<u32>> {
    (0..n).map(|i| raya::put(i).unwrap()).collect()
}

#[raya::remote]
fn sum_refs(refs: Vec<ObjectRef<u32>>) -> raya::Result<u32> {
    Ok(raya::get_all(&refs)?.into_iter().sum())
}

/// Counts its serializations and deserializations; must never be serialized while it stays on
/// the node.
#[derive(Clone, Debug, PartialEq)]
struct LocalOnly {
    payload: Vec<u64>,
}

static SERIALIZED: AtomicUsize = AtomicUsize::new(0);

impl Serialize for LocalOnly {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, Ordering::SeqCst);
        panic!("LocalOnly was serialized, but it never left its node")
    }
}

impl<'de> Deserialize<'de> for LocalOnly {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("LocalOnly was deserialized, but it never left its node")
    }
}

#[raya::remote]
fn double_local(v: LocalOnly) -> LocalOnly {
    LocalOnly {
        payload: v.payload.iter().map(|x| x * 2).collect(),
    }
}

#[raya::remote]
fn hold(_r: Vec<u8>, ms: u64) -> u8 {
    std::thread::sleep(Duration::from_millis(ms));
    1
}

#[test]
fn put_get_and_shared_reads() {
    with_raya(config(2), || {
        let r = raya::put(vec![1u64, 2, 3]).unwrap();
        assert_eq!(raya::get(&r).unwrap(), vec![1, 2, 3]);
        assert_eq!(r.get().unwrap(), vec![1, 2, 3]);
        let a = raya::get_arc(&r).unwrap();
        let b = raya::get_arc(&r).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "get_arc shares the stored value");
        let shared = Arc::new(vec![9u8; 1000]);
        let s = raya::put_arc(Arc::clone(&shared)).unwrap();
        assert!(
            Arc::ptr_eq(&raya::get_arc(&s).unwrap(), &shared),
            "put_arc does not copy"
        );
        let refs: Vec<_> = (0..5).map(|i| raya::put(i).unwrap()).collect();
        assert_eq!(raya::get_all(&refs).unwrap(), vec![0, 1, 2, 3, 4]);
    });
}

/// A gate the test opens: tasks wait on it without any timing.
#[raya::actor]
struct Gate {
    open: bool,
}

#[raya::actor]
impl Gate {
    fn new() -> Self {
        Gate { open: false }
    }
    fn open(&mut self) {
        self.open = true;
    }
    fn is_open(&self) -> bool {
        self.open
    }
}

#[raya::remote]
fn behind(gate: ActorHandle<Gate>, v: u32) -> u32 {
    while !raya::get(&gate.is_open()).unwrap() {
        std::thread::sleep(Duration::from_millis(5));
    }
    v
}

#[raya::remote]
fn fails_now() -> raya::Result<u32> {
    Err(raya::Error::InvalidArgument("this one fails".into()))
}

#[test]
fn get_all_returns_the_first_error_without_waiting_for_the_rest() {
    // Ray's test_get_throws_quickly_when_found_exception.
    with_raya(config(2), || {
        let gate = Gate::remote();
        let refs = vec![behind::remote(gate.clone(), 1), fails_now::remote()];
        let err = raya::get_all(&refs).unwrap_err();
        assert!(err.to_string().contains("this one fails"), "{err}");
        let err = raya::get_all_timeout(&refs, Duration::from_secs(600)).unwrap_err();
        assert!(err.to_string().contains("this one fails"), "{err}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(raya::get_all_async(&refs)).unwrap_err();
        assert!(err.to_string().contains("this one fails"), "{err}");
        // The first is still waiting behind the gate: nothing above waited for it.
        let (ready, _) = raya::wait(&refs[..1], 1, Some(Duration::ZERO)).unwrap();
        assert!(ready.is_empty());
        gate.open();
        assert_eq!(raya::get(&refs[0]).unwrap(), 1);
    });
}

#[test]
fn a_ref_kept_out_of_band_fails_at_once_when_its_object_was_freed() {
    with_raya(config(1), || {
        let r = raya::put(41u64).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        // While a reference lives, the one read back reads the object.
        let back: ObjectRef<u64> = serde_json::from_str(&json).unwrap();
        assert_eq!(raya::get(&back).unwrap(), 41);
        drop((r, back));
        // Every reference was dropped: the object is gone, and a reference read back from the
        // text says so instead of waiting.
        let back: ObjectRef<u64> = serde_json::from_str(&json).unwrap();
        let err = raya::get_timeout(&back, Duration::from_secs(600)).unwrap_err();
        assert!(!err.is_timeout(), "{err}");
        assert!(err.to_string().contains("freed"), "{err}");
        // And so does a task's result read back after it was freed.
        let t = slow_value::remote(0, 3);
        assert_eq!(raya::get(&t).unwrap(), 3);
        let json = serde_json::to_string(&t).unwrap();
        drop(t);
        let back: ObjectRef<u32> = serde_json::from_str(&json).unwrap();
        let err = raya::get_timeout(&back, Duration::from_secs(600)).unwrap_err();
        assert!(err.to_string().contains("freed"), "{err}");
    });
}

#[test]
fn get_with_timeout_and_wait_semantics() {
    with_raya(config(2), || {
        let slow = slow_value::remote(2_000, 1);
        let e = raya::get_timeout(&slow, Duration::from_millis(50)).unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(matches!(e, Error::GetTimeout(d) if d == Duration::from_millis(50)));

        let fast: Vec<_> = (0..3).map(|i| raya::put(i as u32).unwrap()).collect();
        let mut refs = vec![slow.clone()];
        refs.extend(fast.iter().cloned());
        // Ready ones in input order, at most num_returns of them; the rest pending in order.
        let (ready, pending) = raya::wait(&refs, 2, None).unwrap();
        assert_eq!(ready, vec![fast[0].clone(), fast[1].clone()]);
        assert_eq!(pending, vec![slow.clone(), fast[2].clone()]);
        // A zero timeout only looks.
        let (ready, pending) = raya::wait(&refs, 4, Some(Duration::ZERO)).unwrap();
        assert_eq!(ready.len(), 3);
        assert_eq!(pending, vec![slow.clone()]);
        // Bad uses are errors.
        assert!(matches!(
            raya::wait(&refs, 5, None),
            Err(Error::InvalidArgument(_))
        ));
        let dup = vec![fast[0].clone(), fast[0].clone()];
        assert!(matches!(
            raya::wait(&dup, 1, None),
            Err(Error::InvalidArgument(_))
        ));
        let empty: Vec<ObjectRef<u32>> = vec![];
        assert_eq!(raya::wait(&empty, 0, None).unwrap(), (vec![], vec![]));
        // Waiting for everything waits for the slow one.
        let (ready, pending) = raya::wait(&refs, 4, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(ready.len(), 4);
        assert!(pending.is_empty());
        assert_eq!(
            raya::get_all_timeout(&refs, Duration::from_secs(1)).unwrap(),
            vec![1, 0, 1, 2]
        );
    });
}

#[test]
fn the_store_frees_objects_when_the_last_reference_goes() {
    with_raya(config(2), || {
        let base = raya::object_store_stats().unwrap().num_objects;
        let r = raya::put(vec![0u8; 1 << 20]).unwrap();
        let copy = r.clone();
        assert_eq!(raya::object_store_stats().unwrap().num_objects, base + 1);
        drop(r);
        assert_eq!(
            raya::object_store_stats().unwrap().num_objects,
            base + 1,
            "a clone still refers to it"
        );
        drop(copy);
        assert_eq!(raya::object_store_stats().unwrap().num_objects, base);

        // References nested in values keep their objects alive until the value goes.
        let inner = raya::put(5u32).unwrap();
        let inner_id = inner.id();
        let outer = raya::put(vec![inner]).unwrap();
        assert_eq!(raya::object_store_stats().unwrap().num_objects, base + 2);
        let got = raya::get(&outer).unwrap();
        assert_eq!(got[0].id(), inner_id);
        assert_eq!(raya::get(&got[0]).unwrap(), 5);
        drop(got);
        drop(outer);
        assert_eq!(
            raya::object_store_stats().unwrap().num_objects,
            base,
            "inner freed with its holder"
        );

        // A pending task holds its arguments.
        let big = raya::put(vec![1u8; 1 << 20]).unwrap();
        let task = hold::remote(&big, 200);
        drop(big);
        assert!(raya::object_store_stats().unwrap().num_objects >= base + 2);
        raya::get(&task).unwrap();
        drop(task);
        assert!(
            eventually(Duration::from_secs(10), || raya::object_store_stats()
                .unwrap()
                .num_objects
                == base),
            "the argument is freed once the task is done"
        );

        // Objects made inside tasks and returned by reference are counted like any other.
        let refs = make_refs::remote(100);
        assert_eq!(
            raya::get(&sum_refs::remote(refs.clone())).unwrap(),
            (0..100).sum::<u32>()
        );
        drop(refs);
        assert!(eventually(
            Duration::from_secs(10),
            || raya::object_store_stats().unwrap().num_objects == base
        ));
    });
}

#[test]
fn values_that_stay_on_the_node_are_never_serialized() {
    with_raya(config(2), || {
        let v = LocalOnly {
            payload: vec![1, 2, 3],
        };
        let r = raya::put(v.clone()).unwrap();
        assert_eq!(raya::get(&r).unwrap(), v);
        // Passed by value, by reference, and returned from a task.
        assert_eq!(
            raya::get(&double_local::remote(v.clone())).unwrap().payload,
            vec![2, 4, 6]
        );
        let twice = double_local::remote(double_local::remote(&r));
        assert_eq!(raya::get(&twice).unwrap().payload, vec![4, 8, 12]);
        assert_eq!(SERIALIZED.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_gigabyte_round_trips_through_put_and_get() {
    with_raya(
        raya::Config::default()
            .num_cpus(2)
            .object_store_memory(3 << 30),
        || {
            let n = 1usize << 30;
            let mut v = vec![0u8; n];
            for (i, b) in v.iter_mut().enumerate().step_by(4096) {
                *b = (i / 4096) as u8;
            }
            let r = raya::put(v).unwrap();
            let back = raya::get_arc(&r).unwrap();
            assert_eq!(back.len(), n);
            assert!(
                back.iter()
                    .enumerate()
                    .step_by(4096)
                    .all(|(i, b)| *b == (i / 4096) as u8)
            );
            assert_eq!(back[n - 1], 0);
            let copy = raya::get(&r).unwrap();
            assert_eq!(copy.len(), n);
            assert_eq!(copy[4096 * 7], 7);
        },
    );
}

#[test]
fn async_forms_work_inside_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    with_raya(config(2), || {
        rt.block_on(async {
            let r = slow_value::remote(20, 7);
            assert_eq!(r.clone().await.unwrap(), 7);
            assert_eq!(raya::get_async(&r).await.unwrap(), 7);
            let refs: Vec<_> = (0..10).map(|i| slow_value::remote(1, i)).collect();
            assert_eq!(
                raya::get_all_async(&refs).await.unwrap(),
                (0..10).collect::<Vec<_>>()
            );
            let slow = slow_value::remote(5_000, 1);
            let e = raya::get_timeout_async(&slow, Duration::from_millis(30))
                .await
                .unwrap_err();
            assert!(e.is_timeout());
            let (ready, pending) = raya::wait_async(
                &[slow.clone(), refs[0].clone()],
                1,
                Some(Duration::from_secs(5)),
            )
            .await
            .unwrap();
            assert_eq!(ready, vec![refs[0].clone()]);
            assert_eq!(pending, vec![slow]);
            // Blocking calls also work from a runtime thread.
            assert_eq!(raya::get(&refs[3]).unwrap(), 3);
        });
    });
}

#[test]
fn raya_starts_and_works_from_inside_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        with_raya(config(2), || {
            let r = slow_value::remote(5, 9);
            assert_eq!(raya::get(&r).unwrap(), 9);
        });
    });
}

#[test]
fn a_get_waiting_when_the_node_stops_fails_instead_of_waiting_forever() {
    let _turn = raya_integration_tests::turn();
    raya::init(config(1)).unwrap();
    let r = gated::remote();
    let (tx, rx) = std::sync::mpsc::channel();
    let (blocking, awaiting) = (r.clone(), r);
    let sync_tx = tx.clone();
    let waiters = [
        std::thread::spawn(move || {
            let _ = sync_tx.send(("get", raya::get(&blocking)));
        }),
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = tx.send(("get_async", rt.block_on(raya::get_async(&awaiting))));
        }),
    ];
    assert!(eventually(Duration::from_secs(30), || GATED_RUNNING
        .load(Ordering::SeqCst)
        == 1));
    // Both waiters must be inside their `get` before the node stops (one waits on a signal,
    // the other through its task's waker); a `get` begun after that meets no node at all,
    // which is another error.
    assert!(eventually(Duration::from_secs(30), || {
        raya::object_store_stats().is_ok_and(|s| s.num_waiters >= 2)
    }));
    raya::shutdown();
    // A bound on a hang, not on speed: on a stopped node nothing would ever wake the `get`s.
    let got: Vec<_> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(60)))
        .collect();
    *GATE.lock().unwrap() = true;
    GATE_OPENED.notify_all();
    for got in got {
        match got {
            Ok((_, Err(Error::Task(e)))) => {
                assert_eq!(e.kind, raya::TaskErrorKind::System, "{e}");
                assert!(e.message.contains("node stopped"), "{e}");
            }
            other => panic!("expected the stopped node's error, got {other:?}"),
        }
    }
    for w in waiters {
        w.join().unwrap();
    }
}
