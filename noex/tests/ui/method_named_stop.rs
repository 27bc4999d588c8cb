use noex::behavior;

#[behavior]
pub struct Machine {
    running: bool,
}

#[behavior]
impl Machine {
    #[init]
    fn init() -> Self {
        Machine { running: true }
    }

    #[cast]
    fn stop(&mut self) {
        self.running = false;
    }
}

fn main() {}
