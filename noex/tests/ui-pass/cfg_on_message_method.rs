//! A message method's `#[cfg]`s go on everything generated for it (enum variants, dispatch
//! arms, client methods, wire tags), so a method compiled out leaves nothing behind, even
//! when its types do not exist.

use noex::behavior;

#[behavior]
pub struct S {
    n: u32,
}

#[cfg(any())]
pub struct Missing;

#[behavior]
impl S {
    #[init]
    fn init() -> Self {
        S { n: 0 }
    }

    #[call]
    fn get(&self) -> u32 {
        self.n
    }

    #[cfg(any())]
    #[call]
    fn debug_dump(&self) -> String {
        String::new()
    }

    #[cfg(any())]
    #[cast]
    async fn absent(&mut self, missing: Missing) {
        let _ = missing;
    }

    #[cfg(all())]
    #[cast]
    fn set(&mut self, n: u32) {
        self.n = n;
    }

    #[cfg(any())]
    #[call]
    fn get_missing(&self) -> Missing {
        Missing
    }
}

#[behavior]
pub struct L {
    n: u32,
}

#[behavior(local)]
impl L {
    #[init]
    fn init() -> Self {
        L { n: 0 }
    }

    #[cfg(any())]
    #[cast]
    fn gone(&mut self, missing: Missing) {
        let _ = missing;
    }

    #[cast]
    fn set(&mut self, n: u32) {
        self.n = n;
    }
}

/// Every cast (and call) compiled out: the enums have no variant left.
#[behavior]
pub struct R {
    n: u32,
}

#[behavior]
impl R {
    #[init]
    fn init() -> Self {
        R { n: 0 }
    }

    #[cfg(any())]
    #[call]
    fn get(&self) -> u32 {
        self.n
    }

    #[cfg(any())]
    #[cast]
    fn set(&mut self, n: u32) {
        self.n = n;
    }
}

fn main() {
    use noex::ServerRef;
    fn _uses(s: ServerRef<S>, l: ServerRef<L>) {
        let _ = SApi::get(&s);
        let _ = SApi::set(&s, 1);
        let _ = LApi::set(&l, 1);
    }
}
