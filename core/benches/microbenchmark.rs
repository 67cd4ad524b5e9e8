//! `cargo bench -p raya --bench microbenchmark`: the same run as `raya microbenchmark`.
//! Set TESTS_TO_RUN to pick workloads by name.

#[path = "../src/bin/raya/microbenchmark.rs"]
mod microbenchmark;

fn main() -> raya::Result<()> {
    raya::init(raya::Config::default())?;
    print!("{}", microbenchmark::DIFFERENCES);
    let filter = std::env::var("TESTS_TO_RUN").ok().filter(|s| !s.is_empty());
    let quick = std::env::args().any(|a| a == "--quick");
    let timing = if quick {
        microbenchmark::Timing::quick()
    } else {
        microbenchmark::Timing::ray()
    };
    let report = microbenchmark::run(timing, filter)?;
    println!("{} workloads measured", report.results.len());
    raya::shutdown();
    Ok(())
}
