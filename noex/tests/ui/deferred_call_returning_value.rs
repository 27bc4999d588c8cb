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
    fn get(&self, reply: noex::ReplyTo<u64>) -> u64 {
        reply.send(self.count);
        self.count
    }
}

fn main() {}
