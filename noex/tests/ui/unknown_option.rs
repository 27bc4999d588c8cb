use noex::behavior;

#[behavior(remote)]
pub struct Counter {
    count: u64,
}

fn main() {}
