//! Tests of the object store: reference counting, waiters, the memory budget and spilling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use raya_common::{IdGenerator, JobId, NodeId, ObjectId, TaskError, TaskErrorKind, TaskId, Value};
use serde::{Deserialize, Serialize};

use super::*;
use crate::raw_ref::{RawRef, set_current_store};

/// A store whose spill directory is removed when the test ends (even when it fails).
struct TestStore(Arc<StoreCore>);

impl std::ops::Deref for TestStore {
    type Target = Arc<StoreCore>;
    fn deref(&self) -> &Arc<StoreCore> {
        &self.0
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0.config.spill_dir);
    }
}

fn store(budget: u64, spilling: bool, name: &str) -> TestStore {
    let dir = std::env::temp_dir().join(format!("raya-store-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    TestStore(StoreCore::new(StoreConfig {
        node: NodeId::random(),
        memory_budget: budget,
        spilling,
        spill_dir: dir,
    }))
}

fn ids() -> IdGenerator {
    IdGenerator::new(JobId(1), 1)
}

#[test]
fn last_reference_frees_the_object() {
    let s = store(1 << 20, false, "free");
    let g = ids();
    let r = s
        .put(g.put_id(), Value::new(vec![1u8; 1000]))
        .map_err(|e| e.0)
        .unwrap();
    let r2 = r.clone();
    let again = s.add_ref(r.id());
    assert_eq!(s.ref_count(r.id()), 2);
    assert_eq!(s.stats().num_objects, 1);
    assert!(s.stats().bytes_in_memory >= 1000);
    drop(r);
    drop(r2);
    assert_eq!(s.stats().num_objects, 1, "a counted reference remains");
    drop(again);
    assert_eq!(s.stats().num_objects, 0);
    assert_eq!(s.stats().bytes_in_memory, 0);
}

#[test]
fn pending_objects_wake_their_waiters_on_completion_and_failure() {
    let s = store(1 << 20, false, "wake");
    let g = ids();
    let a = s.add_ref(ObjectId::for_return(g.task_id(), 0));
    let b = s.add_ref(ObjectId::for_return(g.task_id(), 0));
    assert_eq!(s.status(a.id()), Status::Pending);
    let fired = Arc::new(AtomicUsize::new(0));
    for r in [&a, &b] {
        let f = Arc::clone(&fired);
        assert!(s.on_ready(
            r.id(),
            Box::new(move || {
                f.fetch_add(1, Ordering::SeqCst);
            })
        ));
    }
    assert!(s.complete(a.id(), Value::new(5u32)).unwrap());
    assert!(s.fail(b.id(), Arc::new(TaskError::new(TaskErrorKind::Panic, "x"))));
    assert_eq!(fired.load(Ordering::SeqCst), 2);
    assert!(matches!(s.get(a.id()), Lookup::Ready(v) if v.clone_as::<u32>().unwrap() == 5));
    assert!(matches!(s.get(b.id()), Lookup::Failed(e) if e.message == "x"));
    // A completed object keeps its value; a late result for a failed one is dropped.
    assert!(!s.fail(
        a.id(),
        Arc::new(TaskError::new(TaskErrorKind::Cancelled, ""))
    ));
    assert!(!s.complete(b.id(), Value::new(1u32)).unwrap());
    // Ready objects run callbacks at once.
    let f = Arc::clone(&fired);
    assert!(!s.on_ready(
        a.id(),
        Box::new(move || {
            f.fetch_add(1, Ordering::SeqCst);
        })
    ));
    assert_eq!(fired.load(Ordering::SeqCst), 3);
}

#[test]
fn results_nobody_references_are_dropped() {
    let s = store(1 << 20, false, "orphan");
    let id = ObjectId::for_return(TaskId(9), 0);
    let r = s.add_ref(id);
    drop(r);
    assert!(!s.complete(id, Value::new(vec![0u8; 100])).unwrap());
    assert_eq!(s.stats().num_objects, 0);
    assert_eq!(s.stats().bytes_in_memory, 0);
}

#[test]
fn without_spilling_a_full_store_refuses_puts_and_keeps_everything() {
    let s = store(10_000, false, "full");
    let g = ids();
    let kept: Vec<RawRef> = (0..4)
        .map(|i| {
            s.put(g.put_id(), Value::new(vec![i as u8; 2000]))
                .map_err(|e| e.0)
                .unwrap()
        })
        .collect();
    let (err, back) = s.put(g.put_id(), Value::new(vec![9u8; 4000])).unwrap_err();
    assert!(
        matches!(err, StoreError::Full { needed, budget: 10_000, spilling: false, .. } if needed >= 4000)
    );
    assert!(err.to_string().contains("spilling is off"), "{err}");
    assert_eq!(
        back.clone_as::<Vec<u8>>().unwrap().len(),
        4000,
        "the value is handed back"
    );
    for (i, r) in kept.iter().enumerate() {
        match s.get(r.id()) {
            Lookup::Ready(v) => assert_eq!(v.clone_as::<Vec<u8>>().unwrap(), vec![i as u8; 2000]),
            _ => panic!("object {i} lost"),
        }
    }
    let task_result = s.add_ref(ObjectId::for_return(g.task_id(), 0));
    assert!(matches!(
        s.complete(task_result.id(), Value::new(vec![0u8; 5000])),
        Err(StoreError::Full { .. })
    ));
}

