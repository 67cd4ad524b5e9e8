//! `raya start`, `raya stop` and `raya status`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use raya_cluster::gcs::nodes::{GetAllNodes, NodeInfo, NodeState};
use raya_cluster::transport::{self, NetConfig, Network, Role, Target};

/// What `raya start` was asked for.
#[derive(clap::Args)]
pub(crate) struct StartArgs {
    /// Start the head of a new cluster.
    #[arg(long, conflicts_with = "address")]
    pub head: bool,
    /// The head to join (`host:port`); without it, the head this machine started last, or
    /// one found on the LAN by mDNS.
    #[arg(long)]
    pub address: Option<String>,
    /// Port to listen on (head default: 6379; node default: any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Host to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    /// CPUs the node offers (default: the machine's).
    #[arg(long)]
    pub num_cpus: Option<usize>,
    /// A custom resource the node offers, as name=amount (repeatable).
    #[arg(long = "resource", value_parser = parse_resource)]
    pub resources: Vec<(String, f64)>,
    /// Labels of the node, as key=value pairs separated by commas (`region=us-west,disk=ssd`),
    /// which the label selectors of tasks and actors match.
    #[arg(long, value_parser = raya_common::labels::parse_node_labels)]
    pub labels: Option<raya_common::labels::NodeLabels>,
    /// Keep the node's state here instead of a temporary directory (a head restarted on
    /// the same directory reloads its tables).
    #[arg(long)]
    pub session_dir: Option<PathBuf>,
    /// Do not announce or discover nodes on the LAN with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Declare a node dead after this many milliseconds without heartbeats (head only).
    #[arg(long)]
    pub node_timeout_ms: Option<u64>,
    /// Run in the foreground until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub block: bool,
    /// The cluster key file (a head's session directory holds it as `cluster_key`; default:
    /// `RAYA_CLUSTER_KEY`, else for a head its session's key, created the first time, and for
    /// a node the key of the head this machine started last).
    #[arg(long)]
    pub cluster_key_file: Option<PathBuf>,
    /// Run without a cluster key: any host that can reach the port can join the cluster and
    /// act as any node.
    #[arg(long)]
    pub insecure_no_cluster_key: bool,
}

/// Parses `name=amount`.
pub(crate) fn parse_resource(s: &str) -> Result<(String, f64), String> {
    let (name, amount) = s
        .split_once('=')
        .ok_or_else(|| format!("resource {s:?}: expected name=amount"))?;
    let amount: f64 = amount
        .trim()
        .parse()
        .map_err(|_| format!("resource {s:?}: {amount:?} is not a number"))?;
    if name.trim().is_empty() || !amount.is_finite() || amount < 0.0 {
        return Err(format!(
            "resource {s:?}: needs a name and a non-negative amount"
        ));
    }
    Ok((name.trim().to_string(), amount))
}

fn config(a: &StartArgs) -> raya::Config {
    let mut c = raya::Config::default()
        .serves(true)
        .host(a.host.clone())
        .mdns(!a.no_mdns);
    if a.head {
        c = c.head(a.port.unwrap_or(6379));
    } else {
        c = c.address(a.address.clone().unwrap_or_else(|| "auto".into()));
        if let Some(p) = a.port {
            c = c.port(p);
        }
    }
    if let Some(n) = a.num_cpus {
        c = c.num_cpus(n);
    }
    for (name, amount) in &a.resources {
        c = c.resource(name.clone(), *amount);
    }
    for (k, v) in a.labels.iter().flatten() {
        c = c.label(k.clone(), v.clone());
    }
    if let Some(d) = &a.session_dir {
        c = c.session_dir(d.clone());
    }
    if let Some(ms) = a.node_timeout_ms {
        c = c.node_timeout(Duration::from_millis(ms));
    }
    if let Some(f) = &a.cluster_key_file {
        c = c.cluster_key_file(f.clone());
    }
    if a.insecure_no_cluster_key {
        c = c.insecure_no_cluster_key();
    }
    c
}

