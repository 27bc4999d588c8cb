//! Misuse of `#[behavior]` (and `#[remote]`) is a compile error pointing at the offending token; the
//! messages are pinned in `tests/ui/*.stderr`. Regenerate them with
//! `TRYBUILD=overwrite cargo test -p noex --test compile_fail`.

#[test]
fn misuse_of_behavior_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
    // Known limitations, pinned as they behave today (see `tests/ui-known/README.md`); when
    // one is fixed, move its file to `ui-pass/` or `ui/`.
    t.compile_fail("tests/ui-known/*.rs");
}
