//! Snapshot assertions for unit tests: a rendered text is compared with
//! `tests/snapshots/<name>.txt`, so a change of wording is a reviewed diff of that file.
//! `PP_UPDATE_SNAPSHOTS=1 cargo test` rewrites the files instead of comparing.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Asserts that `actual` is the text of snapshot `name`, or rewrites it when asked to.
pub(crate) fn assert_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("PP_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("the snapshot directory is writable");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "snapshot {name} differs from {}:\n{}\nIf the change is intended, run \
         PP_UPDATE_SNAPSHOTS=1 cargo test and review the diff of that file.",
        path.display(),
        first_difference(&expected, actual)
    );
}

/// The first differing line, with its neighbours, as `-expected` / `+actual`.
fn first_difference(expected: &str, actual: &str) -> String {
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    let at = old
        .iter()
        .zip(&new)
        .position(|(a, b)| a != b)
        .unwrap_or(old.len().min(new.len()));
    let mut out = format!("first difference at line {}:\n", at + 1);
    for line in old.iter().skip(at).take(3) {
        let _ = writeln!(out, "-{line}");
    }
    for line in new.iter().skip(at).take(3) {
        let _ = writeln!(out, "+{line}");
    }
    out
}
