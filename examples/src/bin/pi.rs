//! Monte-Carlo π over tasks: each task throws darts at the unit square and counts the hits in
//! the quarter circle; the driver sums the counts.
//!
//! Run with `cargo run --release -p raya-examples --bin pi [total_samples]`.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use raya::prelude::*;

#[raya::remote]
fn count_hits(samples: u64, seed: u64) -> u64 {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut hits = 0;
    for _ in 0..samples {
        let (x, y): (f64, f64) = (rng.random(), rng.random());
        if x * x + y * y <= 1.0 {
            hits += 1;
        }
    }
    hits
}

fn main() -> raya::Result<()> {
    raya_examples::init_logging();
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4_000_000);
    raya::init(raya::Config::default())?;
    let cpus = raya::cluster_resources()?["CPU"] as u64;
    let tasks = cpus * 4;
    let per_task = total / tasks;
    let refs: Vec<ObjectRef<u64>> = (0..tasks)
        .map(|i| count_hits::remote(per_task, i))
        .collect();
    let hits: u64 = raya::get_all(&refs)?.into_iter().sum();
    let samples = per_task * tasks;
    let pi = 4.0 * hits as f64 / samples as f64;
    println!(
        "pi ~= {pi:.5} (error {:.5}) from {samples} samples in {tasks} tasks",
        (pi - std::f64::consts::PI).abs()
    );
    raya::shutdown();
    Ok(())
}
