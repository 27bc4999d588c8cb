use noex::behavior;

#[behavior(crate = "not a path")]
pub struct Counter {
    count: u64,
}

#[behavior(crate = 1)]
pub struct Other;

fn main() {}
