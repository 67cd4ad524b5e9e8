// A handled message is delivered by `Type::Message`: it must not share a name with a method.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[allow(non_camel_case_types)]
struct read;

impl raya::Message for read {
    type Result = u64;
}

#[raya::actor]
struct Counter {
    n: u64,
}

impl raya::Handler<read> for Counter {
    fn handle(&mut self, _: read, _: &mut raya::Context<Self>) -> u64 {
        self.n
    }
}

#[raya::actor(handles(read))]
impl Counter {
    fn new() -> Self {
        Counter { n: 0 }
    }
    fn read(&self) -> u64 {
        self.n
    }
}

fn main() {}
