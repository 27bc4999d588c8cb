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

    #[info]
    fn tick(&mut self, n: Vec<Option<u64>>) {
        self.count += n.len() as u64;
    }
}

fn main() {}
