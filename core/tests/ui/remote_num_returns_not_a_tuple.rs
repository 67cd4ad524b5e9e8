// `num_returns = 2` needs a tuple of two values.
#[raya::remote(num_returns = 2)]
fn pair(x: u64) -> u64 {
    x
}

fn main() {}
