//! `raya microbenchmark`: Ray's `ray microbenchmark` workloads, under Ray's names, measured the
//! way Ray measures them (a warm-up, then rounds of repeated calls; mean ± standard deviation of
//! the per-round rates).

use std::sync::Arc;
use std::time::{Duration, Instant};

use raya::prelude::*;
use serde::Serialize;

/// The value of a trivial task or method: a few bytes, like Ray's `b"ok"`.
pub(crate) type Small = [u8; 2];
const OK: Small = *b"ok";

#[raya::remote]
pub(crate) fn small_value() -> Small {
    OK
}

#[raya::remote]
fn small_value_batch(n: usize) -> raya::Result<usize> {
    let refs: Vec<_> = (0..n).map(|_| small_value::remote()).collect();
    raya::get_all(&refs)?;
    Ok(0)
}

#[raya::remote]
fn create_object_containing_ref() -> raya::Result<Vec<ObjectRef<i64>>> {
    (0..10_000).map(|_| raya::put(1i64)).collect()
}

#[raya::remote]
fn do_put_small() -> raya::Result<()> {
    for _ in 0..100 {
        raya::put(0i64)?;
    }
    Ok(())
}

#[raya::remote]
fn do_put_large() -> raya::Result<()> {
    for _ in 0..10 {
        // A fresh zeroed array of 10 Mi int64 (80 MiB), as Ray's `np.zeros(10 * 1024 * 1024)`,
        // moved into the store.
        raya::put(vec![0i64; 10 * 1024 * 1024])?;
    }
    Ok(())
}

#[raya::remote]
fn work(actors: Vec<ActorHandle<BenchActor>>, n: usize) -> raya::Result<()> {
    let refs: Vec<_> = (0..n)
        .map(|i| actors[i % actors.len()].small_value())
        .collect();
    raya::get_all(&refs)?;
    Ok(())
}

#[raya::remote]
fn async_actor_work(actors: Vec<ActorHandle<AsyncBenchActor>>, n: usize) -> raya::Result<()> {
    let refs: Vec<_> = (0..n)
        .map(|i| actors[i % actors.len()].small_value())
        .collect();
    raya::get_all(&refs)?;
    Ok(())
}

/// Ray's `Actor` (`num_cpus=0`).
#[raya::actor(num_cpus = 0)]
pub(crate) struct BenchActor;

#[raya::actor]
impl BenchActor {
    fn new() -> Self {
        BenchActor
    }
    fn small_value(&self) -> Small {
        OK
    }
    fn small_value_arg(&self, _x: i64) -> Small {
        OK
    }
    fn small_value_batch(&self, n: usize) -> raya::Result<()> {
        let refs: Vec<_> = (0..n).map(|_| small_value::remote()).collect();
        raya::get_all(&refs)?;
        Ok(())
    }
}

/// Ray's `AsyncActor`.
#[raya::actor]
pub(crate) struct AsyncBenchActor;

#[raya::actor]
impl AsyncBenchActor {
    fn new() -> Self {
        AsyncBenchActor
    }
    async fn small_value(&self) -> Small {
        OK
    }
    async fn small_value_with_arg(&self, _x: i64) -> Small {
        OK
    }
}

/// Ray's `Client` (`num_cpus=0`), calling a list of servers.
#[raya::actor(num_cpus = 0)]
pub(crate) struct Client {
    servers: Vec<ActorHandle<BenchActor>>,
}

#[raya::actor]
impl Client {
    fn new(servers: Vec<ActorHandle<BenchActor>>) -> Self {
        Client { servers }
    }
    fn small_value_batch(&self, n: usize) -> raya::Result<()> {
        let refs: Vec<_> = self
            .servers
            .iter()
            .flat_map(|s| (0..n).map(move |_| s.small_value()))
            .collect();
        raya::get_all(&refs)?;
        Ok(())
    }
    fn small_value_batch_arg(&self, n: usize) -> raya::Result<()> {
        let x = raya::put(0i64)?;
        let refs: Vec<_> = self
            .servers
            .iter()
            .flat_map(|s| (0..n).map(|_| s.small_value_arg(&x)).collect::<Vec<_>>())
            .collect();
        raya::get_all(&refs)?;
        Ok(())
    }
}

