use std::sync::mpsc::Sender;

use noex::behavior;

#[behavior]
pub struct Sink {
    count: u64,
}

#[behavior]
impl Sink {
    #[init]
    fn init() -> Self {
        Sink { count: 0 }
    }

    #[call]
    fn subscribe(&mut self, events: Sender<u64>) -> u64 {
        let _ = events.send(self.count);
        self.count
    }
}

fn main() {}
