//! An actor pipeline: a producer makes batches, a transformer scales them, a sink sums them.
//! The driver only wires the stages together: each stage's result is an `ObjectRef` handed
//! straight to the next stage, so batches flow from actor to actor through the object store
//! without passing through the driver. Calls from the driver to each actor run in order.
//!
//! Run with `cargo run -p raya-examples --bin pipeline`.

use raya::prelude::*;

#[raya::actor]
struct Producer {
    batch_size: u64,
}

#[raya::actor]
impl Producer {
    fn new(batch_size: u64) -> Self {
        Producer { batch_size }
    }

    /// Batch `i`: the numbers `i*size .. (i+1)*size`.
    fn produce(&self, i: u64) -> Vec<u64> {
        (i * self.batch_size..(i + 1) * self.batch_size).collect()
    }
}

#[raya::actor]
struct Transformer {
    factor: u64,
    batches: u64,
}

#[raya::actor]
impl Transformer {
    fn new(factor: u64) -> Self {
        Transformer { factor, batches: 0 }
    }

    fn transform(&mut self, batch: Vec<u64>) -> Vec<u64> {
        self.batches += 1;
        batch.into_iter().map(|x| x * self.factor).collect()
    }

    fn batches(&self) -> u64 {
        self.batches
    }
}

#[raya::actor]
struct Sink {
    total: u64,
    received: Vec<u64>,
}

#[raya::actor]
impl Sink {
    fn new() -> Self {
        Sink {
            total: 0,
            received: Vec::new(),
        }
    }

    /// Adds a batch; records the batch's first element to show the arrival order.
    fn consume(&mut self, batch: Vec<u64>) -> u64 {
        self.received.push(batch.first().copied().unwrap_or(0));
        self.total += batch.iter().sum::<u64>();
        self.total
    }

    fn total(&self) -> u64 {
        self.total
    }

    fn in_order(&self) -> bool {
        self.received.windows(2).all(|w| w[0] < w[1])
    }
}

fn main() -> raya::Result<()> {
    raya_examples::init_logging();
    raya::init(raya::Config::default())?;
    let (batches, size, factor) = (50u64, 1000u64, 3u64);
    let producer = Producer::remote(size);
    let transformer = Transformer::remote(factor);
    let sink = Sink::remote();
    for i in 0..batches {
        let raw: ObjectRef<Vec<u64>> = producer.produce(i);
        let scaled: ObjectRef<Vec<u64>> = transformer.transform(raw);
        sink.consume(scaled);
    }
    let total = raya::get(&sink.total())?;
    let n = batches * size;
    let expected = factor * n * (n - 1) / 2;
    println!(
        "pipeline: {batches} batches of {size} through 3 actors, total {total} (expected {expected})"
    );
    println!(
        "transformer saw {} batches; sink received them in order: {}",
        raya::get(&transformer.batches())?,
        raya::get(&sink.in_order())?
    );
    assert_eq!(total, expected);
    raya::shutdown();
    Ok(())
}
