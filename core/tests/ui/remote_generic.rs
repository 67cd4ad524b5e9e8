// A remote function is registered by name: it cannot be generic.
#[raya::remote]
fn identity<T>(x: T) -> T {
    x
}

fn main() {}
