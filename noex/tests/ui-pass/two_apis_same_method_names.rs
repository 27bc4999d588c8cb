mod a {
    use noex::behavior;
    #[behavior]
    pub struct A { n: u32 }
    #[behavior]
    impl A {
        #[init]
        fn init() -> Self { A { n: 0 } }
        #[call]
        fn get(&self) -> u32 { self.n }
        #[cast]
        fn set(&mut self, n: u32) { self.n = n }
    }
}
mod b {
    use noex::behavior;
    #[behavior]
    pub struct B { s: String }
    #[behavior]
    impl B {
        #[init]
        fn init() -> Self { B { s: String::new() } }
        #[call]
        fn get(&self) -> String { self.s.clone() }
        #[cast]
        fn set(&mut self, s: String) { self.s = s }
    }
}
use a::{A, AApi};
use b::{B, BApi};
use noex::ServerRef;
async fn both(a: ServerRef<A>, b: ServerRef<B>) {
    let _: u32 = a.get().await.unwrap();
    let _: String = b.get().await.unwrap();
    a.set(1).unwrap();
    b.set("x".into()).unwrap();
}
fn main() { let _ = both; }
