use noex::behavior;

#[behavior]
pub struct View<'a> {
    text: &'a str,
}

#[behavior(local)]
impl<'a> View<'a> {
    #[init]
    fn init(text: &'static str) -> Self {
        View { text }
    }

    #[call]
    fn len(&self) -> usize {
        self.text.len()
    }
}

fn main() {}
