use std::sync::mpsc::Sender;

use noex::behavior;

#[behavior]
pub struct Sink {
    events: Sender<u64>,
}

#[behavior]
impl Sink {
    #[init]
    fn init(events: Sender<u64>) -> Self {
        Sink { events }
    }

    #[cast]
    fn push(&mut self, n: u64) {
        let _ = self.events.send(n);
    }
}

fn main() {}