/// `Client` for async servers.
#[raya::actor(num_cpus = 0)]
pub(crate) struct AsyncClient {
    servers: Vec<ActorHandle<AsyncBenchActor>>,
}

#[raya::actor]
impl AsyncClient {
    fn new(servers: Vec<ActorHandle<AsyncBenchActor>>) -> Self {
        AsyncClient { servers }
    }
    fn small_value_batch(&self, n: usize) -> raya::Result<()> {
        let refs: Vec<_> = self
            .servers
            .iter()
            .flat_map(|s| (0..n).map(move |_| s.small_value()))
            .collect();
        raya::get_all(&refs)?;
        Ok(())
    }
}

/// How long to warm up and measure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Timing {
    /// Warm-up before the measured rounds.
    pub warmup: Duration,
    /// Least duration of one round.
    pub round: Duration,
    /// Number of measured rounds.
    pub rounds: usize,
}

impl Timing {
    /// Ray's timing: 1 s of warm-up, then 4 rounds of at least 2 s.
    pub(crate) fn ray() -> Timing {
        Timing {
            warmup: Duration::from_secs(1),
            round: Duration::from_secs(2),
            rounds: 4,
        }
    }

    /// A quick run: 0.1 s of warm-up, rounds of at least 0.2 s.
    pub(crate) fn quick() -> Timing {
        Timing {
            warmup: Duration::from_millis(100),
            round: Duration::from_millis(200),
            rounds: 4,
        }
    }
}

/// One workload's figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measurement {
    /// The workload's name (Ray's).
    pub name: String,
    /// Ray's JSON key for it.
    pub key: String,
    /// Mean of the per-round rates (per second).
    pub per_second: f64,
    /// Standard deviation of the per-round rates.
    pub sd: f64,
    /// The per-round rates.
    pub rounds: Vec<f64>,
    /// What the workload measures, where it differs from Ray's.
    pub note: Option<String>,
}

/// Ray's key for a name: spaces, `:` and `-` become `_`, parentheses go.
pub(crate) fn key(name: &str) -> String {
    name.replace([' ', ':', '-'], "_").replace(['(', ')'], "")
}

pub(crate) struct Bench {
    pub(crate) timing: Timing,
    pub(crate) filter: Option<String>,
    pub(crate) skip: Option<String>,
    pub(crate) results: Vec<Measurement>,
}

impl Bench {
    pub(crate) fn wanted(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
            && self.skip.as_deref().is_none_or(|s| !name.contains(s))
    }

    /// Runs `f` as Ray's `timeit` does and prints `<name> per second <mean> +- <sd>`.
    pub(crate) fn timeit(
        &mut self,
        name: &str,
        multiplier: f64,
        note: Option<&str>,
        mut f: impl FnMut() -> raya::Result<()>,
    ) -> raya::Result<()> {
        if !self.wanted(name) {
            return Ok(());
        }
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed() < self.timing.warmup || count == 0 {
            f()?;
            count += 1;
        }
        let step = count / 10 + 1;
        let mut rates = Vec::with_capacity(self.timing.rounds);
        for _ in 0..self.timing.rounds {
            let start = Instant::now();
            let mut count = 0u64;
            while start.elapsed() < self.timing.round {
                for _ in 0..step {
                    f()?;
                }
                count += step;
            }
            rates.push(multiplier * count as f64 / start.elapsed().as_secs_f64());
        }
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let sd =
            (rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rates.len() as f64).sqrt();
        println!("{name} per second {mean:.2} +- {sd:.2}");
        self.results.push(Measurement {
            name: name.to_string(),
            key: key(name),
            per_second: mean,
            sd,
            rounds: rates,
            note: note.map(str::to_string),
        });
        Ok(())
    }
}

/// What the run reports besides the figures.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Logical CPUs of the node.
    pub cpus: usize,
    /// "n" of the n-actor workloads.
    pub n_actors: usize,
    /// The timing used.
    pub timing: Timing,
    /// Every workload's figures.
    pub results: Vec<Measurement>,
}

