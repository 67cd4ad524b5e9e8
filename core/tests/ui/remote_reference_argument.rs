// Arguments may cross threads and nodes: they are owned values.
#[raya::remote]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

fn main() {}
