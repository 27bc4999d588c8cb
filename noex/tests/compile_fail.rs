//! Misuse of `#[behavior]` (and `#[remote]`) is a compile error pointing at the offending token; the
//! messages are pinned in `tests/ui/*.stderr`. Regenerate them with
//! `TRYBUILD=overwrite cargo test -p noex --test compile_fail`.

#[test]
fn misuse_of_behavior_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
    // Audit of 2026-12: each file shows a defect as it is today (its header says what should
    // happen); when one is fixed, move the file to ui-pass/ (or update its .stderr).
    t.compile_fail("tests/ui-defects/*.rs");
}
