//! Function types own no borrowed data, even with references in their arguments, and
//! `&'static` references borrow nothing that ends: both are fine in messages (other
//! references in message types are refused).

use noex::behavior;

#[behavior]
pub struct S {
    f: fn(&str) -> usize,
    g: Option<Box<dyn Fn(&str) -> usize + Send>>,
}

#[behavior(local)]
impl S {
    #[init]
    fn init() -> Self {
        S { f: str::len, g: None }
    }

    #[cast]
    fn set_f(&mut self, f: fn(&str) -> usize) {
        self.f = f;
    }

    #[cast]
    fn set_g(&mut self, g: Box<dyn Fn(&str) -> usize + Send>) {
        self.g = Some(g);
    }

    #[cast]
    fn note(&mut self, label: &'static str, labels: Vec<&'static [u8]>) {
        let _ = (label, labels);
    }

    #[call]
    fn apply(&self, text: String) -> usize {
        (self.f)(&text) + self.g.as_ref().map_or(0, |g| g(&text))
    }
}

fn main() {}
