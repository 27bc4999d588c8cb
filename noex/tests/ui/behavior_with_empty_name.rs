use noex::behavior;

#[behavior(name = "")]
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
    fn get(&self) -> u64 {
        self.count
    }
}

// The struct is kept despite the error, with its `BehaviorName`: `Counter` is still a
// behaviour.
fn main() {
    let node = noex::Node::new();
    let _ = node.spawn::<Counter>(0);
}
