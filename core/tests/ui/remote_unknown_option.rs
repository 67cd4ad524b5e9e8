// A misspelt option is named, with the ones that exist.
#[raya::remote(num_cpu = 2)]
fn heavy(x: u64) -> u64 {
    x
}

fn main() {}
