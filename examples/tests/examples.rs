//! Runs every example program and checks what it prints.

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("example starts");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{bin} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn quickstart_squares_and_counts() {
    let out = run(env!("CARGO_BIN_EXE_quickstart"), &[]);
    assert!(out.contains("square(4) = 16"), "{out}");
    assert!(
        out.contains("squares of 0..10 = [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]"),
        "{out}"
    );
    assert!(
        out.contains("counter after 10 increments: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"),
        "{out}"
    );
    assert!(out.contains("four counters: [1, 11, 21, 31]"), "{out}");
}

#[test]
fn monte_carlo_pi_is_close() {
    let out = run(env!("CARGO_BIN_EXE_pi"), &["400000"]);
    let pi: f64 = out
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in {out:?}"));
    assert!((pi - std::f64::consts::PI).abs() < 0.02, "{out}");
}

#[test]
fn pipeline_delivers_every_batch_in_order() {
    let out = run(env!("CARGO_BIN_EXE_pipeline"), &[]);
    assert!(
        out.contains("total 3749925000 (expected 3749925000)"),
        "{out}"
    );
    assert!(
        out.contains("transformer saw 50 batches; sink received them in order: true"),
        "{out}"
    );
}

#[test]
fn word_count_matches_a_sequential_count() {
    let out = run(env!("CARGO_BIN_EXE_wordcount"), &[]);
    assert!(out.contains("11750 words, 38 distinct"), "{out}");
    assert!(out.contains("the 1500"), "{out}");
}
