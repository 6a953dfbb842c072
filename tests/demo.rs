//! The committed demo warehouse is exactly what its documented command generates.

use crate::util::{assert_same_tree, demo, run_ok};

/// The command in data/README.md, which wrote data/demo.
pub const DEMO_COMMAND: [&str; 9] = [
    "generate",
    "--customers",
    "2000",
    "--months",
    "12",
    "--seed",
    "42",
    "--quiet",
    "--out",
];

#[test]
fn committed_demo_equals_a_fresh_generation() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("demo");
    let mut args = DEMO_COMMAND.to_vec();
    args.push(fresh.to_str().unwrap());
    run_ok(&args);
    assert_same_tree(&fresh, &demo());
}

#[test]
fn the_documented_command_is_the_one_tested() {
    let readme = std::fs::read_to_string(crate::util::repo_root().join("data/README.md")).unwrap();
    assert!(
        readme.contains(
            "arq generate --customers 2000 --months 12 --seed 42 --quiet --out data/demo"
        ),
        "data/README.md must document the command this test runs"
    );
}
