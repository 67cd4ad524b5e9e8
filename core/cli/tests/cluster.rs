//! Real multi-process clusters on loopback: `raya start` heads and nodes, `raya status`,
//! `raya stop`, and node death. Every process a test starts is killed when the test ends,
//! pass or fail, and each test keeps its node registry in its own temporary directory.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Netns, lines_of, test_dir};

/// Processes of one test cluster, killed on drop.
struct Cluster {
    tmp: PathBuf,
    children: Vec<Child>,
}

impl Cluster {
    fn new(name: &str) -> Cluster {
        let tmp = test_dir("raya-cluster-test", name);
        Cluster {
            tmp,
            children: Vec::new(),
        }
    }

    fn raya(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_raya"));
        c.env("TMPDIR", &self.tmp)
            .env_remove("RAYA_ADDRESS")
            .env("RUST_LOG", "warn,raya_cluster=info,raya=info");
        c
    }

    /// Starts a node in the foreground and waits for the line announcing its address.
    fn start(&mut self, args: &[&str]) -> (usize, String) {
        self.start_with(&[], args)
    }

    /// [`Cluster::start`] with these environment variables set too.
    fn start_with(&mut self, env: &[(&str, &str)], args: &[&str]) -> (usize, String) {
        let mut cmd = self.raya();
        cmd.envs(env.iter().copied());
        cmd.arg("start")
            .args(args)
            .args(["--block", "--host", "127.0.0.1", "--no-mdns"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start raya");
        let stdout = child.stdout.take().unwrap();
        let index = self.children.len();
        self.children.push(child);
        let rx = lines_of(stdout);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the node never announced its address");
            if let Some(rest) = line
                .strip_prefix("Raya head started at ")
                .or_else(|| line.strip_prefix("Raya node started; it joined the cluster at "))
            {
                // Keep draining its output so it never blocks on a full pipe.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return (index, rest.trim_end_matches('.').to_string());
            }
        }
    }

    fn status(&self, address: &str) -> String {
        let out = self
            .raya()
            .args(["status", "--address", address])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "raya status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Polls `raya status` until `check` accepts its output.
    fn wait_status(&self, address: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status(address);
            if check(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}; last status:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kill(&mut self, index: usize) {
        let c = &mut self.children[index];
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Nodes started in the background recorded themselves here.
        if let Ok(entries) = std::fs::read_dir(self.tmp.join("raya").join("nodes")) {
            for e in entries.flatten() {
                if let Some(pid) = e.file_name().to_str() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
        }
        if std::env::var_os("RAYA_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

fn count(status: &str, word: &str) -> usize {
    status.lines().filter(|l| l.starts_with(word)).count()
}

#[test]
fn a_three_node_cluster_forms_and_shows_in_status() {
    let mut c = Cluster::new("form");
    let (_, head) = c.start(&["--head", "--port", "0", "--num-cpus", "1"]);
    c.start(&["--address", &head, "--num-cpus", "2"]);
    c.start(&[
        "--address",
        &head,
        "--num-cpus",
        "3",
        "--resource",
        "sensor=1",
    ]);
    let s = c.wait_status(&head, "three nodes never showed alive", |s| {
        count(s, "ALIVE") == 3
    });
    assert!(
        s.contains(&format!("Cluster at {head}: 3 alive node(s), 0 dead")),
        "{s}"
    );
    assert!(s.contains("(head)"), "{s}");
    assert!(s.contains("sensor=1"), "{s}");
    assert!(s.contains("CPU=3"), "{s}");
}

#[test]
fn a_killed_node_is_reported_dead_within_the_timeout() {
    let mut c = Cluster::new("death");
    let (_, head) = c.start(&["--head", "--port", "0", "--node-timeout-ms", "2000"]);
    let (victim, _) = c.start(&["--address", &head]);
    c.wait_status(&head, "the node never joined", |s| count(s, "ALIVE") == 2);
    let killed_at = Instant::now();
    c.kill(victim);
    let s = c.wait_status(&head, "the killed node was never declared dead", |s| {
        count(s, "DEAD") == 1
    });
    assert!(s.contains("no heartbeat"), "{s}");
    // Bounded by the configured timeout plus the check period and polling, with slack for a
    // loaded machine (this is a bound on the design, not a benchmark).
    assert!(killed_at.elapsed() < Duration::from_secs(30), "{s}");
}

#[test]
fn raya_stop_stops_the_nodes_of_this_machine() {
    let c = Cluster::new("stop");
    // Background start, as a user types it.
    let out = c
        .raya()
        .args([
            "start",
            "--head",
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--no-mdns",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // It says where its key is and how to join with it.
    assert!(
        text.contains("Only holders of its cluster key can join:")
            && text.contains("raya start --address 127.0.0.1:")
            && text.contains("--cluster-key-file <copy of "),
        "{text}"
    );
    assert!(!text.contains("WITHOUT"), "{text}");
    let nodes_dir = c.tmp.join("raya").join("nodes");
    let pids: Vec<u32> = std::fs::read_dir(&nodes_dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 1, "one node recorded");
    // `raya status` finds the cluster this machine started without being told.
    let s = c.raya().arg("status").output().unwrap();
    assert!(
        String::from_utf8_lossy(&s.stdout).contains("1 alive node(s)"),
        "{}",
        String::from_utf8_lossy(&s.stdout)
    );
    let out = c.raya().arg("stop").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Stopped 1 Raya node(s)"));
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "node {pid} still running"
        );
    }
}

#[test]
fn status_without_a_cluster_is_a_clear_error() {
    let c = Cluster::new("none");
    let out = c
        .raya()
        .args(["status", "--address", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Raya head answers at 127.0.0.1:1"), "{err}");
    let out = c
        .raya()
        .args(["status", "--address", "nonsense"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad address"));
}

#[test]
fn a_head_restarted_on_its_directory_reloads_its_tables() {
    let mut c = Cluster::new("restart");
    let dir = c.tmp.join("head-session");
    let dir_s = dir.to_str().unwrap().to_string();
    let (head_index, head) = c.start(&["--head", "--port", "0", "--session-dir", &dir_s]);
    let (_, _) = c.start(&["--address", &head]);
    let s = c.wait_status(&head, "the node never joined", |s| count(s, "ALIVE") == 2);
    let joined = s
        .lines()
        .find(|l| l.starts_with("ALIVE") && !l.contains("(head)"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    // The GCS writes to disk at least every 200 ms; then the head crashes.
    std::thread::sleep(Duration::from_millis(1000));
    c.kill(head_index);
    // The same directory: the same identity, and the node table as it was.
    let (_, head2) = c.start(&["--head", "--port", "0", "--session-dir", &dir_s]);
    let s = c.status(&head2);
    assert!(
        s.contains(&joined),
        "the restarted head forgot node {joined}:\n{s}"
    );
}

#[test]
fn a_head_makes_its_cluster_key_and_only_nodes_holding_it_join() {
    use std::os::unix::fs::PermissionsExt;
    let mut c = Cluster::new("cluster-key");
    let dir = c.tmp.join("head-session");
    let dir_s = dir.to_str().unwrap().to_string();
    let (head_index, head) = c.start(&["--head", "--port", "0", "--session-dir", &dir_s]);
    let key_file = dir.join("cluster_key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is readable by others");
    let key = std::fs::read_to_string(&key_file).unwrap();
    // A node on this machine finds the recorded head's key by itself.
    c.start(&["--address", &head]);
    c.wait_status(&head, "the node never joined", |s| count(s, "ALIVE") == 2);
    // A node on another machine (its own temporary directory) without a key does not start,
    // and says how to give it one.
    let elsewhere = c.tmp.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = c
        .raya()
        .env("TMPDIR", &elsewhere)
        .env_remove("RAYA_CLUSTER_KEY")
        .args(["start", "--block", "--no-mdns", "--address", &head])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no cluster key") && err.contains("--cluster-key-file"),
        "{err}"
    );
    // With the key in its environment it joins.
    let elsewhere_s = elsewhere.to_str().unwrap();
    c.start_with(
        &[
            ("TMPDIR", elsewhere_s),
            ("RAYA_CLUSTER_KEY", key.lines().last().unwrap()),
        ],
        &["--address", &head],
    );
    c.wait_status(&head, "the node with the key never joined", |s| {
        count(s, "ALIVE") == 3
    });
    // A head restarted on its directory keeps its key.
    c.kill(head_index);
    let (_, head2) = c.start(&["--head", "--port", "0", "--session-dir", &dir_s]);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    // A cluster run without a key is an explicit choice, and its nodes must make it too.
    let open_dir = c.tmp.join("open-session");
    let (_, open) = c.start(&[
        "--head",
        "--port",
        "0",
        "--insecure-no-cluster-key",
        "--session-dir",
        open_dir.to_str().unwrap(),
    ]);
    assert!(!open_dir.join("cluster_key").exists());
    c.start(&["--address", &open, "--insecure-no-cluster-key"]);
    c.wait_status(&open, "the open node never joined", |s| {
        count(s, "ALIVE") == 2
    });
    drop(head2);
}

#[test]
fn nodes_on_one_lan_find_the_head_by_mdns() {
    let tag = format!("rt{}", std::process::id() % 100_000);
    let ns = Netns::new(&tag, 2);
    let mut c = Cluster::new("mdns");
    // Each namespace is a machine of its own, with its own temporary directory.
    let spawn_in = |c: &mut Cluster, ns_name: &str, args: &[&str]| {
        let tmp = c.tmp.join(ns_name);
        std::fs::create_dir_all(&tmp).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            ns_name,
            env!("CARGO_BIN_EXE_raya"),
            "start",
            "--block",
        ])
        .args(args)
        .env("TMPDIR", &tmp)
        .env_remove("RAYA_ADDRESS")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(tmp.join(format!("node-{}.log", c.children.len()))).unwrap());
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        c.children.push(child);
        lines_of(out)
    };
    // The cluster key, copied to both machines; a stranger on the LAN has another.
    let key = "5a".repeat(32);
    let key_file = c.tmp.join("cluster_key");
    std::fs::write(&key_file, &key).unwrap();
    let wrong_file = c.tmp.join("wrong_key");
    std::fs::write(&wrong_file, "a5".repeat(32)).unwrap();
    let (key_arg, wrong_arg) = (key_file.to_str().unwrap(), wrong_file.to_str().unwrap());
    let head_out = spawn_in(
        &mut c,
        &ns.names[1],
        &["--head", "--port", "7379", "--cluster-key-file", key_arg],
    );
    let line = head_out
        .recv_timeout(Duration::from_secs(60))
        .expect("the head started");
    assert!(line.starts_with("Raya head started at"), "{line}");
    // A host on the LAN with the wrong key finds the head by mDNS but cannot connect: it
    // never joins, and gives up when its join timeout ends.
    let stranger_out = spawn_in(&mut c, &ns.names[2], &["--cluster-key-file", wrong_arg]);
    let stranger = c.children.len() - 1;
    // No address: the node must find the head on the LAN.
    let node_out = spawn_in(&mut c, &ns.names[2], &["--cluster-key-file", key_arg]);
    let line = node_out
        .recv_timeout(Duration::from_secs(60))
        .expect("the node found the head by mDNS and joined");
    assert!(line.contains("joined the cluster at"), "{line}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.names[1],
                env!("CARGO_BIN_EXE_raya"),
                "status",
                "--address",
                "127.0.0.1:7379",
            ])
            .env("TMPDIR", &c.tmp)
            .env("RAYA_CLUSTER_KEY", &key)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        if count(&s, "ALIVE") == 2 {
            assert!(s.contains("10.77.0.2"), "{s}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mDNS node never showed:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(st) = c.children[stranger].try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the stranger neither joined nor gave up"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!status.success(), "a node with the wrong key started");
    assert!(
        stranger_out.try_iter().all(|l| !l.contains("joined")),
        "a node with the wrong key joined"
    );
    let log = std::fs::read_to_string(
        c.tmp
            .join(&ns.names[2])
            .join(format!("node-{stranger}.log")),
    )
    .unwrap();
    assert!(log.contains("no cluster head answered"), "{log}");
    drop(c);
}

#[test]
fn raya_stop_leaves_alone_a_process_that_took_a_recorded_pid() {
    let mut c = Cluster::new("stop-reused-pid");
    // A process that is not the node its record describes: the node exited and the system
    // gave its pid to this one.
    let other = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = other.id();
    c.children.push(other);
    let nodes_dir = c.tmp.join("raya").join("nodes");
    std::fs::create_dir_all(&nodes_dir).unwrap();
    let record = nodes_dir.join(pid.to_string());
    std::fs::write(&record, "node\n127.0.0.1:1\nstarted 1\n").unwrap();
    let out = c.raya().arg("stop").output().unwrap();
    assert!(out.status.success());
    assert!(
        c.children[0].try_wait().unwrap().is_none(),
        "raya stop signalled a process it did not start"
    );
    assert!(!record.exists(), "the stale record is removed");
}
