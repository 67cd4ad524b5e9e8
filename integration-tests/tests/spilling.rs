//! The object store's memory budget: spilling to disk and back, and store-full errors.

use raya::Error;
use raya::prelude::*;
use raya_integration_tests::{eventually, with_raya};
use std::time::Duration;

const MIB: usize = 1 << 20;

#[raya::remote]
fn total(v: Vec<u8>) -> u64 {
    v.iter().map(|b| *b as u64).sum()
}

#[raya::remote]
fn make_blob(n: usize, fill: u8) -> Vec<u8> {
    vec![fill; n]
}

#[test]
fn objects_past_the_budget_spill_to_disk_and_come_back() {
    let cfg = raya::Config::default()
        .num_cpus(2)
        .object_store_memory(8 * MIB as u64);
    with_raya(cfg, || {
        let refs: Vec<ObjectRef<Vec<u8>>> = (0..10u8)
            .map(|i| raya::put(vec![i; 2 * MIB]).unwrap())
            .collect();
        let stats = raya::object_store_stats().unwrap();
        assert!(stats.num_spilled >= 6, "{stats:?}");
        assert!(stats.bytes_in_memory <= 8 * MIB as u64, "{stats:?}");
        let spill_dir = raya::session_dir().unwrap().join("spill");
        let files = std::fs::read_dir(&spill_dir).unwrap().count();
        assert_eq!(files as u64, stats.num_spilled);
        // Only this user can read what was spilled: the directories are 0700, the files 0600.
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&raya::session_dir().unwrap()), 0o700);
            assert_eq!(mode(&spill_dir), 0o700);
            for f in std::fs::read_dir(&spill_dir).unwrap() {
                assert_eq!(mode(&f.unwrap().path()), 0o600);
            }
        }
        // Every object reads back intact, spilled or not; tasks read spilled arguments too.
        for (i, r) in refs.iter().enumerate() {
            let v = raya::get(r).unwrap();
            assert_eq!(v.len(), 2 * MIB);
            assert!(v.iter().all(|b| *b == i as u8));
        }
        assert_eq!(raya::get(&total::remote(&refs[0])).unwrap(), 0);
        assert_eq!(
            raya::get(&total::remote(&refs[3])).unwrap(),
            3 * 2 * MIB as u64
        );
        assert!(raya::object_store_stats().unwrap().total_restored > 0);
        // Task results spill too.
        let made: Vec<_> = (0..6u8)
            .map(|i| make_blob::remote(2 * MIB, 100 + i))
            .collect();
        for (i, r) in made.iter().enumerate() {
            assert_eq!(raya::get(r).unwrap()[0], 100 + i as u8);
        }
        // Freed objects take their spill files with them.
        drop(refs);
        drop(made);
        let stats = raya::object_store_stats().unwrap();
        assert_eq!(stats.num_spilled, 0, "{stats:?}");
        // The files are deleted off the freeing thread.
        assert!(
            eventually(Duration::from_secs(30), || std::fs::read_dir(&spill_dir)
                .unwrap()
                .count()
                == 0),
            "spill files left behind"
        );
    });
}

#[test]
fn without_spilling_a_full_store_refuses_puts_and_loses_nothing() {
    let cfg = raya::Config::default()
        .num_cpus(2)
        .object_store_memory(8 * MIB as u64)
        .spilling(false);
    with_raya(cfg, || {
        let kept: Vec<_> = (0..3u8)
            .map(|i| raya::put(vec![i; 2 * MIB]).unwrap())
            .collect();
        let e = raya::put(vec![9u8; 4 * MIB]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Store(raya::StoreError::Full {
                    spilling: false,
                    ..
                })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("object store full"), "{e}");
        assert!(e.to_string().contains("spilling is off"), "{e}");
        // try_put hands the value back.
        let (e, back) = raya::try_put(vec![7u8; 4 * MIB]).unwrap_err();
        assert!(e.to_string().contains("object store full"));
        assert_eq!(back.len(), 4 * MIB);
        // What was stored is intact.
        for (i, r) in kept.iter().enumerate() {
            assert!(raya::get(r).unwrap().iter().all(|b| *b == i as u8));
        }
        // A task whose result does not fit fails with a store-full error.
        let e = raya::get(&make_blob::remote(4 * MIB, 1)).unwrap_err();
        assert_eq!(
            e.task_error_kind(),
            Some(raya::TaskErrorKind::StoreFull),
            "{e}"
        );
        // Freeing space makes room again.
        drop(kept);
        assert!(raya::put(vec![9u8; 4 * MIB]).is_ok());
    });
}
