use noex::behavior;

#[behavior]
pub struct Counter {
    count: u64,
}

#[behavior(local = true)]
impl Counter {
    #[init]
    fn init(count: u64) -> Self {
        Counter { count }
    }
}

fn main() {}
