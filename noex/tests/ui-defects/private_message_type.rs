//! DEFECT: a private behaviour with a private message type, all in one module, is fine Rust,
//! but the generated `pub enum __NoexPrivateCast` warns `private_interfaces` ("type `Msg` is
//! more private than the item `__NoexPrivateCast::Put::0`"). `deny(warnings)` makes the
//! warning visible here. Should compile without warnings.
#![deny(warnings)]

mod inner {
    use noex::behavior;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Msg(u32);

    #[behavior]
    struct Private {
        n: u32,
    }

    #[behavior]
    impl Private {
        #[init]
        fn init() -> Self {
            Private { n: 0 }
        }

        #[cast]
        fn put(&mut self, m: Msg) {
            self.n = m.0;
        }
    }
}

fn main() {}