#[test]
fn spilling_moves_least_recently_used_objects_to_disk_and_back() {
    let s = store(10_000, true, "spill");
    let g = ids();
    let refs: Vec<RawRef> = (0..3)
        .map(|i| {
            s.put(g.put_id(), Value::new(vec![i as u8; 3000]))
                .map_err(|e| e.0)
                .unwrap()
        })
        .collect();
    // Touch the first object so the second is the least recently used.
    assert!(matches!(s.get(refs[0].id()), Lookup::Ready(_)));
    let fourth = s
        .put(g.put_id(), Value::new(vec![3u8; 3000]))
        .map_err(|e| e.0)
        .unwrap();
    let st = s.stats();
    assert_eq!(st.num_spilled, 1);
    assert!(st.bytes_in_memory <= 10_000);
    let spilled_file = std::fs::read_dir(&s.config.spill_dir).unwrap().count();
    assert_eq!(spilled_file, 1);
    // The spilled one reads back as bytes, then is promoted to a live value again.
    let v = match s.get(refs[1].id()) {
        Lookup::Ready(v) => v,
        _ => panic!("spilled object must read back"),
    };
    assert!(!v.is_live());
    let decoded: Vec<u8> = v.clone_as().unwrap();
    assert_eq!(decoded, vec![1u8; 3000]);
    s.promote(refs[1].id(), Value::new(decoded));
    assert_eq!(s.stats().total_restored, 1);
    assert!(matches!(s.get(refs[1].id()), Lookup::Ready(v) if v.is_live()));
    // Freeing objects deletes their spill files.
    drop(refs);
    drop(fourth);
    assert_eq!(s.stats().num_objects, 0);
    assert_eq!(s.stats().num_spilled, 0);
    // The files are deleted off the freeing thread.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let left = || {
        std::fs::read_dir(&s.config.spill_dir)
            .map(|d| d.count())
            .unwrap_or(0)
    };
    while left() > 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(left(), 0);
}

#[test]
fn an_object_larger_than_the_budget_goes_straight_to_disk() {
    let s = store(1000, true, "big");
    let r = s
        .put(ids().put_id(), Value::new(vec![7u8; 5000]))
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(s.stats().num_spilled, 1);
    assert_eq!(s.stats().bytes_in_memory, 0);
    match s.get(r.id()) {
        Lookup::Ready(v) => assert_eq!(v.clone_as::<Vec<u8>>().unwrap(), vec![7u8; 5000]),
        _ => panic!(),
    }
}

#[test]
fn spilled_values_keep_the_objects_they_reference_alive() {
    #[derive(Serialize, Deserialize)]
    struct Holder {
        inner: RawRef,
        pad: Vec<u8>,
    }
    raya_common::size::register_heap_size::<Holder>(|h| h.pad.capacity());
    let s = store(5000, true, "nested");
    set_current_store(Some(Arc::clone(&s.0)));
    let g = ids();
    let inner = s
        .put(g.put_id(), Value::new(1u64))
        .map_err(|e| e.0)
        .unwrap();
    let inner_id = inner.id();
    let holder = s
        .put(
            g.put_id(),
            Value::new(Holder {
                inner,
                pad: vec![0; 3000],
            }),
        )
        .map_err(|e| e.0)
        .unwrap();
    assert_eq!(s.ref_count(inner_id), 1);
    // Force the holder out: it is serialized, and its live copy (with the inner reference) dropped.
    let _filler = s
        .put(g.put_id(), Value::new(vec![0u8; 3000]))
        .map_err(|e| e.0)
        .unwrap();
    assert!(s.stats().num_spilled >= 1);
    assert_eq!(
        s.status(inner_id),
        Status::Ready,
        "the spill file's reference keeps it"
    );
    // Reading the holder back attaches a fresh reference; promoting drops the file's.
    let v = match s.get(holder.id()) {
        Lookup::Ready(v) => v,
        _ => panic!(),
    };
    assert!(!v.is_live(), "the holder was spilled");
    let back: Arc<Holder> = v.to_arc().unwrap();
    assert_eq!(back.inner.id(), inner_id);
    // The bytes read back keep the object they name, as the spill file did.
    drop(holder);
    drop(back);
    assert_eq!(s.status(inner_id), Status::Ready);
    drop(v);
    assert_eq!(
        s.status(inner_id),
        Status::Missing,
        "freed with its last holder"
    );
    set_current_store(None);
}

