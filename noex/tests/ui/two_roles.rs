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
    #[cast]
    fn reset(&mut self) {
        self.count = 0;
    }
}

fn main() {}
