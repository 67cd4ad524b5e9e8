//! The `raya` command line.
//!
//! - `raya microbenchmark`: Ray's microbenchmark workloads on an embedded node, printed in Ray's
//!   format and written to a JSON file.
//! - `raya scale`: a million queued tasks and a hundred thousand actors on one node.
//! - `raya start --head` / `raya start --address <head>`: a cluster head, or a node joining one.
//! - `raya stop`: stops every node of this machine.
//! - `raya status`: the cluster's nodes, their resources and pending demand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cluster;
mod cluster_bench;
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
    /// Start a cluster node: the head (`--head`: GCS, global scheduler and workers) or a node
    /// joining a head (`--address`). Runs in the background unless `--block`.
    Start(cluster::StartArgs),
    /// Stop every Raya node running on this machine.
    Stop {
        /// Seconds to wait for a clean exit before killing.
        #[arg(long, default_value_t = 10)]
        grace: u64,
    },
    /// Show the cluster's nodes (state, resources) and pending demand.
    Status {
        /// The head's address (default: RAYA_ADDRESS, or the cluster this machine started last).
        #[arg(long)]
        address: Option<String>,
    },
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
        /// Measure across two nodes on this machine instead (this process is the head and a
        /// second `raya` process joins it over loopback), with the loopback floors.
        #[arg(long)]
        two_nodes: bool,
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

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
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
    let cli = Cli::parse();
    init_logging(match cli.command {
        // A node's log says when peers come and go.
        Command::Start(_) => "warn,raya=info,raya_cluster=info",
        _ => "warn",
    });
    let outcome = match cli.command {
        Command::Start(args) => cluster::start(args),
        Command::Stop { grace } => cluster::stop(std::time::Duration::from_secs(grace)),
        Command::Status { address } => cluster::status(address),
        Command::Microbenchmark {
            quick,
            rounds,
            filter,
            skip,
            json,
            num_cpus,
            two_nodes,
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
            if two_nodes {
                config = config.head(0).host("127.0.0.1").mdns(false);
                println!(
                    "Two nodes on this machine over loopback (libp2p TCP + Noise + Yamux); work \
                     that asks for the `{}` resource runs on the second node.",
                    cluster_bench::REMOTE
                );
            } else {
                print!("{}", microbenchmark::DIFFERENCES);
            }
            raya::init(config)
                .and_then(|()| {
                    if two_nodes {
                        cluster_bench::run(timing, filter, skip)
                    } else {
                        microbenchmark::run(timing, filter, skip)
                    }
                })
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
