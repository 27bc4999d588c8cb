//! A local behaviour may take and return values that cannot be serialized.

use std::sync::{Arc, Mutex};

use noex::{behavior, ReplyTo};

#[behavior]
pub struct Hub {
    shared: Arc<Mutex<u8>>,
    subscribers: Vec<async_channel::Sender<u64>>,
}

#[behavior(local)]
impl Hub {
    #[init]
    fn init(shared: Arc<Mutex<u8>>) -> Self {
        Hub {
            shared,
            subscribers: Vec::new(),
        }
    }

    #[call]
    fn subscribe(&mut self) -> async_channel::Receiver<u64> {
        let (sender, receiver) = async_channel::unbounded();
        self.subscribers.push(sender);
        receiver
    }

    #[call]
    fn share(&self, reply: ReplyTo<Arc<Mutex<u8>>>) {
        reply.send(Arc::clone(&self.shared));
    }

    #[cast]
    fn add(&mut self, sender: async_channel::Sender<u64>) {
        self.subscribers.push(sender);
    }
}

fn main() {}
