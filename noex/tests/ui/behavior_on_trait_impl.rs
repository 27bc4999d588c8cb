use noex::behavior;

#[behavior]
pub struct Counter {
    count: u64,
}

#[behavior]
impl Default for Counter {
    fn default() -> Self {
        Counter { count: 0 }
    }
}

fn main() {}
