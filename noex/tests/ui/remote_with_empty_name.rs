use noex::{Ctx, GenServer, ReplyTo};

pub struct Counter(u64);

#[noex::remote(name = "")]
impl GenServer for Counter {
    type Args = u64;
    type Call = ();
    type Reply = u64;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(start: u64, _ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Counter(start))
    }

    async fn handle_call(&mut self, _: (), reply: ReplyTo<u64>, _: &mut Ctx<Self>) {
        reply.send(self.0);
    }
}

// The impl block is kept despite the error: `Counter` is still a `GenServer`.
fn main() {
    let node = noex::Node::new();
    let _ = node.spawn::<Counter>(0);
}