#[test]
fn values_whose_serialize_panics_are_never_spilled_and_stay_readable() {
    #[derive(Deserialize)]
    struct NoSer(#[allow(dead_code)] Vec<u8>);
    impl Serialize for NoSer {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("not serializable"))
        }
    }
    raya_common::size::register_heap_size::<NoSer>(|n| n.0.capacity());
    let s = store(5000, true, "noser");
    let g = ids();
    let a = s
        .put(g.put_id(), Value::new(NoSer(vec![0; 3000])))
        .map_err(|e| e.0)
        .unwrap();
    let b = s
        .put(g.put_id(), Value::new(vec![0u8; 3000]))
        .map_err(|e| e.0)
        .unwrap();
    assert!(matches!(s.get(a.id()), Lookup::Ready(v) if v.is_live()));
    assert!(matches!(s.get(b.id()), Lookup::Ready(_)));
    assert_eq!(
        s.stats().num_spilled,
        1,
        "the serializable one was spilled instead"
    );
}

#[test]
fn location_changes_coalesce_before_reporting() {
    let s = store(1 << 20, false, "loc");
    let g = ids();
    let short = s.put(g.put_id(), Value::new(1u8)).map_err(|e| e.0).unwrap();
    drop(short);
    let kept = s.put(g.put_id(), Value::new(2u8)).map_err(|e| e.0).unwrap();
    let (added, removed) = s.drain_location_changes();
    assert_eq!(
        added.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![kept.id()]
    );
    assert!(
        removed.is_empty(),
        "an object freed before any report is never reported"
    );
    let id = kept.id();
    drop(kept);
    let (added, removed) = s.drain_location_changes();
    assert!(added.is_empty());
    assert_eq!(removed, vec![id]);
}

#[test]
fn waiters_can_be_replaced_and_removed() {
    let s = store(1 << 20, false, "waiters");
    let r = s.add_ref(ObjectId::for_return(TaskId(3), 0));
    let sig = Arc::new(crate::Signal::new());
    let wid = crate::next_waiter_id();
    assert!(
        s.register_waiter(r.id(), wid, Waiter::Signal(Arc::clone(&sig)))
            .is_ok()
    );
    assert!(
        s.register_waiter(r.id(), wid, Waiter::Signal(Arc::clone(&sig)))
            .is_ok()
    );
    s.unregister_waiter(r.id(), wid);
    s.complete(r.id(), Value::new(0u8)).unwrap();
    assert_eq!(sig.count(), 0, "a removed waiter is not notified");
    assert!(s.register_waiter(r.id(), wid, Waiter::Signal(sig)).is_err());
}

#[test]
fn free_callbacks_run_when_the_last_reference_goes() {
    let s = store(1 << 20, false, "onfree");
    let r = s.add_ref(ObjectId::for_return(TaskId(4), 0));
    let r2 = s.add_ref(r.id());
    let fired = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&fired);
    assert!(s.on_free(
        r.id(),
        Box::new(move || {
            f.fetch_add(1, Ordering::SeqCst);
        })
    ));
    // A second follower does not replace the first.
    let f = Arc::clone(&fired);
    assert!(s.on_free(
        r.id(),
        Box::new(move || {
            f.fetch_add(10, Ordering::SeqCst);
        })
    ));
    drop(r);
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    drop(r2);
    assert_eq!(fired.load(Ordering::SeqCst), 11);
    assert!(!s.on_free(ObjectId::for_return(TaskId(5), 0), Box::new(|| {})));
}

#[test]
fn stopping_fails_every_pending_object_and_lets_a_store_its_callbacks_reference_go() {
    let dir = std::env::temp_dir().join(format!("raya-store-test-stop-{}", std::process::id()));
    let s = StoreCore::new(StoreConfig {
        node: NodeId::random(),
        memory_budget: 1 << 20,
        spilling: false,
        spill_dir: dir.clone(),
    });
    let g = ids();
    let pending = s.add_ref(ObjectId::for_return(g.task_id(), 0));
    let ready = s.add_ref(ObjectId::for_return(g.task_id(), 0));
    assert!(s.complete(ready.id(), Value::new(7u32)).unwrap());
    // A callback that keeps the reference until the object settles (as a tell's hidden result
    // is kept) holds the store itself.
    let kept = pending.clone();
    assert!(s.on_ready(pending.id(), Box::new(move || drop(kept))));
    let id = pending.id();
    drop(pending);
    let weak = Arc::downgrade(&s);
    let error = Arc::new(TaskError::new(TaskErrorKind::System, "the node stopped"));
    assert_eq!(s.fail_all_pending(error), 1);
    assert!(matches!(s.get(ready.id()), Lookup::Ready(v) if v.clone_as::<u32>().unwrap() == 7));
    // The callback ran and let go of the pending object: nothing but `s` and `ready` hold the
    // store now.
    assert!(matches!(s.get(id), Lookup::Missing));
    drop(ready);
    drop(s);
    assert!(
        weak.upgrade().is_none(),
        "the stopped store is still referenced"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
