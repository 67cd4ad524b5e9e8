//! The `raya` command line: the microbenchmark in its quick mode prints every workload, and the
//! scale run completes (at a small scale here; the full run is not part of CI).

use std::process::Command;

/// Ray's workload names, as `ray microbenchmark` prints them.
const RAY_WORKLOADS: &[&str] = &[
    "single client get calls (Plasma Store)",
    "single client put calls (Plasma Store)",
    "multi client put calls (Plasma Store)",
    "single client put gigabytes",
    "single client tasks and get batch",
    "multi client put gigabytes",
    "single client get object containing 10k refs",
    "single client wait 1k refs",
    "single client tasks sync",
    "single client tasks async",
    "multi client tasks async",
    "1:1 actor calls sync",
    "1:1 actor calls async",
    "1:1 actor calls concurrent",
    "1:n actor calls async",
    "n:n actor calls async",
    "n:n actor calls with arg async",
    "1:1 async-actor calls sync",
    "1:1 async-actor calls async",
    "1:1 async-actor calls with args async",
    "1:n async-actor calls async",
    "n:n async-actor calls async",
    "placement group create/removal",
];

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("raya-cli-{name}-{}", std::process::id()))
}

#[test]
fn microbenchmark_quick_mode_prints_every_workload() {
    let json = temp("microbenchmark.json");
    let out = Command::new(env!("CARGO_BIN_EXE_raya"))
        .args(["microbenchmark", "--quick", "--rounds", "1", "--json"])
        .arg(&json)
        .env_remove("TESTS_TO_RUN")
        .output()
        .expect("raya runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in RAY_WORKLOADS {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} per second ")))
            .unwrap_or_else(|| panic!("no line for {name:?} in:\n{stdout}"));
        if *name != "placement group create/removal" {
            // `<name> per second <mean> +- <sd>`, with a positive mean.
            let rest = &line[name.len() + " per second ".len()..];
            let mut parts = rest.split(" +- ");
            let mean: f64 = parts.next().unwrap().parse().unwrap();
            let sd: f64 = parts.next().unwrap().parse().unwrap();
            assert!(mean > 0.0 && sd >= 0.0, "{line}");
        }
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    // Every measured workload, plus the copy variant and the two machine floors beside it,
    // less placement groups (not measured).
    assert_eq!(
        results.len(),
        RAY_WORKLOADS.len() - 1 + 3,
        "every measured workload (and the copy variant and floors) is in the JSON"
    );
    assert!(
        results
            .iter()
            .any(|r| r["key"] == "single_client_get_calls_Plasma_Store")
    );
    std::fs::remove_file(&json).unwrap();
}

#[test]
fn microbenchmark_filter_picks_workloads_by_name() {
    let json = temp("filtered.json");
    let out = Command::new(env!("CARGO_BIN_EXE_raya"))
        .args(["microbenchmark", "--quick", "--rounds", "1", "--json"])
        .arg(&json)
        .env("TESTS_TO_RUN", "actor calls sync")
        .output()
        .expect("raya runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let measured: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" per second "))
        .collect();
    assert_eq!(measured.len(), 2, "{stdout}");
    assert!(measured[0].starts_with("1:1 actor calls sync per second"));
    assert!(measured[1].starts_with("1:1 async-actor calls sync per second"));
    std::fs::remove_file(&json).unwrap();
}

#[test]
fn scale_run_completes_at_a_small_scale() {
    let json = temp("scale.json");
    let out = Command::new(env!("CARGO_BIN_EXE_raya"))
        .args(["scale", "--tasks", "20000", "--actors", "2000", "--json"])
        .arg(&json)
        .output()
        .expect("raya runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("20000 tasks"), "{stdout}");
    assert!(stdout.contains("2000 actors"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["bytes_per_actor"].as_f64().unwrap() > 0.0);
    std::fs::remove_file(&json).unwrap();
}

#[test]
fn unknown_subcommands_are_refused_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_raya"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