/// Runs the node in this process until SIGINT or SIGTERM.
fn run_blocking(a: &StartArgs, ready: Option<PathBuf>) -> Result<(), String> {
    let started = raya::init(config(a)).and_then(|()| raya::cluster_address());
    let address = match started {
        Ok(addr) => addr.unwrap_or_default(),
        Err(e) => {
            if let Some(r) = &ready {
                let _ = raya_common::private_fs::write(r, format!("error\n{e}\n").as_bytes());
            }
            return Err(e.to_string());
        }
    };
    // Where the head's key is, for its announcement (empty: no key).
    let key_file = match (raya::session_dir(), raya::cluster_key()) {
        (Ok(dir), Ok(Some(_))) if a.head => match &a.cluster_key_file {
            Some(f) => f.display().to_string(),
            None if dir.join("cluster_key").exists() => {
                dir.join("cluster_key").display().to_string()
            }
            None => "the key in RAYA_CLUSTER_KEY".into(),
        },
        _ => String::new(),
    };
    if let Some(r) = &ready {
        let _ =
            raya_common::private_fs::write(r, format!("ok\n{address}\n{key_file}\n").as_bytes());
    }
    announce(a.head, &address, &key_file);
    raya::serve().map_err(|e| e.to_string())
}

/// Says how to join: `key_file` is the head's cluster key, empty when it runs without one.
fn announce(head: bool, address: &str, key_file: &str) {
    if head {
        println!("Raya head started at {address}.");
        match key_file {
            "" => {
                println!("It runs WITHOUT a cluster key: anyone who can reach it can join.");
                println!("    raya start --address {address} --insecure-no-cluster-key");
            }
            key => {
                println!("Only holders of its cluster key can join: {key} (keep it private).");
                println!("Nodes and drivers on this machine find it by themselves. Elsewhere:");
                println!("    raya start --address {address} --cluster-key-file <copy of {key}>");
                println!("or run your own binary as a driver or a worker node with:");
                println!(
                    "    RAYA_ADDRESS={address} RAYA_CLUSTER_KEY=$(tail -n1 <key file>) cargo run ..."
                );
                println!(
                    "    RAYA_ADDRESS={address} RAYA_CLUSTER_KEY=... RAYA_ROLE=worker cargo run ..."
                );
            }
        }
    } else {
        println!("Raya node started; it joined the cluster at {address}.");
    }
    println!("Stop the nodes started on this machine with `raya stop`.");
}