/// Every workload's name, in the order they run.
pub(crate) const WORKLOADS: &[&str] = &[
    "single client get calls (Plasma Store)",
    "single client put calls (Plasma Store)",
    "multi client put calls (Plasma Store)",
    "single client put gigabytes",
    "single client put gigabytes (copy)",
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

/// The machine's floors for copying an 800 MiB value, measured beside the put workloads: what
/// any put that copies can reach on this machine.
pub(crate) const FLOORS: [&str; 2] = [
    "single client put gigabytes (floor: fill a fresh 800 MiB allocation)",
    "single client put gigabytes (floor: memcpy into a warm 800 MiB buffer)",
];

/// How Raya's workloads differ from Ray's, printed before the figures.
pub(crate) const DIFFERENCES: &str = "\
Differences from Ray's `ray microbenchmark`:
- \"n\" actors is the number of CPUs (at least 2); Ray uses cpu_count() // 2, which is 1 on a
  2-core machine.
- Ray sleeps 10 s before each workload; Raya does not (the machine is otherwise idle).
- single client put gigabytes: Ray copies an 800 MiB array into shared memory on every put. Here
  the caller shares one immutable 800 MiB buffer (Arc) with the store: nothing is copied. The
  \"(copy)\" line clones the buffer and moves the clone in, which is what Ray's put costs; the
  two \"(floor: ...)\" lines measure the machine's limits for any put that copies.
- multi client put gigabytes: each task makes fresh zeroed 80 MiB arrays (as np.zeros does) and
  moves them into the store; nothing is copied.
- placement group create/removal: placement groups do not exist yet.
";

/// Runs every workload whose name contains `filter` and not `skip` (Ray's `TESTS_TO_RUN` and
/// `TESTS_TO_SKIP`).
pub(crate) fn run(
    timing: Timing,
    filter: Option<String>,
    skip: Option<String>,
) -> raya::Result<Report> {
    let cpus = raya::cluster_resources()?
        .get("CPU")
        .copied()
        .unwrap_or(1.0) as usize;
    let n_cpu = cpus.max(2);
    let mut b = Bench {
        timing: timing.clone(),
        filter,
        skip,
        results: Vec::new(),
    };

    let value = raya::put(0i64)?;
    b.timeit(WORKLOADS[0], 1.0, None, || raya::get(&value).map(drop))?;
    b.timeit(WORKLOADS[1], 1.0, None, || raya::put(0i64).map(drop))?;
    b.timeit(WORKLOADS[2], 1000.0, None, || {
        let refs: Vec<_> = (0..10).map(|_| do_put_small::remote()).collect();
        raya::get_all(&refs).map(drop)
    })?;
    if b.wanted(WORKLOADS[3]) || b.wanted(WORKLOADS[4]) {
        let arr: Arc<Vec<i64>> = Arc::new(vec![0i64; 100 * 1024 * 1024]);
        b.timeit(
            WORKLOADS[3],
            0.8,
            Some("puts a shared immutable 800 MiB buffer (Arc): no copy"),
            || raya::put_arc(Arc::clone(&arr)).map(drop),
        )?;
        b.timeit(
            WORKLOADS[4],
            0.8,
            Some("clones the 800 MiB buffer and moves the clone into the store (Ray's copy)"),
            || raya::put((*arr).clone()).map(drop),
        )?;
        let bytes = 800 * 1024 * 1024;
        b.timeit(
            FLOORS[0],
            0.8,
            Some("a fresh allocation written once: every page faults in on first touch"),
            || {
                let v = vec![1u8; bytes];
                std::hint::black_box(&v);
                Ok(())
            },
        )?;
        let src = vec![1u8; bytes];
        let mut dst = vec![2u8; bytes];
        b.timeit(
            FLOORS[1],
            0.8,
            Some("a copy into memory already touched, as into Ray's shared memory"),
            || {
                dst.copy_from_slice(&src);
                std::hint::black_box(&dst);
                Ok(())
            },
        )?;
    }
    b.timeit(WORKLOADS[5], 1.0, None, || {
        let refs: Vec<_> = (0..1000).map(|_| small_value::remote()).collect();
        raya::get_all(&refs).map(drop)
    })?;
    b.timeit(
        WORKLOADS[6],
        8.0,
        Some("fresh zeroed 80 MiB arrays moved into the store: no copy"),
        || {
            let refs: Vec<_> = (0..10).map(|_| do_put_large::remote()).collect();
            raya::get_all(&refs).map(drop)
        },
    )?;
    let containing = create_object_containing_ref::remote();
    b.timeit(WORKLOADS[7], 1.0, None, || raya::get(&containing).map(drop))?;
    b.timeit(WORKLOADS[8], 1.0, None, || {
        let mut not_ready: Vec<_> = (0..1000).map(|_| small_value::remote()).collect();
        while !not_ready.is_empty() {
            not_ready = raya::wait(&not_ready, 1, None)?.1;
        }
        Ok(())
    })?;
    b.timeit(WORKLOADS[9], 1.0, None, || {
        raya::get(&small_value::remote()).map(drop)
    })?;
    b.timeit(WORKLOADS[10], 1000.0, None, || {
        let refs: Vec<_> = (0..1000).map(|_| small_value::remote()).collect();
        raya::get_all(&refs).map(drop)
    })?;
    if b.wanted(WORKLOADS[11]) {
        let (n, m) = (10_000, 4);
        let actors: Vec<_> = (0..m).map(|_| BenchActor::remote()).collect();
        b.timeit(WORKLOADS[11], (n * m) as f64, None, || {
            let refs: Vec<_> = actors.iter().map(|a| a.small_value_batch(n)).collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[12]) {
        let a = BenchActor::remote();
        b.timeit(WORKLOADS[12], 1.0, None, || {
            raya::get(&a.small_value()).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[13]) {
        let a = BenchActor::remote();
        b.timeit(WORKLOADS[13], 1000.0, None, || {
            let refs: Vec<_> = (0..1000).map(|_| a.small_value()).collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[14]) {
        let a = BenchActor::options().max_concurrency(16).remote()?;
        b.timeit(WORKLOADS[14], 1000.0, None, || {
            let refs: Vec<_> = (0..1000).map(|_| a.small_value()).collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[15]) {
        let n = 5000;
        let actors: Vec<_> = (0..n_cpu).map(|_| BenchActor::remote()).collect();
        let client = Client::remote(actors);
        b.timeit(WORKLOADS[15], (n * n_cpu) as f64, None, || {
            raya::get(&client.small_value_batch(n)).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[16]) {
        let (n, m) = (5000, 4);
        let actors: Vec<_> = (0..n_cpu).map(|_| BenchActor::remote()).collect();
        b.timeit(WORKLOADS[16], (m * n) as f64, None, || {
            let refs: Vec<_> = (0..m).map(|_| work::remote(actors.clone(), n)).collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[17]) {
        let n = 1000;
        let clients: Vec<_> = (0..n_cpu)
            .map(|_| Client::remote(vec![BenchActor::remote()]))
            .collect();
        b.timeit(WORKLOADS[17], (n * clients.len()) as f64, None, || {
            let refs: Vec<_> = clients.iter().map(|c| c.small_value_batch_arg(n)).collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[18]) {
        let a = AsyncBenchActor::remote();
        b.timeit(WORKLOADS[18], 1.0, None, || {
            raya::get(&a.small_value()).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[19]) {
        let a = AsyncBenchActor::remote();
        b.timeit(WORKLOADS[19], 1000.0, None, || {
            let refs: Vec<_> = (0..1000).map(|_| a.small_value()).collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[20]) {
        let a = AsyncBenchActor::remote();
        b.timeit(WORKLOADS[20], 1000.0, None, || {
            let refs: Vec<_> = (0..1000).map(|i| a.small_value_with_arg(i)).collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[21]) {
        let n = 5000;
        let actors: Vec<_> = (0..n_cpu).map(|_| AsyncBenchActor::remote()).collect();
        let client = AsyncClient::remote(actors);
        b.timeit(WORKLOADS[21], (n * n_cpu) as f64, None, || {
            raya::get(&client.small_value_batch(n)).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[22]) {
        let (n, m) = (5000, 4);
        let actors: Vec<_> = (0..n_cpu).map(|_| AsyncBenchActor::remote()).collect();
        b.timeit(WORKLOADS[22], (m * n) as f64, None, || {
            let refs: Vec<_> = (0..m)
                .map(|_| async_actor_work::remote(actors.clone(), n))
                .collect();
            raya::get_all(&refs).map(drop)
        })?;
    }
    if b.wanted(WORKLOADS[23]) {
        println!(
            "{} per second not available: placement groups do not exist yet",
            WORKLOADS[23]
        );
    }
    Ok(Report {
        cpus,
        n_actors: n_cpu,
        timing,
        results: b.results,
    })
}
