use noex::{Ctx, GenServer, ReplyTo};

pub struct Counter(u64);

/// Not a serde type.
pub struct Start(u64);

#[noex::remote]
impl GenServer for Counter {
    type Args = Start;
    type Call = ();
    type Reply = u64;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(start: Start, _ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Counter(start.0))
    }

    async fn handle_call(&mut self, _: (), reply: ReplyTo<u64>, _: &mut Ctx<Self>) {
        reply.send(self.0);
    }
}

fn main() {}
