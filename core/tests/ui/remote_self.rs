// Methods belong to actors: `#[raya::remote]` is for free functions.
#[raya::remote]
fn bump(&mut self) -> u64 {
    1
}

fn main() {}
