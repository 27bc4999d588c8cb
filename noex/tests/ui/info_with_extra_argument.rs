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
    fn tick(&mut self, info: noex::Info<u64>, step: u64) {
        if let noex::Info::Message(n) = info {
            self.count += n * step;
        }
    }
}

fn main() {}
