//! The reduced fuzz run CI does: every seed, then thousands of mutated inputs per target,
//! through the same targets the cargo-fuzz runs drive (see the README's "Fuzzing"). An input
//! that panics fails the test; its bytes are printed so that it can be replayed.

use rand::SeedableRng;
use raya_wire_fuzz::seeds::{FuzzTarget, seeds};
use raya_wire_fuzz::{mutate, targets};

/// Inputs per target beyond the seeds (`RAYA_FUZZ_INPUTS` to change).
fn inputs() -> usize {
    std::env::var("RAYA_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

fn run(target: FuzzTarget, f: fn(&[u8])) {
    let corpus: Vec<Vec<u8>> = seeds()
        .into_iter()
        .filter(|(t, _)| *t == target)
        .map(|(_, i)| i)
        .collect();
    assert!(!corpus.is_empty(), "no seeds for {target:?}");
    let seed = std::env::var("RAYA_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for input in &corpus {
        f(input);
    }
    for i in 0..inputs() {
        let a = &corpus[i % corpus.len()];
        let b = &corpus[(i * 7 + 3) % corpus.len()];
        let input = mutate::mutate(&mut rng, a, b);
        let caught = std::panic::catch_unwind(|| f(&input));
        assert!(
            caught.is_ok(),
            "{target:?} panicked on input {i} (seed {seed}): {input:?}"
        );
    }
}

#[test]
fn frames_decode_or_fail_cleanly() {
    run(FuzzTarget::Frame, targets::frame);
}

#[test]
fn every_route_checks_any_body_without_panicking() {
    run(FuzzTarget::Route, targets::route);
}

#[test]
fn live_gcs_tables_survive_any_request() {
    run(FuzzTarget::GcsLive, targets::gcs_live);
}

#[test]
fn seeds_are_valid_messages_of_every_kind() {
    // The seeds decode and pass their checks as the node they name sends them (or the head,
    // for what only the head sends): the fuzzer starts from deep inside every route.
    let checks = targets::checks();
    let mut passed = std::collections::BTreeSet::new();
    for (target, input) in seeds() {
        if target != FuzzTarget::Route {
            continue;
        }
        let (name, check) = checks[u16::from_le_bytes([input[0], input[1]]) as usize];
        targets::ensure_store();
        if check(&input[3..], &targets::caller(input[2])).is_ok() {
            passed.insert(name);
        }
    }
    let mut expected: std::collections::BTreeSet<&str> = raya_wire_fuzz::seeds::bodies()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    expected.insert("transport/Sequenced");
    assert_eq!(passed, expected);
}
