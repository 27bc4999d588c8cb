use noex::{Ctx, GenServer, ReplyTo};

pub struct Counter(u64);

/// Not a serde type.
pub struct Get;

#[noex::remote]
impl GenServer for Counter {
    type Args = u64;
    type Call = Get;
    type Reply = u64;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(start: u64, _ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Counter(start))
    }

    async fn handle_call(&mut self, _: Get, reply: ReplyTo<u64>, _: &mut Ctx<Self>) {
        reply.send(self.0);
    }
}

fn main() {}
