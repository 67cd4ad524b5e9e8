//! The `raya` command line.
//!
//! - `raya microbenchmark`: Ray's microbenchmark workloads on an embedded node, printed in Ray's
//!   format and written to a JSON file.
//! - `raya scale`: a million queued tasks and a hundred thousand actors on one node.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod microbenchmark;
mod scale;

#[derive(Parser)]
#[command(name = "raya", version, about = "Raya: Ray Core for Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Ray's microbenchmark workloads on an embedded node and print one line per workload in
    /// Ray's format (`<name> per second <mean> +- <sd>`).
    Microbenchmark {
        /// Short rounds (0.1 s warm-up, 0.2 s rounds) instead of Ray's 1 s and 2 s.
        #[arg(long)]
        quick: bool,
        /// Number of measured rounds (Ray: 4).
        #[arg(long)]
        rounds: Option<usize>,
        /// Run only the workloads whose name contains this (also read from TESTS_TO_RUN).
        #[arg(long)]
        filter: Option<String>,
        /// Skip the workloads whose name contains this (also read from TESTS_TO_SKIP).
        #[arg(long)]
        skip: Option<String>,
        /// Where to write the figures as JSON.
        #[arg(long, default_value = "microbenchmark.json")]
        json: PathBuf,
        /// CPUs of the node (default: the machine's).
        #[arg(long)]
        num_cpus: Option<usize>,
    },
    /// Queue a million trivial tasks and create a hundred thousand actors on one node, and report
    /// the memory each costs.
    Scale {
        /// Tasks to submit at once.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: usize,
        /// Actors to create.
        #[arg(long, default_value_t = 100_000)]
        actors: usize,
        /// Where to write the figures as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Microbenchmark {
            quick,
            rounds,
            filter,
            skip,
            json,
            num_cpus,
        } => {
            let mut timing = if quick {
                microbenchmark::Timing::quick()
            } else {
                microbenchmark::Timing::ray()
            };
            if let Some(r) = rounds {
                timing.rounds = r.max(1);
            }
            let filter =
                filter.or_else(|| std::env::var("TESTS_TO_RUN").ok().filter(|s| !s.is_empty()));
            let mut config = raya::Config::default();
            if let Some(n) = num_cpus {
                config = config.num_cpus(n);
            }
            print!("{}", microbenchmark::DIFFERENCES);
            raya::init(config)
                .and_then(|()| microbenchmark::run(timing, filter, skip))
                .map_err(|e| e.to_string())
                .and_then(|report| write_json(&json, &report))
        }
        Command::Scale {
            tasks,
            actors,
            json,
        } => raya::init(raya::Config::default())
            .and_then(|()| scale::run(tasks, actors))
            .map_err(|e| e.to_string())
            .and_then(|report| json.map_or(Ok(()), |p| write_json(&p, &report))),
    };
    raya::shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raya: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::microbenchmark::key;

    #[test]
    fn benchmark_keys_follow_rays_convention() {
        assert_eq!(
            key("single client get calls (Plasma Store)"),
            "single_client_get_calls_Plasma_Store"
        );
        assert_eq!(
            key("1:n async-actor calls async"),
            "1_n_async_actor_calls_async"
        );
    }
}