/// `raya start`: in the foreground with `--block`, else as a background process whose start
/// this waits for.
pub(crate) fn start(a: StartArgs) -> Result<(), String> {
    if a.block {
        let ready = std::env::var_os("RAYA_READY_FILE").map(PathBuf::from);
        return run_blocking(&a, ready);
    }
    let base = std::env::temp_dir().join("raya").join("logs");
    raya_common::private_fs::create_dir(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let stamp = raya_common::time::now_ms();
    let log = base.join(format!("node_{stamp}.log"));
    let ready = base.join(format!("node_{stamp}.ready"));
    let out =
        raya_common::private_fs::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    args.push("--block".into());
    let mut child = std::process::Command::new(exe)
        .args(&args)
        .env("RAYA_READY_FILE", &ready)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start the node: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && let Some((status, rest)) = text.split_once('\n')
        {
            let _ = std::fs::remove_file(&ready);
            let rest = rest.trim();
            return if status == "ok" {
                let (address, key_file) = rest.split_once('\n').unwrap_or((rest, ""));
                announce(a.head, address.trim(), key_file.trim());
                println!("Its log: {}", log.display());
                Ok(())
            } else {
                Err(format!(
                    "the node did not start: {rest} (log: {})",
                    log.display()
                ))
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the node exited during start-up ({status}); log: {}",
                log.display()
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "the node did not start in time; log: {}",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// `raya stop`: stops every node this machine runs (SIGTERM, then SIGKILL after `grace`).
pub(crate) fn stop(grace: Duration) -> Result<(), String> {
    let dir = raya::nodes_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(_) => {
            println!("No Raya node is running.");
            return Ok(());
        }
    };
    // Nodes first, heads last: nodes leaving a live head unregister cleanly.
    let mut found: Vec<(bool, u32, std::path::PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let record = std::fs::read_to_string(e.path()).unwrap_or_default();
        // Only the process that wrote the record is signalled: a pid the system gave to
        // another process since that node exited is left alone.
        if alive(pid) && raya::record_matches_process(pid, &record) {
            found.push((record.starts_with("head"), pid, e.path()));
        } else {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let mut pids = Vec::new();
    let mut killed = 0;
    for heads in [false, true] {
        let group: Vec<(u32, std::path::PathBuf)> = found
            .iter()
            .filter(|(h, _, _)| *h == heads)
            .map(|(_, p, path)| (*p, path.clone()))
            .collect();
        for (pid, _) in &group {
            signal(*pid, "-TERM");
        }
        let deadline = Instant::now() + grace;
        while group.iter().any(|(p, _)| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for (pid, path) in &group {
            if alive(*pid) {
                signal(*pid, "-KILL");
                killed += 1;
            }
            let _ = std::fs::remove_file(path);
        }
        pids.extend(group);
    }
    let _ = std::fs::remove_file(raya::current_cluster_file());
    let _ = std::fs::remove_file(raya::current_cluster_key_file());
    println!(
        "Stopped {} Raya node(s){}.",
        pids.len(),
        if killed > 0 {
            format!(" ({killed} did not stop in time and were killed)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The head's address: given, from `RAYA_ADDRESS`, or the cluster this machine started last.
fn head_address(address: Option<String>) -> Result<String, String> {
    address
        .or_else(|| {
            std::env::var("RAYA_ADDRESS")
                .ok()
                .filter(|s| !s.is_empty() && s != "auto")
        })
        .or_else(|| {
            std::fs::read_to_string(raya::current_cluster_file())
                .ok()
                .map(|s| s.trim().to_string())
        })
        .ok_or_else(|| "no cluster address: pass --address or set RAYA_ADDRESS".into())
}

/// The node table of the cluster at `address` (or the current one).
pub(crate) fn fetch_nodes(address: Option<String>) -> Result<(String, Vec<NodeInfo>), String> {
    let address = head_address(address)?;
    let addr = transport::parse_address(&address).map_err(|e| e.to_string())?;
    let mut c = NetConfig::new(Role::Client);
    c.listen = vec![
        "/ip4/127.0.0.1/tcp/0"
            .parse()
            .map_err(|_| "listen address")?,
    ];
    c.bootstrap = vec![addr];
    // The cluster's key when one is known (a cluster run without one takes anyone).
    c.cluster_key = raya::joining_cluster_key(None, None).ok();
    let key = libp2p_identity::Keypair::generate_ed25519();
    let network = Network::start(key, c, transport::Router::new()).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = rt.block_on(async {
        let head = network
            .wait_for_head(Duration::from_secs(10))
            .await
            .ok_or_else(|| format!("no Raya head answers at {address}"))?;
        network
            .ask(head, Target::System, GetAllNodes)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    });
    network.shutdown();
    result.map(|nodes| (address, nodes))
}

fn resources(r: &raya_common::ResourceSet) -> String {
    let mut out = Vec::new();
    for (name, amount) in r.iter() {
        let shown = match name {
            "memory" | "object_store_memory" => format!("{:.1}GiB", amount / (1u64 << 30) as f64),
            _ => format!("{amount}"),
        };
        out.push(format!("{name}={shown}"));
    }
    out.join(" ")
}

/// `writeln!` into a `String` (which cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// `raya status`: the cluster's nodes with their state and resources, and its pending demand.
pub(crate) fn status(address: Option<String>) -> Result<(), String> {
    let (address, mut nodes) = fetch_nodes(address)?;
    let mut out = String::new();
    nodes.sort_by_key(|n| (n.state != NodeState::Alive, !n.is_head, n.start_time_ms));
    let alive = nodes.iter().filter(|n| n.state == NodeState::Alive).count();
    outln!(
        out,
        "Cluster at {address}: {alive} alive node(s), {} dead",
        nodes.len() - alive
    );
    outln!(out, "");
    for n in &nodes {
        let state = match n.state {
            NodeState::Alive => "ALIVE",
            NodeState::Dead => "DEAD",
        };
        outln!(
            out,
            "{state:5} {} {}{} at {}",
            n.node_id,
            n.hostname,
            if n.is_head { " (head)" } else { "" },
            n.addresses.first().map(String::as_str).unwrap_or("-"),
        );
        if n.state == NodeState::Alive {
            outln!(out, "      total     {}", resources(&n.resources_total));
            outln!(out, "      available {}", resources(&n.resources_available));
            outln!(out, "      queued tasks {}", n.queued_tasks);
            if !n.labels.is_empty() {
                let labels: Vec<String> =
                    n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                outln!(out, "      labels    {}", labels.join(","));
            }
        } else if let Some(r) = &n.death_reason {
            outln!(out, "      {r}");
        }
    }
    let mut demand: BTreeMap<String, u64> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.state == NodeState::Alive) {
        for (shape, count) in &n.pending_demand {
            *demand.entry(resources(shape)).or_default() += count;
        }
    }
    outln!(out, "");
    if demand.is_empty() {
        outln!(out, "Pending demand: none");
    } else {
        outln!(out, "Pending demand:");
        for (shape, count) in demand {
            outln!(out, "    {{{shape}}}: {count} task(s)");
        }
    }
    // A closed pipe (`raya status | head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    Ok(())
}
