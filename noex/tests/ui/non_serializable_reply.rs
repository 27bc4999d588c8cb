use noex::behavior;

#[behavior]
pub struct Hub {
    count: u64,
}

#[behavior]
impl Hub {
    #[init]
    fn init() -> Self {
        Hub { count: 0 }
    }

    #[call]
    fn subscribe(&mut self) -> async_channel::Receiver<u64> {
        self.count += 1;
        async_channel::unbounded().1
    }
}

fn main() {}
