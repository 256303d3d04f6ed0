//! Packaging checks that need no Docker: the committed man pages and shell completions are what
//! `pullpilot generate` writes now, every setting and label is documented, and the clap
//! definitions are consistent. `tests/packaging/check-deb.sh` builds and installs the .deb.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use pullpilot::cli::Cli;
use pullpilot::labels;
use pullpilot::settings::VARIABLES;

mod support;
use support::TempDir;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Runs the built binary's `generate KIND DIR` with no `PP_*` variables (an invalid one in the
/// caller's environment would stop it) and returns the files it wrote.
fn generate(kind: &str, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pullpilot"));
    cmd.arg("generate").arg(kind).arg(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PP_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd.output().expect("run pullpilot generate");
    assert!(
        out.status.success(),
        "pullpilot generate {kind} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    files_in(dir, |_| true)
}

fn files_in(dir: &Path, keep: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| keep(name))
        .map(|name| {
            let bytes = fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Fails with "WHAT are stale: run REGENERATE …", naming each file that differs, is missing or
/// is left over.
fn assert_same(
    what: &str,
    regenerate: &str,
    committed: &BTreeMap<String, Vec<u8>>,
    generated: &BTreeMap<String, Vec<u8>>,
) {
    let mut problems = Vec::new();
    for (name, bytes) in generated {
        match committed.get(name) {
            None => problems.push(format!("{name} is not committed")),
            Some(old) if old != bytes => problems.push(format!("{name} differs")),
            Some(_) => {}
        }
    }
    for name in committed.keys() {
        if !generated.contains_key(name) {
            problems.push(format!("{name} is no longer generated: delete it"));
        }
    }
    assert!(
        problems.is_empty(),
        "{what} are stale: run `{regenerate}` and commit the result ({})",
        problems.join("; ")
    );
}

#[test]
fn committed_man_pages_are_current() {
    let tmp = TempDir::new("pullpilot", "man");
    let generated = generate("man", &tmp.path);
    assert!(generated.contains_key("pullpilot.1"), "{generated:?}");
    assert!(generated.contains_key("pullpilot-apply.1"));
    assert!(
        !generated.keys().any(|name| name.contains("generate")),
        "the hidden `generate` command must not get a page"
    );
    // man/pullpilot.7 is hand-written; every generated page is section 1.
    let committed = files_in(&repo("man"), |name| {
        Path::new(name).extension().is_some_and(|e| e == "1")
    });
    assert_same(
        "man pages",
        "cargo run -- generate man man/",
        &committed,
        &generated,
    );
}

#[test]
fn committed_completions_are_current() {
    let tmp = TempDir::new("pullpilot", "completions");
    let generated = generate("completions", &tmp.path);
    let names: Vec<&str> = generated.keys().map(String::as_str).collect();
    assert_eq!(names, ["_pullpilot", "pullpilot.bash", "pullpilot.fish"]);
    for (name, bytes) in &generated {
        assert!(
            !String::from_utf8_lossy(bytes).contains("generate"),
            "{name} offers the hidden `generate` command"
        );
    }
    let committed = files_in(&repo("packaging/completions"), |_| true);
    assert_same(
        "shell completions",
        "cargo run -- generate completions packaging/completions/",
        &committed,
        &generated,
    );
}

#[test]
fn top_man_page_documents_exit_status_and_points_to_section_7() {
    let page = read("man/pullpilot.1");
    assert!(
        page.contains(".SH \"EXIT STATUS\""),
        "no EXIT STATUS section"
    );
    for code in ["0", "1", "2", "3", "75"] {
        assert!(
            page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit status {code} is not documented in man/pullpilot.1"
        );
    }
    assert!(
        page.contains("\\fBpullpilot\\fR(7)"),
        "no SEE ALSO pullpilot(7)"
    );
    assert!(
        !page.contains(".TH PULLPILOT 1  "),
        "empty .TH date field is not quoted"
    );
}

/// Roff source → the text a reader sees, for the escapes `man/pullpilot.7` uses.
fn roff_plain(text: &str) -> String {
    text.replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\(aq", "'")
}

/// The entry `.TP` / `.B NAME` of the hand-written page, up to the next paragraph macro.
fn man7_entry<'a>(page: &'a str, name: &str) -> Option<&'a str> {
    let head = format!("\n.TP\n.B {name}\n");
    let start = page.find(&head)? + head.len();
    let rest = &page[start..];
    let end = [".TP\n", ".SH ", ".SS ", ".PP\n"]
        .iter()
        .filter_map(|m| rest.find(&format!("\n{m}")))
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

#[test]
fn every_variable_is_documented_with_its_default() {
    let page = roff_plain(&read("man/pullpilot.7"));
    let readme = read("README.md");
    let env_file = read("systemd/pullpilot.env");
    for (name, default, _) in VARIABLES {
        assert!(readme.contains(name), "README.md does not mention {name}");
        let entry = man7_entry(&page, name)
            .unwrap_or_else(|| panic!("man/pullpilot.7 has no `.TP` / `.B {name}` entry"));
        let expected = if default.is_empty() {
            "Default: unset".to_string()
        } else {
            format!("Default: {default}")
        };
        assert!(
            entry.contains(&expected),
            "man/pullpilot.7 does not give {name}'s default as `{expected}`:\n{entry}"
        );
        let commented = [
            format!("\n#{name}={default}\n"),
            format!("\n#{name}=\"{default}\"\n"),
        ];
        assert!(
            commented
                .iter()
                .any(|line| env_file.contains(line.as_str())),
            "systemd/pullpilot.env does not list `#{name}={default}`"
        );
    }
}

/// Every `io.pullpilot.*` label the code knows: `labels::ALL`, plus any other constant in
/// `src/labels.rs` (a label added there but not yet to `ALL` must still be documented).
fn known_labels() -> Vec<String> {
    let mut known: Vec<String> = labels::ALL.iter().map(|(l, _)| (*l).to_string()).collect();
    let source = read("src/labels.rs");
    for (start, _) in source.match_indices("\"io.pullpilot.") {
        let rest = &source[start + 1..];
        let label = &rest[..rest.find('"').unwrap_or(0)];
        let well_formed = label.len() > "io.pullpilot.".len()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'-');
        if well_formed && !known.iter().any(|k| k == label) {
            known.push(label.to_string());
        }
    }
    known
}

#[test]
fn every_label_is_documented() {
    let page = roff_plain(&read("man/pullpilot.7"));
    let readme = read("README.md");
    for label in &known_labels() {
        assert!(readme.contains(label), "README.md does not mention {label}");
        assert!(
            man7_entry(&page, label).is_some(),
            "man/pullpilot.7 has no `.TP` / `.B {label}` entry"
        );
    }
}

#[test]
fn clap_definitions_are_consistent() {
    Cli::command().debug_assert();
}
