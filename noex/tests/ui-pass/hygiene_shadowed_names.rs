#![allow(dead_code, unused_macros)]
mod inner {
    use noex::behavior;
    pub struct Ctx; pub struct Call; pub struct Reply; pub struct Cast; pub struct Info;
    pub struct Option; pub struct Vec; pub struct Box; pub struct String; pub struct Send;
    pub struct Sync; pub struct Future; pub struct Sized; pub struct Duration; pub struct PhantomData;
    pub type Result<T> = ::core::result::Result<T, ::std::string::String>;
    pub mod serde {}
    pub mod inventory {}
    pub mod std {}
    pub mod core {}
    macro_rules! concat { ($($t:tt)*) => { compile_error!("user concat") } }
    macro_rules! stringify { ($($t:tt)*) => { compile_error!("user stringify") } }
    macro_rules! assert { ($($t:tt)*) => { compile_error!("user assert") } }
    macro_rules! unreachable { ($($t:tt)*) => { compile_error!("user unreachable") } }
    macro_rules! module_path { ($($t:tt)*) => { compile_error!("user module_path") } }
    #[behavior]
    pub struct Shadowed { n: u32 }
    #[behavior]
    impl Shadowed {
        #[init]
        fn init(n: u32) -> Result<Self> { Ok(Shadowed { n }) }
        #[call]
        fn get(&self) -> Result<u32> { Ok(self.n) }
        #[cast]
        fn set(&mut self, n: u32) { self.n = n }
        #[call]
        fn ok(&self) {}
        #[call]
        fn some(&self) {}
        #[cast]
        fn none(&mut self) {}
        #[cast]
        fn err(&mut self, x: u8) { let _ = x; }
    }
}
fn main() {}
