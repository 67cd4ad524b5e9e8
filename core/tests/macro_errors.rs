//! The macros' messages for the common mistakes, pinned: each file under `tests/ui` is a
//! mistake, its `.stderr` the message the compiler shows. A changed message fails here; when
//! the change is wanted, regenerate with `TRYBUILD=overwrite cargo test -p raya --test
//! macro_errors` and review the diff.

#[test]
fn macro_errors_say_what_to_change() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
