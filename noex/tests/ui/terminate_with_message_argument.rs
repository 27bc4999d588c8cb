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

    #[terminate]
    fn on_terminate(&mut self, reason: &noex::ExitReason, n: u64) {
        let _ = reason;
        self.count = n;
    }
}

fn main() {}
