use noex::behavior;

#[behavior]
pub struct Counter {
    count: u64,
}

#[behavior]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { count: 0 }
    }

    #[cast]
    fn add(&mut self, n: u64) {
        self.count += n;
    }

    // Clashes with the awaited form generated for `add`.
    #[call]
    fn add_wait(&self) -> u64 {
        self.count
    }
}

// The impl block is kept despite the error: its methods are there, so using them adds no
// error of its own.
fn main() {
    let mut counter = Counter::init();
    counter.add(1);
    let _ = counter.add_wait();
}
