use noex::behavior;

#[behavior]
pub struct Counter {
    count: u64,
}

#[behavior]
impl Counter {
    fn new(count: u64) -> Self {
        Counter { count }
    }

    #[call]
    fn get(&self) -> u64 {
        self.count
    }
}

fn main() {}
