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

    #[call]
    #[tag = 7]
    fn get(&self) -> u64 {
        self.count
    }

    #[cast]
    #[tag = 7]
    fn reset(&mut self) {
        self.count = 0;
    }
}

fn main() {}
