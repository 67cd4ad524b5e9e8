// An actor's impl block needs `fn new`, which runs where the actor is hosted.
#[raya::actor]
struct Counter {
    n: u64,
}

#[raya::actor]
impl Counter {
    fn read(&self) -> u64 {
        self.n
    }
}

fn main() {}
