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

    #[init]
    fn from_zero() -> Self {
        Counter { count: 0 }
    }

    #[call]
    fn get(&self) -> u64 {
        self.count
    }
}

fn main() {}
