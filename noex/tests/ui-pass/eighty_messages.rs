use noex::behavior;
#[behavior]
pub struct S { n: u64 }
macro_rules! many { ($($name:ident)*) => {
#[behavior]
impl S {
    #[init]
    fn init() -> Self { S { n: 0 } }
    $( #[call] fn $name(&mut self, x: u64) -> u64 { self.n += x; self.n } )*
}
}}
many!(m00 m01 m02 m03 m04 m05 m06 m07 m08 m09 m10 m11 m12 m13 m14 m15 m16 m17 m18 m19
      m20 m21 m22 m23 m24 m25 m26 m27 m28 m29 m30 m31 m32 m33 m34 m35 m36 m37 m38 m39
      m40 m41 m42 m43 m44 m45 m46 m47 m48 m49 m50 m51 m52 m53 m54 m55 m56 m57 m58 m59
      m60 m61 m62 m63 m64 m65 m66 m67 m68 m69 m70 m71 m72 m73 m74 m75 m76 m77 m78 m79);
fn main() {}
