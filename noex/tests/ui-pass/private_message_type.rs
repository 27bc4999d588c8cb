//! A private behaviour with a private message type, all in one module: the generated
//! (`pub`, hidden) enums do not warn `private_interfaces`. `deny(warnings)` would show it.
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
