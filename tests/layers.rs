//! The import rules between pullpilot's top-level modules: each module belongs to one layer and
//! imports only from its own layer or lower ones, and no imports form a circle. Read from the
//! sources (`crate::x` paths outside test code), so a new arrow fails here with its file named.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top to bottom.
const LAYERS: &[(&str, &[&str])] = &[
    ("the command line", &["commands"]),
    ("long-running services", &["listen", "relay", "webhook"]),
    ("one pass", &["engine"]),
    (
        "the parts of a pass",
        &["decide", "metrics", "hooks", "labels", "compose_edit"],
    ),
    (
        "the outside world and what is kept",
        &[
            "runtime", "compose", "docker", "registry", "notify", "state", "files", "settings",
            "error",
        ],
    ),
    (
        "foundations",
        &[
            "cli",
            "output",
            "logging",
            "fault",
            "values",
            "version",
            "reference",
            "testhttp",
            "testsnap",
            "time",
            "tls",
            "process",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// `crate::x` and `crate::{x, y}` in `text`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// Every `.rs` file under `dir` with its top-level module, test files and test modules left out.
fn sources(dir: &Path, top: Option<&str>, out: &mut Vec<(String, String, String)>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            sources(&path, Some(top.unwrap_or(&name)), out);
            continue;
        }
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        if stem == "tests" || stem.ends_with("_tests") {
            continue;
        }
        let module = top.unwrap_or(stem).to_string();
        // The crate roots, and the build script (compiled on its own, not a module).
        if module == "lib" || module == "main" || module == "build" {
            continue;
        }
        let text = fs::read_to_string(&path).expect("a source file is readable");
        let code = text
            .find("#[cfg(test)]\nmod tests")
            .map_or(text.as_str(), |at| &text[..at])
            .to_string();
        let shown = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(&path)
            .display()
            .to_string();
        out.push((module, shown, code));
    }
}

#[test]
fn modules_import_only_their_own_layer_or_lower_ones_and_never_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, None, &mut files);
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path, code) in &files {
        let Some(own) = layer_of(module) else {
            problems.push(format!(
                "{path}: module `{module}` is in no layer; add it to LAYERS in tests/layers.rs"
            ));
            continue;
        };
        for import in imports(code) {
            if import == *module {
                continue;
            }
            match layer_of(&import) {
                Some(theirs) if theirs < own => problems.push(format!(
                    "{path}: `{module}` ({}) imports `{import}` from a higher layer ({})",
                    LAYERS[own].0, LAYERS[theirs].0
                )),
                _ => {}
            }
            graph.entry(module.clone()).or_default().insert(import);
        }
    }
    // A circle: some module reaches itself.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<Vec<String>> = vec![vec![start.clone()]];
        while let Some(path) = stack.pop() {
            let last = path.last().expect("never empty");
            for next in graph.get(last).into_iter().flatten() {
                if next == start {
                    problems.push(format!("import circle: {} -> {start}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Writes to [`State`]'s fields that only `src/state/` may make.
const STATE_WRITES: &[&str] = &[
    "journal.push(",
    "journal.retain(",
    "journal.iter_mut(",
    "history.push(",
    "history.drain(",
    "notified.push(",
    ".pin = ",
    "pin.take(",
    "blocked.remove(",
    "blocked.retain(",
    ".candidate = ",
    "counters.updates +=",
    "counters.rollbacks +=",
    "counters.failures +=",
];

#[test]
fn state_is_changed_only_through_the_state_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, None, &mut files);
    let mut problems = Vec::new();
    for (module, path, code) in &files {
        if module == "state" {
            continue;
        }
        for write in STATE_WRITES {
            if code.contains(write) {
                problems.push(format!(
                    "{path}: `{write}` changes state outside src/state/; add a function to \
                     src/state/record.rs and call it"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_two_public_types_share_a_name() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, None, &mut files);
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, path, code) in &files {
        for line in code.lines() {
            let line = line.trim_start();
            // Crate-visible types count too: a name should mean one thing anywhere.
            let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
            let line = line.strip_prefix("pub ").unwrap_or(line);
            for kind in ["struct ", "enum ", "trait ", "type "] {
                if let Some(rest) = line.strip_prefix(kind) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    seen.entry(name).or_default().push(path.clone());
                }
            }
        }
    }
    let clashes: Vec<String> = seen
        .into_iter()
        .filter(|(_, paths)| paths.len() > 1)
        .map(|(name, paths)| format!("{name}: {}", paths.join(", ")))
        .collect();
    assert!(
        clashes.is_empty(),
        "public types sharing a name (rename one so each name means one thing):\n{}",
        clashes.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_imports() {
    let found = imports("use crate::{evaluate, update::{self, X}};\nuse crate::engine::pass;");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["engine", "evaluate", "update"]
    );
}
