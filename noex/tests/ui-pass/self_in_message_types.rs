//! `Self` in a message type (argument, reply, deferred reply, init argument) means the
//! behaviour's type, also in the generated enums and client trait where it is substituted.

use noex::{behavior, ReplyTo};
use serde::{Deserialize, Serialize};

#[behavior]
#[derive(Clone, Serialize, Deserialize)]
pub struct S {
    n: u32,
    history: Vec<Option<S>>,
}

#[behavior]
impl S {
    #[init]
    fn init(from: Option<Box<Self>>) -> Self {
        from.map_or(S { n: 0, history: Vec::new() }, |s| *s)
    }

    /// A copy of the state.
    #[call]
    fn snapshot(&self) -> Self {
        self.clone()
    }

    #[call]
    fn later(&self, reply: ReplyTo<Vec<Self>>) {
        reply.send(vec![self.clone()]);
    }

    #[cast]
    fn restore(&mut self, states: Vec<Option<Self>>) {
        self.history = states;
    }
}

#[behavior]
pub struct G<T> {
    items: Vec<T>,
}

#[behavior(local)]
impl<T: Clone + Send + 'static> G<T> {
    #[init]
    fn init() -> Self {
        G { items: Vec::new() }
    }

    #[call]
    fn copy(&self) -> Option<Box<Self>> {
        Some(Box::new(G { items: self.items.clone() }))
    }
}

fn main() {
    fn _uses(s: noex::ServerRef<S>) {
        let _ = SApi::snapshot(&s);
        let _ = SApi::restore(&s, vec![None]);
    }
}
