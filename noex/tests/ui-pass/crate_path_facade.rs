//! `#[behavior(crate = path)]` (and `#[remote(crate = path)]`): the generated code names noex
//! by the given path, here a facade module re-exporting it, as a crate that renames the
//! dependency (`actors = { package = "noex", .. }`) or reaches noex through another crate
//! does. The path can also be written as a string, as serde's `crate = ".."`.

#![allow(dead_code)]

mod facade {
    pub use ::noex::*;
}

mod remote {
    use crate::facade::{behavior, Ctx, ExitReason, Info};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub enum Tick { A }

    #[behavior(crate = crate::facade, name = "facade-counter")]
    pub struct Counter { n: u64 }

    #[behavior(crate = crate::facade)]
    impl Counter {
        #[init]
        fn init(start: u64) -> Result<Self, String> { Ok(Counter { n: start }) }
        #[call]
        fn get(&self) -> u64 { self.n }
        #[call]
        async fn bytes(&self, data: Vec<u8>) -> Vec<u8> { data }
        #[cast]
        fn add(&mut self, n: u64) { self.n += n; }
        #[cast]
        #[tag = 7]
        fn reset(&mut self) { self.n = 0; }
        #[info]
        async fn tick(&mut self, ctx: &mut Ctx<Self>, info: Info<Tick>) { let _ = (ctx, info); }
        #[terminate]
        fn bye(&mut self, _reason: &ExitReason) {}
    }
}

mod local {
    use std::marker::PhantomData;
    use std::sync::Arc;

    #[crate::facade::behavior(crate = "crate::facade")]
    pub struct Shared<T: Send + Sync + 'static> { value: Arc<T>, _t: PhantomData<T> }

    #[crate::facade::behavior(local, crate = "crate::facade")]
    impl<T: Send + Sync + 'static> Shared<T> {
        #[init]
        fn init(value: Arc<T>) -> Self { Shared { value, _t: PhantomData } }
        #[call]
        fn value(&self) -> Arc<T> { self.value.clone() }
    }

    #[crate::facade::behavior(crate = crate::facade)]
    pub struct Plain;

    #[crate::facade::behavior(crate = crate::facade, local)]
    impl Plain {
        #[init]
        fn init() -> Self { Plain }
        #[cast]
        fn poke(&mut self, f: Box<dyn FnOnce() + Send>) { f() }
    }
}

mod hand {
    use crate::facade::{Ctx, GenServer, ReplyTo};

    pub struct Hand(u64);

    #[crate::facade::remote(name = "facade-hand", crate = crate::facade)]
    impl GenServer for Hand {
        type Args = u64;
        type Call = ();
        type Reply = u64;
        type Cast = u64;
        type Info = ();
        type InitError = std::convert::Infallible;

        async fn init(start: u64, _ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
            Ok(Hand(start))
        }
        async fn handle_call(&mut self, _: (), reply: ReplyTo<u64>, _: &mut Ctx<Self>) {
            reply.send(self.0);
        }
        async fn handle_cast(&mut self, n: u64, _: &mut Ctx<Self>) {
            self.0 += n;
        }
    }
}

use remote::CounterApi;
use local::{PlainApi, SharedApi};

async fn use_them(
    c: facade::ServerRef<remote::Counter>,
    s: facade::ServerRef<local::Shared<u8>>,
    p: facade::ServerRef<local::Plain>,
) {
    let _: Result<u64, facade::CallError> = c.get().await;
    let _ = c.bytes(vec![1]).await;
    let _ = c.add(1);
    let _ = c.try_reset();
    let _ = s.value().await;
    let _ = p.poke(Box::new(|| {}));
}

fn main() {
    let _ = use_them;
    fn remote<B: facade::RemoteBehavior>() {}
    remote::<remote::Counter>();
    remote::<hand::Hand>();
}
