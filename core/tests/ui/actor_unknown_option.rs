// Actor options are checked like task options.
#[raya::actor(max_restart = 2)]
struct Counter {
    n: u64,
}

fn main() {}
