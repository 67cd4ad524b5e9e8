//! `cargo bench -p raya-cli --bench microbenchmark`: the same run as `raya microbenchmark`.
//! Set TESTS_TO_RUN (and TESTS_TO_SKIP) to pick workloads by name; pass `--quick` for short rounds.

#[path = "../src/microbenchmark.rs"]
mod microbenchmark;

fn main() -> raya::Result<()> {
    raya::init(raya::Config::default())?;
    print!("{}", microbenchmark::DIFFERENCES);
    let env = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
    let (filter, skip) = (env("TESTS_TO_RUN"), env("TESTS_TO_SKIP"));
    let quick = std::env::args().any(|a| a == "--quick");
    let timing = if quick {
        microbenchmark::Timing::quick()
    } else {
        microbenchmark::Timing::ray()
    };
    let report = microbenchmark::run(timing, filter, skip)?;
    println!("{} workloads measured", report.results.len());
    raya::shutdown();
    Ok(())
}
