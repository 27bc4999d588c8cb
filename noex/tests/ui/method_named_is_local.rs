use noex::behavior;

#[behavior]
pub struct Lamp {
    on: bool,
}

#[behavior]
impl Lamp {
    #[init]
    fn init() -> Self {
        Lamp { on: false }
    }

    // `lamp.is_local()` on a handle would answer whether the process runs on this node.
    #[call]
    fn is_local(&self) -> bool {
        self.on
    }
}

fn main() {}
