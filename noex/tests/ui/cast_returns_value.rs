use noex::behavior;

#[behavior]
pub struct Counter {
    count: u64,
}

#[behavior]
impl Counter {
    #[init]
    fn init(count: u64) -> Self {
        Counter { count }
    }

    #[cast]
    fn add(&mut self, n: u64) -> u64 {
        self.count += n;
        self.count
    }
}

fn main() {}
