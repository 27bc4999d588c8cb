use noex::behavior;

#[behavior]
pub struct Stack<T> {
    items: Vec<T>,
}

#[behavior(local)]
impl<T: Clone> Stack<T> {
    #[init]
    fn init(items: Vec<T>) -> Self {
        Stack { items }
    }

    #[call]
    fn pop(&mut self) -> Option<T> {
        self.items.pop()
    }
}

fn main() {}
