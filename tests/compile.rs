//! Compile-time behaviour of `#[worker]`: every accepted form compiles
//! (`tests/ui/pass`), and every mistake fails with the exact message recorded
//! next to it (`tests/ui/fail/*.stderr`).
//!
//! The `.stderr` files are rustc's output for the toolchain pinned in
//! rust-toolchain.toml. After changing a message on purpose, regenerate them
//! with `TRYBUILD=overwrite cargo test --test compile` and review the diff.

#[test]
fn worker_attribute() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
