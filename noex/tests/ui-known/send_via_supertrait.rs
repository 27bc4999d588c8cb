//! DEFECT (minor): a type parameter bounded by a trait whose supertraits are `Send + 'static`
//! is refused with "must be `Send + 'static` ... write `T: Send + 'static`", although it is.
//! The check is syntactic; it could instead emit `T: Send + 'static` obligations (or accept
//! any bound and let the compiler check `GenServer`'s own bounds).

use noex::behavior;

pub trait Item: Clone + Send + Sync + 'static {}

#[behavior]
pub struct Stack<T> {
    items: Vec<T>,
}

#[behavior(local)]
impl<T: Item> Stack<T> {
    #[init]
    fn init() -> Self {
        Stack { items: Vec::new() }
    }

    #[cast]
    fn push(&mut self, item: T) {
        self.items.push(item);
    }
}

fn main() {}
