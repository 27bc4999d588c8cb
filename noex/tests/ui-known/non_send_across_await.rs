//! DEFECT (error quality, mild): holding an `Rc` across an `.await` in a handler points the
//! error at `#[behavior]` with "future returned by `handle_call` is not `Send`" (a method the
//! user never wrote); the note does point at the `.await`. Should name `get`.

use std::rc::Rc;

use noex::behavior;

#[behavior]
pub struct S {
    n: u32,
}

async fn pause() {}

#[behavior]
impl S {
    #[init]
    fn init() -> Self {
        S { n: 0 }
    }

    #[call]
    async fn get(&mut self) -> u32 {
        let rc = Rc::new(self.n);
        pause().await;
        *rc
    }
}

fn main() {}
