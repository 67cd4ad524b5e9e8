//! The quickstart: a `square` task and a `Counter` actor, on the embedded one-node cluster.
//!
//! Run with `cargo run -p raya-examples --bin quickstart`.

use raya::prelude::*;

#[raya::remote]
fn square(x: i64) -> i64 {
    x * x
}

#[raya::actor]
struct Counter {
    value: u64,
}

#[raya::actor]
impl Counter {
    fn new(start: u64) -> Self {
        Counter { value: start }
    }

    fn increment(&mut self) -> u64 {
        self.value += 1;
        self.value
    }

    fn read(&self) -> u64 {
        self.value
    }
}

fn main() -> raya::Result<()> {
    raya_examples::init_logging();
    raya::init(raya::Config::default())?;

    // A task: runs on a worker thread; the result lives in the object store.
    let r = square::remote(4);
    println!("square(4) = {}", raya::get(&r)?);

    // Tasks fan out over every core; results can feed other tasks without a round trip.
    let squares: Vec<ObjectRef<i64>> = (0..10).map(square::remote).collect();
    println!("squares of 0..10 = {:?}", raya::get_all(&squares)?);

    // An actor: state kept between calls, calls from one caller run in order.
    let c = Counter::remote(0);
    let refs: Vec<ObjectRef<u64>> = (0..10).map(|_| c.increment()).collect();
    println!("counter after 10 increments: {:?}", raya::get_all(&refs)?);

    // Four counters, read in parallel.
    let counters: Vec<_> = (0..4).map(|i| Counter::remote(i * 10)).collect();
    for c in &counters {
        c.increment();
    }
    let reads: Vec<ObjectRef<u64>> = counters.iter().map(|c| c.read()).collect();
    println!("four counters: {:?}", raya::get_all(&reads)?);

    raya::shutdown();
    Ok(())
}
