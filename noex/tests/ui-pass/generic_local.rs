//! A generic local behaviour with the bounds it needs (in the impl header and in a where
//! clause) compiles.

use noex::behavior;

#[behavior]
pub struct Stack<T> {
    items: Vec<T>,
}

#[behavior(local)]
impl<T: Clone + Send + 'static> Stack<T> {
    #[init]
    fn init(items: Vec<T>) -> Self {
        Stack { items }
    }

    #[cast]
    fn push(&mut self, item: T) {
        self.items.push(item);
    }

    #[call]
    fn peek(&self) -> Option<T> {
        self.items.last().cloned()
    }
}

#[behavior]
pub struct Pair<K, V> {
    pairs: Vec<(K, V)>,
}

#[behavior(local)]
impl<K, V> Pair<K, V>
where
    K: Send + 'static,
    V: Clone + Send + 'static,
{
    #[init]
    fn init() -> Self {
        Pair { pairs: Vec::new() }
    }

    #[cast]
    fn insert(&mut self, key: K, value: V) {
        self.pairs.push((key, value));
    }

    #[call]
    fn values(&self) -> Vec<V> {
        self.pairs.iter().map(|(_, v)| v.clone()).collect()
    }
}

fn main() {}
